//! `karavan serve --demo` opens on a working exchange: members, agreements, keys and items in the
//! member languages, with corrections, a kill and embargoes behaving as they should.

mod support;

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use support::{Server, cli};

struct DemoKey {
    member: String,
    member_id: String,
    role: String,
    key: String,
}

fn demo_keys(dir: &std::path::Path) -> Vec<DemoKey> {
    let text = std::fs::read_to_string(dir.join("demo-keys.txt")).expect("the demo writes its keys");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            DemoKey {
                member: fields[0].to_string(),
                member_id: fields[1].to_string(),
                role: fields[2].to_string(),
                key: fields[3].to_string(),
            }
        })
        .collect()
}

async fn list_all(client: &reqwest::Client, base: &str, key: &str, query: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{base}/v1/items?limit=500{query}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["next"].is_null());
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_opens_on_a_working_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]);
    let keys = demo_keys(dir.path());
    let members = cli(dir.path(), &["member", "list"]);
    assert_eq!(members.lines().count(), 7, "{members}");
    assert!(keys.len() >= 21);
    let client = reqwest::Client::new();
    let key_of = |member: &str, role: &str| {
        keys.iter()
            .find(|k| k.member == member && k.role == role)
            .unwrap_or_else(|| panic!("{member} {role}"))
            .key
            .clone()
    };

    // The person who started it is told where to go and where the demo users are.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let said = loop {
        let said = server.stdout.lock().unwrap().join("\n");
        if said.contains("Demo content") || std::time::Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(said.contains(&format!("Karavan is serving on {}", server.base)), "{said}");
    assert!(said.contains(&format!("{}/login", server.base)), "{said}");
    assert!(said.contains(&dir.path().join("demo-keys.txt").display().to_string()), "{said}");

    // Each member has an admin and an editor to sign in to the web newsroom with.
    let text = std::fs::read_to_string(dir.path().join("demo-keys.txt")).unwrap();
    let users: Vec<Vec<&str>> =
        text.lines().filter_map(|l| l.strip_prefix("#user\t")).map(|l| l.split('\t').collect()).collect();
    assert_eq!(users.len(), 14);
    let editor = users.iter().find(|u| u[0] == "kz" && u[1] == "editor").unwrap();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = browser.get(format!("{}/login", server.base)).send().await.unwrap();
    let csrf = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("karavan_csrf=").map(|rest| rest.split(';').next().unwrap().to_string()))
        .unwrap();
    let signed = browser
        .post(format!("{}/login", server.base))
        .header("cookie", format!("karavan_csrf={csrf}"))
        .form(&[("email", editor[2]), ("password", editor[3]), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER, "the demo editor signs in");

    // The Chinese agency's reader sees a wire in many languages.
    let wire = list_all(&client, &server.base, &key_of("cn", "reader"), "").await;
    let languages: HashSet<&str> = wire.iter().filter_map(|i| i["language"].as_str()).collect();
    for language in ["zh", "ru", "kk", "ky", "tg", "tk", "uz-Latn", "uz-Cyrl", "en"] {
        assert!(languages.contains(language), "no {language} item on the demo wire: {languages:?}");
    }
    assert!(wire.len() >= 25, "only {} items", wire.len());
    // Corrections show their newest version; the killed item is gone; embargoed items are hidden.
    let uris: Vec<&str> = wire.iter().map(|i| i["uri"].as_str().unwrap()).collect();
    assert_eq!(uris.len(), uris.iter().collect::<HashSet<_>>().len(), "one entry per item");
    let demo: Value = serde_json::from_str(include_str!("../demo/demo.json")).unwrap();
    let mut by_uri: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for entry in demo["items"].as_array().unwrap() {
        by_uri.entry(entry["ninjs"]["uri"].as_str().unwrap()).or_default().push(entry);
    }
    let mut hidden_by_embargo = 0;
    for (uri, versions) in &by_uri {
        let last = versions.last().unwrap();
        let killed = last["ninjs"]["pubStatus"] == "canceled";
        let embargoed = versions.iter().any(|v| v.get("embargoMinutes").is_some());
        let owner = last["member"].as_str().unwrap();
        let seen = wire.iter().find(|i| i["uri"] == *uri);
        if killed || (embargoed && owner != "cn") {
            hidden_by_embargo += usize::from(embargoed);
            assert!(seen.is_none(), "{uri} should not be on the wire");
        } else if let Some(item) = seen {
            assert_eq!(item["version"], last["ninjs"]["version"], "{uri} shows its newest version");
        }
    }
    assert!(hidden_by_embargo >= 1, "the demo has embargoed items");

    // Owners see their own embargoed items.
    for (uri, versions) in &by_uri {
        if versions.iter().any(|v| v.get("embargoMinutes").is_some()) {
            let owner = versions[0]["member"].as_str().unwrap();
            let own = list_all(&client, &server.base, &key_of(owner, "reader"), "").await;
            assert!(own.iter().any(|i| i["uri"] == *uri), "{owner} sees its embargoed {uri}");
        }
    }
    let member_id = &keys.iter().find(|k| k.member == "kz").unwrap().member_id;
    let kz_only = list_all(&client, &server.base, &key_of("cn", "reader"), &format!("&member={member_id}")).await;
    assert!(!kz_only.is_empty());

    // Restarting with --demo again loads nothing twice.
    drop(server);
    let server = Server::start(dir.path(), &["--demo"]);
    let again = list_all(&client, &server.base, &key_of("cn", "reader"), "").await;
    assert_eq!(again.len(), wire.len());
}
