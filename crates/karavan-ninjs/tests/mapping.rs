//! The mappings to ninjs 3.1, one input and one expected output per case, through one `check` helper;
//! and what documents declare about their version.

use karavan_ninjs::{NINJS_3_1_SCHEMA, NinjsError, NinjsVersion, declared_version, extension_schema, normalize, read};
use serde_json::{Value, json};

use NinjsVersion::*;

/// Normalises `input` as `version` and compares with `expected`: `{"document": …, "extensions": …}`,
/// where `document` leaves out the `standard` every normalised document gets (checked once below).
fn check(input: (NinjsVersion, Value), expected: Value) {
    let (version, doc) = input;
    let normalized = normalize(&doc, version).unwrap_or_else(|e| panic!("{doc} as {}: {e}", version.as_str()));
    let mut document = normalized.document;
    assert_eq!(
        document.shift_remove("standard"),
        Some(json!({"name": "ninjs", "version": "3.1", "schema": NINJS_3_1_SCHEMA})),
        "{doc}"
    );
    let actual = json!({"document": document, "extensions": normalized.extensions});
    assert_eq!(actual, expected, "\ninput ({}): {doc}", version.as_str());
    assert_eq!(normalized.source_version, version);
}

#[test]
fn texts_of_1x() {
    check(
        (
            V1_3,
            json!({
                "uri": "urn:a",
                "headline": "Man bites dog",
                "headline_sub": "Dog recovers",
                "body_text": "plain",
                "body_html": "<p>html</p>",
                "body_xhtml": "<p>xhtml</p>",
                "body_caption": "a role",
                "description_text": "described",
                "description_creditline": "AP"
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "headlines": [{"value": "Man bites dog"}, {"role": "sub", "value": "Dog recovers"}],
            "bodies": [
                {"contentType": "text/plain", "value": "plain"},
                {"contentType": "text/html", "value": "<p>html</p>"},
                {"contentType": "application/xhtml+xml", "value": "<p>xhtml</p>"},
                {"role": "caption", "value": "a role"}
            ],
            "descriptions": [{"contentType": "text/plain", "value": "described"}, {"role": "creditline", "value": "AP"}]
        }, "extensions": {}}),
    );
}

#[test]
fn names_of_1x() {
    check(
        (
            V1_4,
            json!({
                "uri": "urn:a",
                "type": "text",
                "mimetype": "application/x-resource+json",
                "representationtype": "incomplete",
                "firstcreated": "2019-09-24T10:00:00+02:00",
                "versioncreated": "2019-09-24T10:00:00Z",
                "contentcreated": "2019-09-24T09:00:00Z",
                "embargoed": "2019-10-01T00:00:00Z",
                "expires": "2030-01-01T00:00:00Z",
                "pubstatus": "withheld",
                "urgency": 3,
                "copyrightholder": "IPTC",
                "copyrightnotice": "(c) IPTC",
                "usageterms": "editorial only",
                "ednote": "not for publication",
                "byline": "By Brendan Quinn",
                "title": "t", "slugline": "s", "located": "Ljubljana", "language": "en", "profile": "p", "version": "2",
                "charcount": 100,
                "wordcount": 20
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "type": "text",
            "representationType": "partial",
            "firstCreated": "2019-09-24T10:00:00+02:00",
            "versionCreated": "2019-09-24T10:00:00Z",
            "contentCreated": "2019-09-24T09:00:00Z",
            "embargoedUntil": "2019-10-01T00:00:00Z",
            "expires": "2030-01-01T00:00:00Z",
            "pubStatus": "withheld",
            "urgency": 3,
            "copyrightHolder": "IPTC",
            "copyrightNotice": "(c) IPTC",
            "usageTerms": "editorial only",
            "edNote": "not for publication",
            "by": "By Brendan Quinn",
            "title": "t", "slugline": "s", "located": "Ljubljana", "language": "en", "profile": "p", "version": "2"
        }, "extensions": {"mimetype": "application/x-resource+json", "charcount": 100, "wordcount": 20}}),
    );
}

#[test]
fn subjects_and_entities_of_1x() {
    check(
        (
            V1_5,
            json!({
                "uri": "urn:a",
                "subject": [
                    {"name": "medical research", "rel": "about", "scheme": "http://cv.iptc.org/newscodes/mediatopic/", "code": "20000737", "relevance": 90},
                    {"name": "code only", "code": "X1"},
                    {"name": "scheme only", "scheme": "http://example.com/cv/"}
                ],
                "place": [{"name": "Ljubljana", "scheme": "http://sws.geonames.org", "code": "3196359",
                           "contactinfo": [{"type": "physical", "address": {"locality": "Ljubljana", "postalcode": "1000"}}]}],
                "person": [{"name": "Somebody", "scheme": "http://example.com/people/", "code": "has spaces"}],
                "infosource": [{"name": "AP", "rel": "http://cv.iptc.org/newscodes/contentprodpartyrole/source"}],
                "organisation": [{"name": "Eutelsat", "symbols": [
                    {"ticker": "ETL", "exchange": "BOURSE"},
                    {"ticker": "OLD", "symbol": "FR0010221234", "symboltype": "urn:ISIN"}
                ]}]
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "subjects": [
                {"name": "medical research", "rel": "about", "relevance": 90, "literal": "20000737", "uri": "http://cv.iptc.org/newscodes/mediatopic/20000737"},
                {"name": "code only", "literal": "X1"},
                {"name": "scheme only"}
            ],
            "places": [{"name": "Ljubljana", "contactInfo": [{"type": "physical", "address": {"locality": "Ljubljana", "postalCode": "1000"}}],
                        "literal": "3196359", "uri": "http://sws.geonames.org/3196359"}],
            "people": [{"name": "Somebody", "literal": "has spaces"}],
            "infoSources": [{"name": "AP", "role": "http://cv.iptc.org/newscodes/contentprodpartyrole/source"}],
            "organisations": [{"name": "Eutelsat", "symbols": [
                {"symbol": "ETL", "exchange": "BOURSE"},
                {"symbol": "FR0010221234", "symbolType": "urn:ISIN"}
            ]}]
        }, "extensions": {
            "/subject/2/scheme": "http://example.com/cv/",
            "/person/0/scheme": "http://example.com/people/",
            "/organisation/0/symbols/1/ticker": "OLD"
        }}),
    );
}

#[test]
fn genres_trust_indicators_altids_and_rights_of_1x() {
    check(
        (
            V1_6,
            json!({
                "uri": "urn:a",
                "genre": [{"name": "Current", "scheme": "http://cv.iptc.org/newscodes/genre/", "code": "Current"}],
                "trustindicator": [
                    {"scheme": "http://cv.iptc.org/newscodes/trustindicator/", "code": "editorialPolicy", "title": "Standards", "href": "https://example.com/standards"},
                    {"code": "no scheme", "title": "kept"}
                ],
                "altids": {"itemid": "(ap):f40b", "nested": {"not": "a string"}},
                "rightsinfo": {"langid": "http://w3.org/ns/odrl/2/", "linkedrights": "http://example.com/rights", "note": "extra members are allowed in 1.4"},
                "digitalsourcetype": {"name": "Digital Source Type", "uri": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"},
                "$standard": {"name": "ninjs", "version": "1.6"}
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "genres": [{"name": "Current", "literal": "Current", "uri": "http://cv.iptc.org/newscodes/genre/Current"}],
            "trustIndicators": [
                {"title": "Standards", "href": "https://example.com/standards", "role": "http://cv.iptc.org/newscodes/trustindicator/editorialPolicy"},
                {"title": "kept"}
            ],
            "altIds": [{"role": "itemid", "value": "(ap):f40b"}],
            "rightsInfo": {"langId": "http://w3.org/ns/odrl/2/", "linkedRights": "http://example.com/rights"},
            "digitalSourceType": {"name": "Digital Source Type", "uri": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation"}
        }, "extensions": {
            "/trustindicator/1/code": "no scheme",
            "/altids/nested": {"not": "a string"},
            "/rightsinfo/note": "extra members are allowed in 1.4",
            "$standard": {"name": "ninjs", "version": "1.6"}
        }}),
    );
}

#[test]
fn renditions_and_associations_of_1x() {
    check(
        (
            V1_2,
            json!({
                "uri": "http://example.com/item",
                "renditions": {
                    "thumbnail": {"href": "http://example.com/t.jpg", "mimetype": "image/jpeg", "height": 70, "width": 70.0, "sizeinbytes": 4380},
                    "odd": {"href": "not a uri", "width": 99.5, "duration": 1.5}
                },
                "associations": {
                    "logo": {
                        "uri": "logo-without-scheme",
                        "type": "graphic",
                        "versioncreated": "2013-05-16",
                        "headline": "Logo",
                        "associations": {"inner": {"uri": "urn:inner", "byline": "Someone"}}
                    }
                }
            }),
        ),
        json!({"document": {
            "uri": "http://example.com/item",
            "renditions": [
                {"name": "thumbnail", "href": "http://example.com/t.jpg", "contentType": "image/jpeg", "height": 70, "width": 70, "sizeInBytes": 4380},
                {"name": "odd", "duration": 1.5}
            ],
            "associations": [{
                "name": "logo",
                "uri": "urn:karavan:ninjs:logo-without-scheme",
                "type": "graphic",
                "versionCreated": "2013-05-16T00:00:00Z",
                "headlines": [{"value": "Logo"}],
                "associations": [{"name": "inner", "uri": "urn:inner", "by": "Someone"}]
            }]
        }, "extensions": {
            "/renditions/odd/href": "not a uri",
            "/renditions/odd/width": 99.5,
            "/associations/logo/uri": "logo-without-scheme"
        }}),
    );
}

#[test]
fn places_geometry_of_1x() {
    let point =
        json!({"type": "Feature", "properties": null, "geometry": {"type": "Point", "coordinates": [46.05, 14.5]}});
    check(
        (
            V1_1,
            json!({"uri": "urn:a", "place": [
                {"name": "Ljubljana", "geometry_geojson": point},
                {"name": "Tallinn", "geometry_geojson": {"type": "Feature", "geometry": null}},
                {"name": "Elsewhere", "geometry_wkt": {"wkt": "POINT (1 2)"}}
            ]}),
        ),
        json!({"document": {"uri": "urn:a", "places": [
            {"name": "Ljubljana", "geoJSON": point},
            {"name": "Tallinn"},
            {"name": "Elsewhere"}
        ]}, "extensions": {
            "/place/1/geometry_geojson": {"type": "Feature", "geometry": null},
            "/place/2/geometry_wkt": {"wkt": "POINT (1 2)"}
        }}),
    );
}

#[test]
fn date_time_repairs() {
    check(
        (
            V1_2,
            json!({
                "uri": "urn:a",
                "versioncreated": "2019-09-24",
                "firstcreated": "2019-10-08T12:00:00",
                "embargoed": "Next Monday"
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "versionCreated": "2019-09-24T00:00:00Z",
            "firstCreated": "2019-10-08T12:00:00Z"
        }, "extensions": {"embargoed": "Next Monday"}}),
    );
    // 3.x input is repaired the same way, under its own names.
    check(
        (V3_0, json!({"uri": "urn:a", "versionCreated": "Last Tuesday", "expires": "2030-01-01 10:00"})),
        json!({"document": {"uri": "urn:a", "expires": "2030-01-01T10:00:00Z"}, "extensions": {"versionCreated": "Last Tuesday"}}),
    );
}

#[test]
fn uri_repairs() {
    check((V1_0, json!({"uri": ""})), json!({"document": {"uri": "urn:karavan:ninjs:"}, "extensions": {"uri": ""}}));
    check(
        (V2_0, json!({"uri": "002 schema/é"})),
        json!({"document": {"uri": "urn:karavan:ninjs:002%20schema%2F%C3%A9"}, "extensions": {"uri": "002 schema/é"}}),
    );
    check(
        (
            V3_1,
            json!({"uri": "urn:a", "people": [{"name": "x", "uri": "not a uri"}], "rightsInfo": {"linkedRights": "not a uri"}}),
        ),
        json!({"document": {"uri": "urn:a", "people": [{"name": "x"}]}, "extensions": {
            "/people/0/uri": "not a uri",
            "rightsInfo": {"linkedRights": "not a uri"}
        }}),
    );
}

#[test]
fn numbers_that_3_1_wants_as_integers() {
    check(
        (
            V2_2,
            json!({"uri": "urn:a", "urgency": 5.0, "bodies": [{"value": "b", "charcount": 10.0, "wordcount": 2.5}]}),
        ),
        json!({"document": {"uri": "urn:a", "urgency": 5, "bodies": [{"value": "b", "charCount": 10}]}, "extensions": {"/bodies/0/wordcount": 2.5}}),
    );
    check(
        (V1_1, json!({"uri": "urn:a", "urgency": 12})),
        json!({"document": {"uri": "urn:a"}, "extensions": {"urgency": 12}}),
    );
}

#[test]
fn names_of_2x() {
    check(
        (
            V2_1,
            json!({
                "uri": "urn:a",
                "representationtype": "full",
                "versioncreated": "2021-05-26T13:40:18+02:00",
                "headlines": [{"role": "main", "contenttype": "text/plain", "value": "h"}],
                "bodies": [{"role": "text", "contenttype": "text/html", "charcount": 985, "wordcount": 150, "value": "<p>b</p>"}],
                "people": [{"name": "Jonas", "contactinfo": [{"type": "phone", "value": "+46"}]}],
                "places": [{"name": "Gotland", "geojson": {"type": "Point", "coordinates": [18.3, 57.6]}}],
                "organisations": [{"name": "X", "symbols": [{"symboltype": "http://tt.se/symbols/ISIN", "symbol": "FR1"}]}],
                "infosources": [{"name": "TT", "role": "originator"}],
                "subjects": [{"literal": "16000000", "name": "Krig", "uri": "http://tt.se/spec/subref/1.0/16000000", "confidence": 58}],
                "renditions": [{"name": "r00", "contenttype": "image/jpeg", "sizeinbytes": 10326191, "width": 4724, "height": 3149}],
                "altids": [{"role": "otr", "value": "a0f2"}],
                "trustindicators": [{"role": "http://cv.iptc.org/newscodes/trustindicator/editorialPolicy", "title": "t", "href": "https://example.com/"}],
                "rightsinfo": {"encodedrights": "{}"},
                "genres": [{"literal": "INR", "uri": "http://tt.se/spec/sector/1.0/INR", "name": "Inrikes"}],
                "expires": "2023-05-31T00:00:00+02:00",
                "standard": {"name": "ninjs", "version": "2.1", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_2.1.json"}
            }),
        ),
        json!({"document": {
            "uri": "urn:a",
            "representationType": "full",
            "versionCreated": "2021-05-26T13:40:18+02:00",
            "headlines": [{"role": "main", "contentType": "text/plain", "value": "h"}],
            "bodies": [{"role": "text", "contentType": "text/html", "charCount": 985, "wordCount": 150, "value": "<p>b</p>"}],
            "people": [{"name": "Jonas", "contactInfo": [{"type": "phone", "value": "+46"}]}],
            "places": [{"name": "Gotland", "geoJSON": {"type": "Point", "coordinates": [18.3, 57.6]}}],
            "organisations": [{"name": "X", "symbols": [{"symbolType": "http://tt.se/symbols/ISIN", "symbol": "FR1"}]}],
            "infoSources": [{"name": "TT", "role": "originator"}],
            "subjects": [{"literal": "16000000", "name": "Krig", "uri": "http://tt.se/spec/subref/1.0/16000000", "confidence": 58}],
            "renditions": [{"name": "r00", "contentType": "image/jpeg", "sizeInBytes": 10326191, "width": 4724, "height": 3149}],
            "altIds": [{"role": "otr", "value": "a0f2"}],
            "trustIndicators": [{"role": "http://cv.iptc.org/newscodes/trustindicator/editorialPolicy", "title": "t", "href": "https://example.com/"}],
            "rightsInfo": {"encodedRights": "{}"},
            "genres": [{"literal": "INR", "uri": "http://tt.se/spec/sector/1.0/INR", "name": "Inrikes"}],
            "expires": "2023-05-31T00:00:00+02:00"
        }, "extensions": {
            "standard": {"name": "ninjs", "version": "2.1", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_2.1.json"}
        }}),
    );
}

#[test]
fn associations_of_2_0() {
    check(
        (
            V2_0,
            json!({"uri": "urn:a", "associations": [
                // Nameless: valid only as a whole 2.0 document, and named after its position.
                {"uri": "urn:nameless", "headlines": [{"value": "h"}]},
                // Named: the 2.0 schema accepts anything; what is valid 2.0 is kept, the rest moved out.
                {"name": "logo", "uri": "urn:logo", "i_can_put_anything": "here", "headlines": "not an array", "type": "graphic"},
                // Named but without a uri, which 3.1 requires: kept whole in extensions.
                {"name": "no uri", "title": "t"}
            ]}),
        ),
        json!({"document": {"uri": "urn:a", "associations": [
            {"name": "association1", "uri": "urn:nameless", "headlines": [{"value": "h"}]},
            {"name": "logo", "uri": "urn:logo", "type": "graphic"}
        ]}, "extensions": {
            "/associations/1/i_can_put_anything": "here",
            "/associations/1/headlines": "not an array",
            "/associations/2": {"name": "no uri", "title": "t"}
        }}),
    );
}

#[test]
fn documents_of_3x() {
    let event = json!({
        "uri": "urn:nato",
        "type": "event",
        "eventDetails": {"dates": {"expectedStartDate": "2023-07-11", "recurrence": {"recurrenceRules": [{"frequency": "yearly"}]}}},
        "associations": [{"name": "plan", "rel": "coverage", "uri": "urn:plan", "type": "planning"}],
        "rightsInfo": {"linkedRights": "http://tt.se/rights"}
    });
    let mut with_standard = event.clone();
    with_standard["standard"] =
        json!({"name": "ninjs", "version": "3.0", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_3.0.json"});
    check(
        (V3_0, with_standard),
        json!({"document": event, "extensions": {
            "standard": {"name": "ninjs", "version": "3.0", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_3.0.json"}
        }}),
    );
    // A 3.1 document that declares exactly the standard it gets keeps nothing in extensions.
    let mut own = event.clone();
    own["standard"] = json!({"name": "ninjs", "version": "3.1", "schema": NINJS_3_1_SCHEMA});
    check((V3_1, own), json!({"document": event, "extensions": {}}));
}

#[test]
fn extension_documents_keep_their_own_top_level_properties() {
    let doc = json!({
        "uri": "http://tt.se/media/text/1",
        "foofoo": "extended property",
        "headlines": [{"role": "main", "value": "h"}],
        "standard": {"name": "TTNINJS", "version": "2.1", "schema": "https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json"}
    });
    assert_eq!(extension_schema(doc.as_object().unwrap()), Some("https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json"));
    check(
        (V2_1, doc.clone()),
        json!({"document": {"uri": "http://tt.se/media/text/1", "headlines": [{"role": "main", "value": "h"}]}, "extensions": {
            "foofoo": "extended property",
            "standard": {"name": "TTNINJS", "version": "2.1", "schema": "https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json"}
        }}),
    );
    // Its ninjs properties are still validated, and only top-level unknown members are accepted.
    let mut bad = doc.clone();
    bad["headlines"] = json!([{"role": "main", "value": "h", "extra": 1}]);
    assert!(matches!(normalize(&bad, V2_1), Err(NinjsError::Invalid { .. })));
    // Without the extension schema, the unknown member is refused as the 2.1 schema says.
    let mut plain = doc;
    plain["standard"] = json!({"name": "ninjs", "version": "2.1"});
    match normalize(&plain, V2_1) {
        Err(NinjsError::Invalid { violations, .. }) => assert_eq!(violations[0].pointer, "/foofoo"),
        other => panic!("expected foofoo to be refused, got {other:?}"),
    }
}

fn check_declared(doc: Value, expected: Option<NinjsVersion>) {
    assert_eq!(declared_version(doc.as_object().expect("object")), expected, "{doc}");
}

#[test]
fn declared_versions() {
    check_declared(json!({"uri": "x"}), None);
    check_declared(
        json!({"$standard": {"name": "ninjs", "version": "1.3", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json"}}),
        Some(V1_3),
    );
    check_declared(json!({"$standard": {"schema": "http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json"}}), Some(V1_3));
    check_declared(json!({"$standard": "http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json"}), Some(V1_3));
    check_declared(json!({"$schema": "https://iptc.org/std/ninjs/ninjs-schema_2.2.json"}), Some(V2_2));
    // The schema URL wins over a version that is not one.
    check_declared(
        json!({"standard": {"name": "ninjs", "version": "2.0-dev", "schema": "http://www.iptc.org/std/ninjs/ninjs-schema_2.0.json"}}),
        Some(V2_0),
    );
    check_declared(
        json!({"$standard": {"version": "1.-x-dev", "schema": "https://www.iptc.org/std/ninjs/ninjs-schema_1.4.json"}}),
        Some(V1_4),
    );
    check_declared(json!({"standard": {"name": "ninjs", "version": "3.0"}}), Some(V3_0));
    // An extension standard named after ninjs gives the ninjs version it is based on.
    check_declared(
        json!({"standard": {"name": "TTNINJS", "version": "2.1", "schema": "https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json"}}),
        Some(V2_1),
    );
    check_declared(json!({"standard": {"name": "NewsML-G2", "version": "2.30"}}), None);
    check_declared(json!({"standard": {"version": "9.9"}}), None);
    check_declared(json!({"$schema": "http://json-schema.org/draft-04/schema#"}), None);
}

fn check_guess(doc: Value, expected: NinjsVersion) {
    let normalized = read(&doc, None).unwrap_or_else(|e| panic!("{doc}: {e}"));
    assert_eq!(normalized.source_version, expected, "{doc}");
}

#[test]
fn guessed_versions() {
    check_guess(json!({"uri": "urn:a", "headline": "h", "body_text": "b", "pubstatus": "usable"}), V1_6);
    check_guess(json!({"uri": "urn:a", "headlines": [{"value": "h"}], "versioncreated": "2020-01-01T00:00:00Z"}), V2_2);
    check_guess(
        json!({"uri": "urn:a", "headlines": [{"value": "h"}], "versionCreated": "2020-01-01T00:00:00Z", "pubStatus": "usable"}),
        V3_1,
    );
    check_guess(json!({"uri": "urn:a"}), V3_1);
    // Only 3.x names at the top level and nothing older below: read as 3.x, even where an older
    // version would accept the document; the client must say so to have it read as 2.x.
    for doc in [
        json!({"uri": "urn:a", "headlines": [{"value": "h"}], "associations": [{"uri": "urn:b"}]}),
        json!({"uri": "urn:a", "urgency": 12}),
        json!({"uri": "urn:a", "renditions": [{"name": "web", "href": "https://x/p.jpg", "contentType": "image/jpeg", "width": 1.5}]}),
    ] {
        match read(&doc, None) {
            Err(NinjsError::Invalid { version, .. }) => assert_eq!(version, "3.1", "{doc}"),
            other => panic!("{doc} should be refused as 3.1, got {other:?}"),
        }
    }
    check_guess_declared(
        json!({"uri": "urn:a", "headlines": [{"value": "h"}], "associations": [{"uri": "urn:b"}]}),
        V2_0,
    );
    check_guess_declared(json!({"uri": "urn:a", "headlines": [{"contenttype": "text/plain", "value": "h"}]}), V2_2);
    // Found from outside: names inside nested objects count too. 2.x spellings there (`contenttype`,
    // `sizeinbytes`) make the document 2.x although every top-level name is also 3.x's.
    check_guess(json!({"uri": "urn:a", "headlines": [{"contenttype": "text/plain", "value": "h"}]}), V2_2);
    check_guess(
        json!({"uri": "urn:a", "type": "picture", "renditions": [
            {"name": "web", "href": "https://x/p.jpg", "contenttype": "image/jpeg", "sizeinbytes": 1024, "width": 800}
        ]}),
        V2_2,
    );
    check_guess(
        json!({"uri": "urn:a", "renditions": [{"name": "web", "href": "https://x/p.jpg", "contentType": "image/jpeg", "sizeInBytes": 1024}]}),
        V3_1,
    );
    // A lowercase 2.x name makes the other lines candidates again; the first valid version wins.
    check_guess(
        json!({"uri": "urn:a", "versioncreated": "2020-01-01T00:00:00Z", "associations": [{"uri": "urn:b"}]}),
        V2_0,
    );
}

fn check_guess_declared(doc: Value, version: NinjsVersion) {
    let normalized = read(&doc, Some(version)).unwrap_or_else(|e| panic!("{doc}: {e}"));
    assert_eq!(normalized.source_version, version);
}

#[test]
fn guessing_reports_the_most_plausible_versions_violations() {
    let doc = json!({"uri": "urn:a", "headline": "h", "body_text": "b", "pubstatus": "cancelled"});
    match read(&doc, None) {
        Err(NinjsError::Invalid { version, violations }) => {
            assert_eq!(version, "1.6");
            assert_eq!(violations[0].pointer, "/pubstatus");
        }
        other => panic!("expected the 1.6 violations, got {other:?}"),
    }
}

#[test]
fn the_clients_word_and_the_declaration_are_held_to() {
    let doc = json!({"uri": "urn:a", "headlines": [{"value": "h"}]});
    assert!(matches!(read(&doc, Some(V1_6)), Err(NinjsError::Invalid { version: "1.6", .. })));
    let declared = json!({"uri": "urn:a", "headlines": [{"value": "h"}], "$standard": {"version": "1.3"}});
    assert!(matches!(read(&declared, None), Err(NinjsError::Invalid { version: "1.3", .. })));
    assert_eq!(
        read(&declared, Some(V2_2)).map(|n| n.source_version),
        Err(NinjsError::Invalid {
            version: "2.2",
            violations: vec![karavan_ninjs::Violation {
                pointer: "/$standard".into(),
                message: "$standard is not a property of ninjs 2.2".into()
            }],
        })
    );
}

#[test]
fn violations_list_every_problem() {
    let doc = json!({"type": "invalid", "pubstatus": "cancelled", "person": "x", "mime_type": "y"});
    match normalize(&doc, V1_0) {
        Err(NinjsError::Invalid { violations, .. }) => {
            let found: Vec<(&str, &str)> =
                violations.iter().map(|v| (v.pointer.as_str(), v.message.as_str())).collect();
            assert_eq!(
                found,
                vec![
                    ("/type", "type must be one of text, audio, video, picture, graphic, composite, got \"invalid\""),
                    ("/pubstatus", "pubstatus must be one of usable, withheld, canceled, got \"cancelled\""),
                    ("/person", "person must be an array, got \"x\""),
                    ("/mime_type", "mime_type is not a property of ninjs 1.0"),
                    ("/uri", "uri is required"),
                ]
            );
        }
        other => panic!("expected violations, got {other:?}"),
    }
    let value: Value = json!(null);
    assert_eq!(normalize(&value, V1_0), Err(NinjsError::NotAnObject));
}
