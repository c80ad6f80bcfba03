//! Stories through the API with the story engine's deterministic step (`StoryStep`) driven by the
//! test: items of one event from two agencies in two languages meet in one story, another event stays
//! apart, a kill takes its item out, a restarted engine goes on from the store; and every answer is the
//! caller's view: an embargoed item counts for nobody but its owner, a story without a visible item
//! does not exist for the caller.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use karavan_server::stories::StoryStep;
use serde_json::{Value, json};

fn item(uri: &str, language: &str, headline: &str, body: &str) -> Value {
    json!({ "uri": uri, "type": "text", "language": language, "headlines": [{ "value": headline }],
            "bodies": [{ "contentType": "text/plain", "value": body }] })
}

async fn publish(app: &TestApp, key: &str, item: &Value) -> String {
    let (status, body) = app.post(key, "/v1/items", item).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_in_two_languages_is_one_story_each_reader_sees_its_part() {
    let app = TestApp::new();
    let (kazinform, tass, outsider) = (app.member("Kazinform"), app.member("TASS"), app.member("Outsider"));
    for (grantor, grantee) in [(&kazinform, &tass), (&tass, &kazinform)] {
        let agreement = json!({ "grantee": grantee.id, "right": "view" });
        let (status, body) = app.post(&grantor.admin, "/v1/agreements", &agreement).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let visit_ru = publish(
        &app,
        &tass.editor,
        &item(
            "urn:tass:visit",
            "ru",
            "Токаев прибыл в Ташкент с государственным визитом",
            "Президент Казахстана Касым-Жомарт Токаев прибыл в Ташкент. Переговоры с Шавкатом Мирзиёевым \
             пройдут 9 декабря, стороны подпишут 12 соглашений.",
        ),
    )
    .await;
    let visit_kk = publish(
        &app,
        &kazinform.editor,
        &item(
            "urn:kazinform:visit",
            "kk",
            "Тоқаев Ташкентке мемлекеттік сапармен барды",
            "Қасым-Жомарт Тоқаев Ташкентке келді. Шавкат Мирзиёевпен келіссөздер 9 желтоқсанда өтеді, \
             тараптар 12 келісімге қол қояды.",
        ),
    )
    .await;
    let quake = publish(
        &app,
        &tass.editor,
        &item(
            "urn:tass:quake",
            "ru",
            "Землетрясение магнитудой 5,8 произошло в Раштской долине",
            "Подземные толчки ощущались в Душанбе. По данным КЧС Таджикистана, пострадавших нет.",
        ),
    )
    .await;
    // Kazinform's embargoed item on the visit: only Kazinform counts it until the embargo ends.
    let mut embargoed = item(
        "urn:kazinform:visit-embargoed",
        "kk",
        "Тоқаев пен Мирзиёев Ташкентте 12 келісімге қол қойды",
        "Ташкентте Қасым-Жомарт Тоқаев пен Шавкат Мирзиёев келіссөздерден кейін 12 келісімге қол қойды.",
    );
    embargoed["embargoedUntil"] = json!("2099-01-01T00:00:00Z");
    let secret = publish(&app, &kazinform.editor, &embargoed).await;

    // Not placed yet: the API says so.
    let (status, body) = app.get(&tass.reader, &format!("/v1/items/{visit_ru}/story")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"].as_str().unwrap().contains("not in a story yet"), "{body}");

    let mut step = StoryStep::new(&app.state);
    assert_eq!(step.step(&app.state).unwrap(), Some(4), "four items placed in one round");
    assert_eq!(step.step(&app.state).unwrap(), Some(0), "caught up");

    let story_of = |body: &Value| body["story"]["id"].as_str().unwrap().to_string();
    let (status, ru) = app.get(&tass.reader, &format!("/v1/items/{visit_ru}/story")).await;
    assert_eq!(status, StatusCode::OK, "{ru}");
    let (_, kk) = app.get(&kazinform.reader, &format!("/v1/items/{visit_kk}/story")).await;
    assert_eq!(story_of(&ru), story_of(&kk), "one event, one story: {ru} {kk}");
    let (_, other) = app.get(&tass.reader, &format!("/v1/items/{quake}/story")).await;
    assert_ne!(story_of(&other), story_of(&ru), "another event, another story");
    let story = story_of(&ru);

    // TASS sees the two released items of the visit; Kazinform also its embargoed one.
    let (_, seen_by_tass) = app.get(&tass.reader, &format!("/v1/stories/{story}")).await;
    assert_eq!(seen_by_tass["size"], 2, "{seen_by_tass}");
    let ids: Vec<&str> = seen_by_tass["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&secret.as_str()), "the embargoed item is not shown to a partner");
    let mut languages = seen_by_tass["languages"].as_array().unwrap().clone();
    languages.sort_by_key(|l| l.as_str().unwrap().to_string());
    assert_eq!(languages, [json!("kk"), json!("ru")]);
    assert_eq!(seen_by_tass["coverage"]["members"].as_array().unwrap().len(), 2);
    let (_, seen_by_owner) = app.get(&kazinform.reader, &format!("/v1/stories/{story}")).await;
    assert_eq!(seen_by_owner["size"], 3, "the owner counts its embargoed item: {seen_by_owner}");
    // An agency that may see none of its items is told there is no such story.
    let (status, _) = app.get(&outsider.reader, &format!("/v1/stories/{story}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listed) = app.get(&outsider.reader, "/v1/stories").await;
    assert_eq!((status, listed["stories"].as_array().unwrap().len()), (StatusCode::OK, 0));

    // The list: newest activity first, pages without repeats; by size the visit comes first.
    let (status, listed) = app.get(&tass.reader, "/v1/stories?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let first = listed["stories"][0]["id"].as_str().unwrap().to_string();
    let next = listed["next"].as_str().unwrap().to_string();
    let (_, second) = app.get(&tass.reader, &format!("/v1/stories?limit=1&cursor={next}")).await;
    let second_id = second["stories"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(first, second_id, "{listed} {second}");
    let (_, by_size) = app.get(&tass.reader, "/v1/stories?sort=size").await;
    assert_eq!(by_size["stories"][0]["id"], json!(story), "{by_size}");
    assert_eq!(by_size["stories"][0]["size"], 2);
    let (_, filtered) = app.get(&tass.reader, "/v1/stories?lang=kk").await;
    assert_eq!(filtered["stories"].as_array().unwrap().len(), 1, "only the visit has a Kazakh item: {filtered}");
    let (status, _) = app.get(&tass.reader, "/v1/stories?sort=loudest").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&tass.reader, "/v1/stories?cursor=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Coverage counts only what the caller may see: the embargoed item for its owner alone.
    let (status, by_language) = app.get(&tass.reader, "/v1/analytics/coverage?by=language").await;
    assert_eq!(status, StatusCode::OK, "{by_language}");
    assert_eq!(by_language["buckets"], json!([{ "key": "ru", "count": 2 }, { "key": "kk", "count": 1 }]));
    let (_, owners) = app.get(&kazinform.reader, "/v1/analytics/coverage?by=language").await;
    assert_eq!(owners["buckets"], json!([{ "key": "kk", "count": 2 }, { "key": "ru", "count": 2 }]));
    let (_, by_member) = app.get(&outsider.reader, "/v1/analytics/coverage?by=member").await;
    assert_eq!(by_member["buckets"], json!([]));
    // By country: the countries the visible items name (Казахстана, Таджикистана), from iso-codes.
    let (status, by_country) = app.get(&tass.reader, "/v1/analytics/coverage?by=country").await;
    assert_eq!(status, StatusCode::OK, "{by_country}");
    assert_eq!(by_country["buckets"], json!([{ "key": "KZ", "count": 1 }, { "key": "TJ", "count": 1 }]));
    let (status, _) = app.get(&tass.reader, "/v1/analytics/coverage?by=mood").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A kill takes the item out of its story; a restarted engine goes on where the store says.
    let (status, _) =
        app.post(&tass.editor, &format!("/v1/items/{visit_ru}/kill"), &json!({ "reason": "wrong" })).await;
    assert!(status.is_success());
    let mut restarted = StoryStep::new(&app.state);
    assert_eq!(restarted.step(&app.state).unwrap(), Some(1));
    let (_, after_kill) = app.get(&tass.reader, &format!("/v1/stories/{story}")).await;
    assert_eq!(after_kill["size"], 1, "{after_kill}");
    let follow_up = publish(
        &app,
        &tass.editor,
        &item(
            "urn:tass:visit-2",
            "ru",
            "Токаев и Мирзиёев подписали в Ташкенте 12 соглашений",
            "Касым-Жомарт Токаев и Шавкат Мирзиёев по итогам переговоров в Ташкенте подписали 12 соглашений.",
        ),
    )
    .await;
    assert_eq!(restarted.step(&app.state).unwrap(), Some(1));
    let (_, joined) = app.get(&tass.reader, &format!("/v1/items/{follow_up}/story")).await;
    assert_eq!(story_of(&joined), story, "the follow-up joins the story after the restart: {joined}");
}
