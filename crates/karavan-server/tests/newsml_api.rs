//! NewsML-G2 through the HTTP API: publishing XML, reading items back as NewsML-G2, and refusing bad
//! XML with 400s that say what is wrong, storing nothing.

mod common;

use axum::http::StatusCode;
use common::{TestApp, assert_ninjs31, ninjs31, shared_dir};

const G2: &str = "application/vnd.iptc.g2.newsitem+xml";

fn listing(name: &str) -> Vec<u8> {
    std::fs::read(shared_dir().join("conformance/newsml-g2/examples").join(name)).unwrap()
}

#[tokio::test]
async fn newsml_g2_in_and_out() {
    let app = TestApp::new();
    let agency = app.member("Kabar");
    let (status, body) = app.post_typed(&agency.editor, G2, listing("LISTING_2_NewsML-G2_Text_Document.xml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(body["meta"]["sourceFormat"].as_str().unwrap().starts_with("NewsML-G2"), "{body}");
    assert_ninjs31(&ninjs31(), &body["item"], "imported NewsML-G2");

    // ninjs by default; NewsML-G2 on request.
    let (status, item) = app.get(&agency.reader, &format!("/v1/items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let headline = item["headlines"][0]["value"].as_str().unwrap().to_string();
    let (status, kind, xml) = app.get_raw(&agency.reader, &format!("/v1/items/{id}?format=newsml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with(G2), "{kind}");
    assert!(xml.contains("<newsItem") && xml.contains(&headline.replace('"', "&quot;")), "{xml}");
    assert!(xml.contains("<provider literal=") && xml.contains("<name>Kabar</name>"), "{xml}");
    let (status, body) = app.get(&agency.reader, &format!("/v1/items/{id}?format=nitf")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("format"), "{body}");

    // Re-sending the same document is idempotent; `application/xml` is accepted too.
    let (status, body) =
        app.post_typed(&agency.editor, "application/xml", listing("LISTING_2_NewsML-G2_Text_Document.xml")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");

    // A package is exported as a packageItem.
    let (status, body) = app.post_typed(&agency.editor, G2, listing("LISTING_6_Simple_NewsML-G2_Package.xml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["item"]["type"], "composite");
    let package = body["id"].as_str().unwrap().to_string();
    let (_, kind, xml) = app.get_raw(&agency.reader, &format!("/v1/items/{package}?format=newsml")).await;
    assert!(kind.starts_with("application/vnd.iptc.g2.packageitem+xml"), "{kind}");
    assert!(xml.contains("<packageItem") && xml.contains("residref=\"urn:newsml:iptc.org:20081007:tutorial-item-A\""));

    // Another member without an agreement sees nothing, in either format.
    let other = app.member("Khovar");
    let (status, _, _) = app.get_raw(&other.reader, &format!("/v1/items/{id}?format=newsml")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_xml_is_refused_and_stores_nothing() {
    let app = TestApp::new();
    let agency = app.member("Kabar");
    let cases: [(&str, &str, &str); 7] = [
        (G2, "<newsItem", "not well-formed"),
        (G2, "", "empty"),
        (
            G2,
            r#"<?xml version="1.0"?><!DOCTYPE n [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><newsItem>&b;</newsItem>"#,
            "DOCTYPE",
        ),
        (G2, r#"<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="x"/>"#, "itemMeta is missing"),
        (G2, r#"<conceptItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="x"/>"#, "carries no news"),
        (G2, "<html><body>hello</body></html>", "not a NewsML-G2 item"),
        ("text/plain", "hello", "content-type"),
    ];
    for (content_type, body, expected) in cases {
        let (status, answer) = app.post_typed(&agency.editor, content_type, body.to_string()).await;
        assert!(status.is_client_error(), "{body}: {status} {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    // A news message with one bad item stores none of its items.
    let message = r#"<newsMessage xmlns="http://iptc.org/std/nar/2006-10-01/"><itemSet>
      <newsItem guid="urn:test:good" standard="NewsML-G2" standardversion="2.35"><itemMeta><itemClass qcode="ninat:text"/>
        <provider literal="x"/><versionCreated>2026-11-20T10:00:00Z</versionCreated></itemMeta>
        <contentMeta><headline>Good</headline></contentMeta></newsItem>
      <newsItem guid="urn:test:bad" standard="NewsML-G2" standardversion="2.35"><itemMeta><itemClass qcode="ninat:text"/>
        <provider literal="x"/><versionCreated>yesterday</versionCreated></itemMeta></newsItem>
    </itemSet></newsMessage>"#;
    let (status, answer) = app.post_typed(&agency.editor, G2, message).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("newsMessage item 1"), "{answer}");
    let (_, wire) = app.get(&agency.reader, "/v1/items").await;
    assert_eq!(wire["items"].as_array().unwrap().len(), 0, "{wire}");
    // The same message with the bad item fixed stores both, as a batch.
    let fixed = message.replace("yesterday", "2026-11-20T11:00:00Z");
    let (status, answer) = app.post_typed(&agency.editor, G2, fixed).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["items"].as_array().unwrap().len(), 2);
    // Readers may not publish.
    let (status, _) = app.post_typed(&agency.reader, G2, listing("LISTING_1_A_NewsML-G2_News_Item.xml")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
