//! The search index through its public API: language analysis on real sentences, the visibility rule,
//! facets, and a property test against a naive scan.

use std::collections::BTreeSet;

use karavan_search::{Audience, Grant, IndexDoc, SearchIndex, SearchRequest, Sort};

const MINUTE: i64 = 60_000_000;
const NOW: i64 = 1_800_000_000_000_000;

fn doc(id: &str, owner: &str, language: &str, headline: &str, body: &str) -> IndexDoc {
    IndexDoc {
        item_id: id.to_string(),
        seq: 1,
        owner: owner.to_string(),
        country: Some("KZ".to_string()),
        language: Some(language.to_string()),
        item_type: Some("text".to_string()),
        urgency: Some(4),
        dated_at: NOW - 10 * MINUTE,
        available_at: NOW - 10 * MINUTE,
        pub_status: "usable".to_string(),
        subjects: vec!["medtop:04000000".to_string()],
        genres: Vec::new(),
        headline: headline.to_string(),
        body: body.to_string(),
        translations: Vec::new(),
    }
}

fn everyone_sees(owner: &str) -> Audience {
    Audience {
        viewer: "reader".to_string(),
        grants: vec![Grant { grantor: owner.to_string(), delay_minutes: 0, subjects: Vec::new() }],
        now: NOW,
    }
}

fn ids(index: &SearchIndex, request: &SearchRequest, audience: &Audience) -> Vec<String> {
    let mut found: Vec<String> = index.search(request, audience).unwrap().hits.into_iter().map(|h| h.item_id).collect();
    found.sort();
    found
}

fn corpus_docs() -> Vec<IndexDoc> {
    vec![
        doc("zh1", "a", "zh", "中吉乌铁路项目正式开工", "连接中国、吉尔吉斯斯坦和乌兹别克斯坦的铁路今天开工建设。"),
        doc("zh2", "a", "zh-Hant", "鐵路貨運創新高", "霍爾果斯口岸的集裝箱列車數量再創新高。"),
        doc("ru1", "a", "ru", "Новая железная дорога", "Строительство железной дороги началось в Оше."),
        doc("ru2", "a", "ru", "Урожай пшеницы", "Фермеры собрали рекордный урожай пшеницы."),
        doc("uz1", "a", "uz-Cyrl", "Тошкентда янги бекат очилди", "Тошкент шаҳрида янги темир йўл бекати очилди."),
        doc(
            "uz2",
            "a",
            "uz-Latn",
            "Samarqandga yangi poyezd",
            "Toshkentdan Samarqandga yangi tezyurar poyezd qatnay boshladi.",
        ),
        doc("kk1", "a", "kk", "Қазақстанда жаңа теміржол", "Қазақстанның оңтүстігінде жаңа теміржол желісі ашылды."),
        doc("en1", "a", "en", "Railways connect Central Asia", "New railways and roads are connecting the region."),
    ]
}

fn corpus() -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let docs = corpus_docs();
    for d in &docs {
        index.upsert(d).unwrap();
    }
    index.commit().unwrap();
    (dir, index)
}

#[test]
fn each_language_is_analysed_as_it_should_be() {
    let (_dir, index) = corpus();
    let audience = everyone_sees("a");
    let check = |query: &str, expected: &[&str]| {
        let found = ids(&index, &SearchRequest::text(query), &audience);
        assert_eq!(found, expected, "query {query:?}");
    };
    // Chinese: the word inside a longer compound, and traditional and simplified finding each other.
    check("铁路", &["zh1", "zh2"]);
    check("鐵路", &["zh1", "zh2"]);
    // Russian: other inflections.
    check("железная дорога", &["ru1"]);
    check("пшеница", &["ru2"]);
    // Uzbek: Latin finds Cyrillic and the reverse, through case suffixes.
    check("Toshkent", &["uz1", "uz2"]);
    check("Самарқанд", &["uz2"]);
    // Kazakh: a Latin query finds the Cyrillic item.
    check("Qazaqstan", &["kk1"]);
    // English: stemming; and boolean syntax.
    check("railway", &["en1"]);
    check("railway -roads", &[]);
    check("\"железной дороги\"", &["ru1"]);
}

#[test]
fn snippets_highlight_and_facets_count() {
    let (_dir, index) = corpus();
    let results = index.search(&SearchRequest::text("Toshkent"), &everyone_sees("a")).unwrap();
    assert_eq!(results.total, 2);
    assert!(results.hits.iter().all(|h| h.snippet.contains("<b>")), "{:?}", results.hits);
    assert_eq!(results.facets.members, vec![("a".to_string(), 2)]);
    let languages: BTreeSet<&str> = results.facets.languages.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(languages, BTreeSet::from(["uz-cyrl", "uz-latn"]));
    assert_eq!(results.facets.days.iter().map(|(_, n)| n).sum::<u64>(), 2);

    let mut filtered = SearchRequest::text("Toshkent");
    filtered.languages = vec!["uz-Latn".to_string()];
    assert_eq!(ids(&index, &filtered, &everyone_sees("a")), ["uz2"]);
    let mut newest = SearchRequest::text("");
    newest.sort = Sort::Newest;
    newest.limit = 3;
    assert_eq!(index.search(&newest, &everyone_sees("a")).unwrap().hits.len(), 3);
}

#[test]
fn no_hit_snippet_or_facet_leaks_past_the_visibility_rule() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let mut embargoed = doc("e", "owner", "en", "Secret railway budget", "Embargoed railway figures.");
    embargoed.available_at = NOW + 60 * MINUTE;
    let mut killed = doc("k", "owner", "en", "Killed railway story", "Withdrawn railway text.");
    killed.pub_status = "canceled".to_string();
    let mut sport = doc("s", "owner", "en", "Railway workers win the cup", "Sport railway story.");
    sport.subjects = vec!["medtop:15000000".to_string()];
    let open = doc("o", "owner", "en", "Open railway news", "Open railway story.");
    let stranger = doc("x", "stranger", "en", "Stranger railway news", "Another railway story.");
    for d in [&embargoed, &killed, &sport, &open, &stranger] {
        index.upsert(d).unwrap();
    }
    index.commit().unwrap();
    let request = SearchRequest::text("railway");

    let partner = Audience {
        viewer: "partner".to_string(),
        grants: vec![Grant {
            grantor: "owner".to_string(),
            delay_minutes: 0,
            subjects: vec!["medtop:04000000".to_string()],
        }],
        now: NOW,
    };
    let results = index.search(&request, &partner).unwrap();
    assert_eq!(results.hits.iter().map(|h| h.item_id.as_str()).collect::<Vec<_>>(), ["o"]);
    assert_eq!(results.total, 1);
    assert_eq!(results.facets.members, vec![("owner".to_string(), 1)], "facets count only what the caller sees");
    assert!(!format!("{results:?}").contains("Secret") && !format!("{results:?}").contains("Withdrawn"));

    // The owner sees its embargoed and sport items, never killed ones in search.
    let owner = Audience { viewer: "owner".to_string(), grants: Vec::new(), now: NOW };
    assert_eq!(ids(&index, &request, &owner), ["e", "o", "s"]);
    // The embargo ends by itself; a delay postpones.
    let later = Audience { now: NOW + 61 * MINUTE, ..partner.clone() };
    assert_eq!(ids(&index, &request, &later), ["e", "o"]);
    let delayed = Audience {
        viewer: "late".to_string(),
        grants: vec![Grant { grantor: "owner".to_string(), delay_minutes: 30, subjects: Vec::new() }],
        now: NOW,
    };
    assert_eq!(ids(&index, &request, &delayed), Vec::<String>::new(), "10 minutes old, 30 minutes of delay");
    let nobody = Audience { viewer: "nobody".to_string(), grants: Vec::new(), now: NOW };
    assert_eq!(index.search(&request, &nobody).unwrap().total, 0);
}

#[test]
fn the_index_records_what_it_has_and_upserts_replace() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.indexed_seq().unwrap(), 0);
        let mut first = doc("i", "a", "en", "First headline", "Body.");
        first.seq = 7;
        index.upsert(&first).unwrap();
        index.commit().unwrap();
        let mut corrected = doc("i", "a", "en", "Corrected headline", "Body.");
        corrected.seq = 9;
        index.upsert(&corrected).unwrap();
        index.commit().unwrap();
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.indexed_seq().unwrap(), 9, "the payload survives a reopen");
    assert_eq!(index.num_docs(), 1, "a correction replaces, never duplicates");
    assert!(ids(&index, &SearchRequest::text("first"), &everyone_sees("a")).is_empty());
    assert_eq!(ids(&index, &SearchRequest::text("corrected"), &everyone_sees("a")), ["i"]);
}

/// Property: for random small corpora and term queries, the hits equal a naive scan over the visible
/// documents (visibility computed the plain way, words matched after the same analysis).
#[test]
fn term_queries_match_a_naive_scan() {
    let words = ["rail", "grain", "water", "summit", "energy", "cotton", "festival", "border"];
    let owners = ["o1", "o2", "o3"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        let mut docs = Vec::new();
        for n in 0..40 {
            let text: Vec<&str> = (0..1 + next(5)).map(|_| words[next(words.len() as u64) as usize]).collect();
            let mut d = doc(&format!("d{n}"), owners[next(3) as usize], "en", &text.join(" "), "");
            d.available_at = NOW + (next(5) as i64 - 2) * 20 * MINUTE;
            if next(7) == 0 {
                d.pub_status = "canceled".to_string();
            }
            d.subjects = vec![["economy", "sport"][next(2) as usize].to_string()];
            index.upsert(&d).unwrap();
            docs.push(d);
        }
        index.commit().unwrap();
        let mut grants: Vec<Grant> = Vec::new();
        for owner in owners {
            if next(3) == 0 {
                continue;
            }
            let delay_minutes = [0, 30][next(2) as usize];
            let subjects = if next(2) == 0 { Vec::new() } else { vec!["economy".to_string()] };
            grants.push(Grant { grantor: owner.to_string(), delay_minutes, subjects });
        }
        let audience = Audience { viewer: owners[next(3) as usize].to_string(), grants: grants.clone(), now: NOW };
        for word in words {
            let mut request = SearchRequest::text(word);
            request.limit = 200;
            let found = ids(&index, &request, &audience);
            let mut expected: Vec<String> = docs
                .iter()
                .filter(|d| d.pub_status != "canceled")
                .filter(|d| {
                    d.owner == audience.viewer
                        || grants.iter().any(|g| {
                            g.grantor == d.owner
                                && d.available_at + i64::from(g.delay_minutes) * MINUTE <= NOW
                                && (g.subjects.is_empty() || g.subjects.iter().any(|s| d.subjects.contains(s)))
                        })
                })
                .filter(|d| d.headline.split(' ').any(|w| w == word))
                .map(|d| d.item_id.clone())
                .collect();
            expected.sort();
            assert_eq!(found, expected, "round {round}, word {word}");
        }
    }
}

/// Kyrgyz, Turkmen and Tajik sentences, written for this test: a query in the other script, or in
/// another inflection, finds them.
#[test]
fn kyrgyz_turkmen_and_tajik_are_found_across_inflections_and_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    for d in [
        doc("ky1", "a", "ky", "Бишкекте жаңы көпүрө ачылды", "Шаардын чыгышында жаңы көпүрө курулду."),
        doc("tk1", "a", "tk", "Aşgabatda täze demir ýol menzili açyldy", "Menzil şäheriň günbatarynda ýerleşýär."),
        doc("tg1", "a", "tg", "Дар Душанбе нерӯгоҳи нав сохта шуд", "Нерӯгоҳҳо барқи шаҳрро таъмин мекунанд."),
    ] {
        index.upsert(&d).unwrap();
    }
    index.commit().unwrap();
    let audience = everyone_sees("a");
    let check = |query: &str, language: &str, expected: &[&str]| {
        let mut request = SearchRequest::text(query);
        request.query_language = Some(language.to_string());
        assert_eq!(ids(&index, &request, &audience), expected, "query {query:?} as {language}");
    };
    check("Бишкек", "ky", &["ky1"]);
    check("Bishkek", "ky", &["ky1"]);
    check("Ашгабат", "tk", &["tk1"]);
    check("Aşgabat", "tk", &["tk1"]);
    check("нерӯгоҳ", "tg", &["tg1"]);
    check("Dushanbe", "tg", &["tg1"]);
    // Without a query language, every language field is searched.
    assert_eq!(ids(&index, &SearchRequest::text("Bishkek"), &audience), ["ky1"]);
}

/// Real Chinese press text from `../shared/seeds/` (read at test time): a word inside a longer compound
/// and the traditional spelling of a word both find the story.
#[test]
fn chinese_press_text_from_the_seeds() {
    let seeds = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    let seeds = std::env::var_os("KARAVAN_SHARED").map(|d| std::path::PathBuf::from(d).join("seeds")).unwrap_or(seeds);
    let mut files: Vec<_> = std::fs::read_dir(&seeds)
        .unwrap_or_else(|e| panic!("the shared seeds are missing at {}: {e}", seeds.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for (n, text) in texts.iter().enumerate() {
        let headline = text.lines().find(|l| l.chars().count() > 8).unwrap_or_default();
        index.upsert(&doc(&format!("seed{n}"), "a", "zh", headline, text)).unwrap();
    }
    index.commit().unwrap();
    let audience = everyone_sees("a");
    // 哈萨克斯坦 appears in the seed press text; 哈萨克 is the shorter word inside it.
    let with_kazakhstan: Vec<String> =
        texts.iter().enumerate().filter(|(_, t)| t.contains("哈萨克斯坦")).map(|(n, _)| format!("seed{n}")).collect();
    assert!(!with_kazakhstan.is_empty(), "the seeds mention 哈萨克斯坦");
    let mut request = SearchRequest::text("哈萨克斯坦");
    request.limit = 50;
    let found = ids(&index, &request, &audience);
    for id in &with_kazakhstan {
        assert!(found.contains(id), "{id} mentions 哈萨克斯坦 but was not found: {found:?}");
    }
    // The traditional spelling finds the simplified text.
    let mut traditional = SearchRequest::text("哈薩克斯坦");
    traditional.limit = 50;
    assert_eq!(ids(&index, &traditional, &audience), found);
}

/// Subscriptions test new items with `percolate`: it must say exactly what a search says.
#[test]
fn percolation_agrees_with_search() {
    let (_dir, index) = corpus();
    let docs = corpus_docs();
    let requests: Vec<SearchRequest> = vec![
        SearchRequest::text("铁路"),
        SearchRequest::text("железная дорога"),
        SearchRequest::text("\"железной дороги\""),
        SearchRequest::text("Toshkent"),
        SearchRequest::text("railway -roads"),
        SearchRequest::text("railway OR пшеница"),
        SearchRequest::text(""),
        SearchRequest { languages: vec!["uz".into()], ..SearchRequest::text("") },
        SearchRequest { urgency: Some((1, 3)), ..SearchRequest::text("") },
        SearchRequest { subjects: vec!["medtop:04000000".into()], ..SearchRequest::text("теміржол") },
    ];
    let audience = everyone_sees("a");
    let matchers: Vec<_> = requests.iter().map(|r| index.matcher(r).unwrap()).collect();
    let found = index.percolate(&docs, &matchers.iter().collect::<Vec<_>>()).unwrap();
    for (request, positions) in requests.iter().zip(found) {
        let mut percolated: Vec<String> = positions.iter().map(|&p| docs[p].item_id.clone()).collect();
        percolated.sort();
        assert_eq!(percolated, ids(&index, request, &audience), "for {:?}", request.text);
    }
    assert!(index.percolate(&[], &matchers.iter().collect::<Vec<_>>()).unwrap().iter().all(Vec::is_empty));
}

#[test]
fn translations_are_found_in_their_language() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let mut kk = doc("kk1", "a", "kk", "Қазақстанда жаңа теміржол", "Теміржол желісі ашылды.");
    kk.translations = vec![("ru".to_string(), "Новая железная дорога в Казахстане".to_string())];
    index.upsert(&kk).unwrap();
    index.upsert(&doc("ru1", "a", "ru", "Урожай пшеницы", "Фермеры собрали урожай.")).unwrap();
    index.commit().unwrap();
    let audience = everyone_sees("a");
    // The Russian translation is analysed as Russian (another inflection finds it) …
    assert_eq!(ids(&index, &SearchRequest::text("железных дорог"), &audience), ["kk1"]);
    // … while the item keeps its own language for filters.
    let mut request = SearchRequest::text("железных дорог");
    request.languages = vec!["ru".to_string()];
    assert!(ids(&index, &request, &audience).is_empty());
    request.languages = vec!["kk".to_string()];
    request.query_language = Some("ru".to_string());
    assert_eq!(ids(&index, &request, &audience), ["kk1"]);
    // Replacing the document without the translation removes it from the index.
    kk.translations.clear();
    index.upsert(&kk).unwrap();
    index.commit().unwrap();
    assert!(ids(&index, &SearchRequest::text("железных дорог"), &audience).is_empty());
}

/// Found from outside: `yo'l`, `ko'rgazma` and `` ko`rgazma `` answered "Syntax Error" (only `koʻrgazma`
/// with U+02BB worked), and an unbalanced quote did too. Any text a person types is a query: the
/// apostrophe family inside Uzbek words are letters, and syntax that does not parse is read as words.
#[test]
fn any_text_a_person_types_is_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    index
        .upsert(&doc("uz3", "a", "uz-Latn", "Toshkentda koʻrgazma ochildi", "Yangi yoʻl qurilishi haqida gʻoyalar."))
        .unwrap();
    index.upsert(&doc("uz4", "a", "uz-Cyrl", "Кўргазма очилди", "Тошкентда кўргазма.")).unwrap();
    index.upsert(&doc("en2", "a", "en", "Xi's visit to Astana", "The visit of Xi's delegation.")).unwrap();
    index.upsert(&doc("ru3", "a", "ru", "Строительство железной дороги", "О железной дороге.")).unwrap();
    index.commit().unwrap();
    let audience = everyone_sees("a");
    for (query, expected) in [
        ("koʻrgazma", vec!["uz3", "uz4"]),
        ("ko'rgazma", vec!["uz3", "uz4"]),
        ("ko`rgazma", vec!["uz3", "uz4"]),
        ("ko‘rgazma", vec!["uz3", "uz4"]),
        ("ko’rgazma", vec!["uz3", "uz4"]),
        ("koʼrgazma", vec!["uz3", "uz4"]),
        ("yo'l", vec!["uz3"]),
        ("g'oyalar", vec!["uz3"]),
        ("Xi's", vec!["en2"]),
        ("\"железной", vec!["ru3"]),
        ("железной\"", vec!["ru3"]),
        ("железной AND (", vec!["ru3"]),
        ("(((железной", vec!["ru3"]),
        ("железной:", vec!["ru3"]),
        ("\"железной дороги\"", vec!["ru3"]),
        ("-железной", vec!["en2", "uz3", "uz4"]),
    ] {
        let found = index.search(&SearchRequest::text(query), &audience);
        let found = found.unwrap_or_else(|e| panic!("{query}: {e}"));
        let mut ids: Vec<String> = found.hits.into_iter().map(|h| h.item_id).collect();
        ids.sort();
        assert_eq!(ids, expected, "{query}");
    }
    for query in ["\"", "(", ")", ":", "*", "'", "`", "AND", "\"\"", "[", "{", "^", "~"] {
        assert!(index.search(&SearchRequest::text(query), &audience).is_ok(), "{query:?} is refused");
    }
}

#[test]
fn queries_with_too_many_terms_are_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let long = vec!["word"; karavan_search::MAX_QUERY_TERMS + 1].join(" ");
    let error = index.search(&SearchRequest::text(&long), &everyone_sees("a")).unwrap_err();
    assert!(error.to_string().contains("at most 64 are accepted"), "{error}");
    let fine = vec!["word"; karavan_search::MAX_QUERY_TERMS].join(" ");
    assert!(index.search(&SearchRequest::text(&fine), &everyone_sees("a")).is_ok());
}
