//! The web newsroom through the real binary over HTTP: sign-in with a CSRF-protected form, session
//! cookies, the UI language (browser, switch, remembered), sign-out, and the security headers.
//! (Browser tests with chromium come with the newsroom's pages.)

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use support::{Server, binary, cli};

const PASSWORD: &str = support::WEB_PASSWORD;

fn add_user(data_dir: &std::path::Path, member: &str, email: &str) -> String {
    let mut child = Command::new(binary())
        .args(["user", "add", "--member", member, "--email", email, "--name", "Айгерім Сейіт", "--role", "editor"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The value a response sets for a cookie, and the whole Set-Cookie line.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        let (pair, _) = line.split_once(';').unwrap_or((line, ""));
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| (value.to_string(), line.to_string()))
    })
}

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_sign_in_switch_language_and_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let member = cli(dir.path(), &["member", "add", "--name", "Kazinform", "--country", "KZ", "--languages", "kk,ru"]);
    let user = add_user(dir.path(), &member, "editor@kazinform.kz");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Not signed in: the newsroom sends the browser to sign in.
    let response = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2F");

    // The form in the browser's language, with a CSRF token in a cookie and in the form.
    let response =
        client.get(format!("{base}/login")).header("accept-language", "kk-KZ,ru;q=0.8").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let (csrf, line) = set_cookie(response.headers(), "karavan_csrf").unwrap();
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Lax"), "{line}");
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"kk\">") && html.contains("Құпиясөз"), "Kazakh labels");
    assert_eq!(hidden(&html, "csrf"), csrf);
    let csrf_cookie = format!("karavan_csrf={csrf}");

    let sign_in = |form: Vec<(&'static str, String)>, cookie: String| {
        let client = client.clone();
        let url = format!("{base}/login");
        async move { client.post(url).header("cookie", cookie).form(&form).send().await.unwrap() }
    };
    // A forged form (no matching CSRF cookie) and a wrong password are refused.
    let forged = sign_in(
        vec![("email", "editor@kazinform.kz".into()), ("password", PASSWORD.into()), ("csrf", "x".into())],
        csrf_cookie.clone(),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = sign_in(
        vec![("email", "editor@kazinform.kz".into()), ("password", "not the password".into()), ("csrf", csrf.clone())],
        csrf_cookie.clone(),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(wrong.headers(), "karavan_session").is_none());
    let unknown = sign_in(
        vec![("email", "nobody@kazinform.kz".into()), ("password", PASSWORD.into()), ("csrf", csrf.clone())],
        csrf_cookie.clone(),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    // The right password: a session cookie and back to where the editor was going.
    let signed = sign_in(
        vec![
            ("email", "Editor@Kazinform.kz".into()),
            ("password", PASSWORD.into()),
            ("csrf", csrf.clone()),
            ("next", "/search".into()),
        ],
        csrf_cookie.clone(),
    )
    .await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()[LOCATION], "/search");
    let (token, line) = set_cookie(signed.headers(), "karavan_session").unwrap();
    assert!(line.contains("HttpOnly") && line.contains("Path=/"), "{line}");
    let session = format!("karavan_session={token}");
    let open = sign_in(
        vec![
            ("email", "editor@kazinform.kz".into()),
            ("password", PASSWORD.into()),
            ("csrf", csrf.clone()),
            ("next", "https://evil.example/".into()),
        ],
        csrf_cookie,
    )
    .await;
    assert_eq!(open.headers()[LOCATION], "/", "no open redirect");

    // The wire page lists the member's items (escaped), and the live wire streams to the session.
    let key = cli(dir.path(), &["key", "create", "--member", &member, "--role", "editor"]);
    let item = serde_json::json!({
        "uri": "urn:web:1", "language": "kk", "urgency": 2,
        "headlines": [{ "value": "Астанада <b>жаңа</b> көпір ашылды" }],
    });
    let published = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
    assert_eq!(published.status(), StatusCode::CREATED);
    let home =
        client.get(format!("{base}/")).header("cookie", &session).header("accept-language", "en").send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().await.unwrap();
    assert!(html.contains("Signed in as Айгерім Сейіт"), "{html}");
    assert!(html.contains("Астанада &lt;b&gt;жаңа&lt;") && !html.contains("<b>жаңа"), "the headline, escaped: {html}");
    assert!(html.contains("<td class=\"member\">Kazinform</td>") && html.contains("/assets/newsroom.js"));
    let mut live = client.get(format!("{base}/wire/stream")).header("cookie", &session).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(live.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut second = item.clone();
    second["uri"] = serde_json::json!("urn:web:2");
    client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&second).send().await.unwrap();
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), live.chunk()).await.unwrap().unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk).to_string();
    assert!(text.contains("event: publish") && text.contains("\"memberName\":\"Kazinform\""), "{text}");
    drop(live);
    assert_eq!(client.get(format!("{base}/wire/stream")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The search page: results, a clear message for a query it cannot read, sign-in first.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let found = client
        .get(format!("{base}/search?q=%D0%BA%D3%A9%D0%BF%D1%96%D1%80"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    assert!(found.text().await.unwrap().contains("class=\"hit\""));
    // Any text is a query (an unclosed parenthesis is read as words); one over the size limit is not.
    let unclosed = client.get(format!("{base}/search?q=%28unclosed")).header("cookie", &session).send().await.unwrap();
    assert_eq!(unclosed.status(), StatusCode::OK);
    let too_long = vec!["word"; 65].join("+");
    let bad = client
        .get(format!("{base}/search?q={too_long}"))
        .header("cookie", &session)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // Said in the UI language, with the API's detail naming the parameter.
    let said = bad.text().await.unwrap();
    assert!(said.contains("A value is not valid.") && said.contains("Details: q:"), "{said}");
    let anonymous = client.get(format!("{base}/search?q=x")).send().await.unwrap();
    assert_eq!(anonymous.headers()[LOCATION], "/login?next=%2Fsearch%3Fq%3Dx");
    // Results page 50 at a time: a next-page link continues the same search to the end.
    for n in 0..55 {
        let item = serde_json::json!({
            "uri": format!("urn:pager:{n}"), "type": "text", "language": "en",
            "headlines": [{ "value": format!("Apricot harvest report {n}") }],
        });
        let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let first = client.get(format!("{base}/search?q=apricot&sort=date")).header("cookie", &session).send().await;
    let first = first.unwrap().text().await.unwrap();
    assert_eq!(first.matches("class=\"hit\"").count(), 50);
    let link = first.split("rel=\"next\" href=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a next link");
    let link = link.replace("&amp;", "&").replace("&#x2f;", "/");
    assert!(link.starts_with("/search?q=apricot&sort=date&cursor="), "{link}");
    let second = client.get(format!("{base}{link}")).header("cookie", &session).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let second = second.text().await.unwrap();
    assert_eq!(second.matches("class=\"hit\"").count(), 5);
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("Apricot harvest report 0") && first.contains("Apricot harvest report 54"));

    // The item page, its ninjs download, and what is not there.
    let published: serde_json::Value = published.json().await.unwrap();
    let item_id = published["id"].as_str().unwrap();
    let item_page = client.get(format!("{base}/items/{item_id}")).header("cookie", &session).send().await.unwrap();
    assert_eq!(item_page.status(), StatusCode::OK);
    assert!(item_page.text().await.unwrap().contains("Астанада &lt;b&gt;жаңа&lt;"));
    let download = client.get(format!("{base}/items/{item_id}/ninjs")).header("cookie", &session).send().await.unwrap();
    assert!(download.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let ninjs: serde_json::Value = download.json().await.unwrap();
    assert_eq!(ninjs["uri"], "urn:web:1");
    for missing in ["itm_01ARZ3NDEKTSV4RRFFQ69G5FAV", "garbage"] {
        let response = client.get(format!("{base}/items/{missing}")).header("cookie", &session).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    let anonymous = client.get(format!("{base}/items/{item_id}")).send().await.unwrap();
    assert_eq!(anonymous.headers()[LOCATION], format!("/login?next=%2Fitems%2F{item_id}"));
    let killed = client
        .post(format!("{base}/v1/items/{item_id}/kill"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"reason": "wrong bridge"}))
        .send()
        .await
        .unwrap();
    assert_eq!(killed.status(), StatusCode::CREATED);
    let gone = client
        .get(format!("{base}/items/{item_id}"))
        .header("cookie", &session)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
    let html = gone.text().await.unwrap();
    assert!(html.contains("killed by its publisher") && html.contains("wrong bridge"), "{html}");
    let logout_csrf = hidden(&html, "csrf");

    // Switching to Kyrgyz: remembered in a cookie, and for the user (a new browser shows Kyrgyz too).
    let switched = client.get(format!("{base}/?ui=ky")).header("cookie", &session).send().await.unwrap();
    assert_eq!(set_cookie(switched.headers(), "karavan_ui").unwrap().0, "ky");
    assert!(switched.text().await.unwrap().contains("<html lang=\"ky\">"));
    let elsewhere =
        client.get(format!("{base}/")).header("cookie", &session).header("accept-language", "en").send().await.unwrap();
    assert!(elsewhere.text().await.unwrap().contains("<html lang=\"ky\">"), "the user's language follows them");

    // Signing out needs the session's CSRF token; afterwards the cookie opens nothing.
    let forged = client
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let out = client
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .form(&[("csrf", logout_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!((out.status(), out.headers()[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    let after = client.get(format!("{base}/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the old session is gone");

    // A disabled user cannot sign in.
    cli(dir.path(), &["user", "disable", "--member", &member, &user]);
    let response = client.get(format!("{base}/login")).send().await.unwrap();
    let (csrf, _) = set_cookie(response.headers(), "karavan_csrf").unwrap();
    let refused = client
        .post(format!("{base}/login"))
        .header("cookie", format!("karavan_csrf={csrf}"))
        .form(&[("email", "editor@kazinform.kz"), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let missing = client.get(format!("{base}/no-such-page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let css = client.get(format!("{base}/assets/newsroom.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(
        client.get(format!("{base}/assets/..%2FCargo.toml")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// Found from outside: 400 wrong passwords at 35/s, then the right one worked. Now repeated failures
/// wait, before the password is looked at; a real user signing in from another address is not
/// locked out; and the right password, once the wait is over, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_are_slowed_without_locking_the_owner_out() {
    let dir = tempfile::tempdir().unwrap();
    let member = cli(dir.path(), &["member", "add", "--name", "Kabar", "--country", "KG", "--languages", "ky,ru"]);
    add_user(dir.path(), &member, "editor@kabar.kg");
    let server = Server::start(dir.path(), &[]);
    // The attacker and the owner come from two loopback addresses.
    let from = |address: [u8; 4]| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(address))
            .build()
            .unwrap()
    };
    let attacker = from([127, 0, 0, 1]);
    let owner = from([127, 0, 0, 2]);
    let base = server.base.clone();
    let attempt = |client: reqwest::Client, password: &'static str| {
        let base = base.clone();
        async move {
            let form = client.get(format!("{base}/login")).send().await.unwrap();
            let (csrf, _) = set_cookie(form.headers(), "karavan_csrf").unwrap();
            let response = client
                .post(format!("{base}/login"))
                .header("cookie", format!("karavan_csrf={csrf}"))
                .header("accept-language", "en")
                .form(&[("csrf", csrf.as_str()), ("email", "editor@kabar.kg"), ("password", password), ("next", "/")])
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (status, retry_after, response.text().await.unwrap())
        }
    };
    // Five wrong guesses are answered as wrong; then the attacker has to wait, even with the right one.
    for _ in 0..5 {
        let (status, _, _) = attempt(attacker.clone(), "not the password at all").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let mut throttled = 0;
    for _ in 0..30 {
        let (status, retry_after, html) = attempt(attacker.clone(), "still not the password").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
            assert!(html.contains("Too many failed sign-ins"), "{html}");
            throttled += 1;
        }
    }
    assert!(throttled >= 25, "only {throttled} of 30 rapid guesses were held back");
    let (status, _, _) = attempt(attacker.clone(), PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the right password gets no answer during the wait");

    // The owner, from their own address, signs in at once.
    let (status, _, html) = attempt(owner.clone(), PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
}

#[test]
fn guessable_passwords_are_refused_when_users_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let member = cli(dir.path(), &["member", "add", "--name", "Kabar", "--country", "KG", "--languages", "ky"]);
    for weak in ["password123", "qwertyuiop12", "iloveyou12345"] {
        let (ok, _, stderr) = support::run_with_input(
            dir.path(),
            &["user", "add", "--member", &member, "--email", "x@kabar.kg", "--name", "X", "--role", "editor"],
            &format!("{weak}\n"),
        );
        assert!(!ok, "{weak} was accepted");
        assert!(stderr.contains("too easy to guess"), "{weak}: {stderr}");
    }
}

/// The wire desk: pages of 50 rows with a link to older ones (filters kept), markers for corrections,
/// kills and machine translations, headlines in the reader's UI language where a translation is
/// stored (the original in the tooltip), and an empty state that says when the filters match
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_desk_pages_marks_and_reads_in_the_readers_language() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100/nllb-2x2");
    cli(dir.path(), &["models", "import", fixture.to_str().unwrap()]);
    let (xinhua, xinhua_key) = support::member_with_key(dir.path(), "Xinhua", "editor");
    let (kazinform, kz_key) = support::member_with_key(dir.path(), "Kazinform", "editor");
    cli(dir.path(), &["agreement", "add", "--grantor", &xinhua, "--grantee", "*"]);
    add_user(dir.path(), &kazinform, "desk@kazinform.kz");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let read = json!({ "languages": ["kk"] });
    let response = client.put(format!("{base}/v1/me/read-languages")).bearer_auth(&kz_key).json(&read).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);

    // 53 items in Chinese; the first is corrected and the second killed.
    let item = |n: usize, headline: &str| {
        json!({ "uri": format!("urn:xh:desk:{n}"), "type": "text", "language": "zh", "urgency": 3,
                "headlines": [{ "value": headline }],
                "bodies": [{ "contentType": "text/plain", "value": "双方讨论了贸易。" }] })
    };
    let mut ids = Vec::new();
    for n in 0..53 {
        let response = client
            .post(format!("{base}/v1/items"))
            .bearer_auth(&xinhua_key)
            .json(&item(n, &format!("第{n}号新闻")))
            .send();
        let published: serde_json::Value = response.await.unwrap().json().await.unwrap();
        ids.push(published["id"].as_str().unwrap().to_string());
    }
    let corrected =
        client.post(format!("{base}/v1/items")).bearer_auth(&xinhua_key).json(&item(0, "第0号新闻（更正）"));
    assert_eq!(corrected.send().await.unwrap().status(), StatusCode::CREATED);
    let kill = client
        .post(format!("{base}/v1/items/{}/kill", ids[1]))
        .bearer_auth(&xinhua_key)
        .json(&json!({ "reason": "wrong" }));
    assert!(kill.send().await.unwrap().status().is_success());
    // Every head and body job into Kazakh is done (the fixture's words are no translation, but real).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let queue: serde_json::Value = client
            .get(format!("{base}/v1/translation/queue"))
            .bearer_auth(&xinhua_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if queue["done"].as_u64() >= Some(2 * 53) && queue["queued"] == 0 && queue["running"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the queue did not drain: {queue}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let session = support::sign_in(&base, "desk@kazinform.kz").await.cookie;
    let page = |path: String| {
        let (client, session, base) = (client.clone(), session.clone(), base.clone());
        async move {
            let response = client.get(format!("{base}{path}")).header("cookie", session).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.unwrap()
        }
    };
    let rows = |html: &str| html.matches("<tr class=\"").count();
    let html = page("/?ui=kk".into()).await;
    assert_eq!(rows(&html), 50, "a page of 50 rows");
    // Headlines in Kazakh where the translation is stored, marked, with the original in the tooltip.
    assert!(html.contains("class=\"badge mt\" title=\"Машиналық аударма (hf-nllb-2x2)\""), "{html}");
    assert!(html.contains("title=\"第52号新闻\""), "the original in the tooltip");
    assert!(
        html.contains(&format!("href=\"/items/{}?lang=kk\" lang=\"kk\"", ids[52])),
        "the link opens the translation"
    );
    // The correction and the kill are marked in the UI language (no English "KILL:").
    assert!(html.contains("<span class=\"badge correction\">Түзету</span>"), "{html}");
    assert!(html.contains("<span class=\"badge kill\">Кері қайтарылды</span>"), "{html}");
    assert!(!html.contains("KILL"));
    // Older items, one page further, with the filters kept.
    let unescape = |href: &str| href.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(unescape(&html).contains("data-stream=\"/wire/stream\""), "the first page follows the live wire");
    let older = unescape(
        html.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap(),
    );
    assert!(older.starts_with("/?after="), "{older}");
    let html = page(older).await;
    assert_eq!(rows(&html), 3);
    assert!(!html.contains("rel=\"next\"") && html.contains("Ең жаңалары"), "the last page links back to the newest");
    assert!(!html.contains("data-stream"), "an older page does not take live rows");
    let filtered = page("/?urgency=3&lang=zh".into()).await;
    let older = unescape(
        filtered.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap(),
    );
    assert!(older.contains("urgency=3") && older.contains("lang=zh") && older.contains("after="), "{older}");
    // Filters that match nothing say so, with a way back.
    let html = page("/?urgency=1-2&ui=kk".into()).await;
    assert_eq!(rows(&html), 0);
    assert!(
        html.contains("Бұл сүзгілерге сай материал жоқ.") && !html.contains("Лентаңызда әзірге ештеңе жоқ."),
        "{html}"
    );
    // In another UI language the headlines stay as written where nothing is stored for it.
    let html = page("/?ui=en".into()).await;
    assert!(html.contains(">第52号新闻</a>") && !html.contains("badge mt"), "no English translation is stored");

    // The publishing form starts in the member's language and wants a real headline and a text.
    let form = page("/publish?ui=kk".into()).await;
    assert!(form.contains("<option value=\"kk\" selected>"), "{form}");
    let csrf = hidden(&form, "csrf");
    let fields = [
        ("csrf", csrf),
        ("headline", "   ".into()),
        ("language", "kk".into()),
        ("urgency", "4".into()),
        ("body", "<p> </p>".into()),
    ];
    let refused = client.post(format!("{base}/publish")).header("cookie", &session).form(&fields).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"headline-error\"") && html.contains("Тақырып жазыңыз (тек бос орын емес)."), "{html}");
    assert!(html.contains("id=\"body-error\"") && html.contains("Материалдың мәтінін жазыңыз."), "{html}");
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"headline-error\""));

    // An editor on the administration page gets a refusal in the UI language, inside the newsroom.
    let refused = client.get(format!("{base}/admin")).header("cookie", &session).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(html.contains("<h1>Рұқсат етілмеген</h1>") && html.contains("href=\"/search\""), "{html}");
    // A kill asks first, requires its reason, and only then kills.
    let own = json!({ "uri": "urn:kz:desk", "language": "kk", "headlines": [{ "value": "Жаңа көпір" }] });
    let response = client.post(format!("{base}/v1/items")).bearer_auth(&kz_key).json(&own).send().await.unwrap();
    let own_id = response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let csrf = hidden(&form, "csrf");
    let kill = |fields: Vec<(&'static str, String)>| {
        let (client, session, url) = (client.clone(), session.clone(), format!("{base}/items/{own_id}/kill"));
        async move { client.post(url).header("cookie", session).form(&fields).send().await.unwrap() }
    };
    let asked = kill(vec![("csrf", csrf.clone()), ("reason", "Қате дерек".into())]).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let html = asked.text().await.unwrap();
    assert!(html.contains("role=\"alertdialog\"") && html.contains("Бұл материалды кері қайтарасыз ба?"), "{html}");
    assert!(html.contains("name=\"confirm\" value=\"yes\"") && html.contains("value=\"Қате дерек\""), "{html}");
    let no_reason = kill(vec![("csrf", csrf.clone()), ("reason", " ".into()), ("confirm", "yes".into())]).await;
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.text().await.unwrap().contains("Кері қайтару себебін жазыңыз"));
    let item = client.get(format!("{base}/v1/items/{own_id}")).bearer_auth(&kz_key).send().await.unwrap();
    assert_eq!(item.status(), StatusCode::OK, "not killed yet");
    let killed = kill(vec![("csrf", csrf), ("reason", "Қате дерек".into()), ("confirm", "yes".into())]).await;
    assert_eq!(killed.status(), StatusCode::SEE_OTHER);
    let item = client.get(format!("{base}/v1/items/{own_id}")).bearer_auth(&kz_key).send().await.unwrap();
    assert_eq!(item.status(), StatusCode::GONE, "killed");

    // The language switch works on a subscription's page too: remembered, then the page without it.
    let spec = json!({ "name": "Kazakh", "query": { "lang": "kk" } });
    let created = client.post(format!("{base}/v1/subscriptions")).bearer_auth(&kz_key).json(&spec).send().await;
    let subscription = created.unwrap().json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let switched = client
        .get(format!("{base}/subscriptions/{subscription}?ui=ru"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(switched.headers()[LOCATION], format!("/subscriptions/{subscription}"));
    assert_eq!(set_cookie(switched.headers(), "karavan_ui").unwrap().0, "ru");
    let html = page(format!("/subscriptions/{subscription}")).await;
    assert!(html.contains("<html lang=\"ru\">"), "the user's language is remembered");
    // A webhook the server will not call is refused in the editor's words, naming no server option.
    let fields = [
        ("csrf", hidden(&html, "csrf")),
        ("name", "Kazakh".into()),
        ("lang", "kk".into()),
        ("webhook", "http://127.0.0.1:9/hook".into()),
    ];
    let refused = client
        .post(format!("{base}/subscriptions/{subscription}"))
        .header("cookie", &session)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Сервер не будет отправлять вебхуки на этот адрес."), "{html}");
    assert!(!html.contains("--allow-private-webhooks"), "{html}");
}

/// A user's time zone: chosen on the settings page (a name the tz database does not know is refused
/// with the name), then every server-written time is in it and a wire day is that zone's day, whatever
/// offset the browser sends; cleared, times follow the browser again. Forms that cannot be undone ask
/// first without scripts too (disabling a user, a new feed URL).
#[tokio::test]
async fn a_users_time_zone_sets_the_times_and_the_wire_day() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let (kazinform, key) = support::member_with_key(dir.path(), "Kazinform", "editor");
    support::add_web_user(dir.path(), &kazinform, "tz@kazinform.kz");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // 20:30 UTC on the 6th is 01:30 on the 7th in Almaty; 18:30 UTC is still the 6th there.
    let mut ids = Vec::new();
    for (n, at) in [(1, "2026-12-06T20:30:00Z"), (2, "2026-12-06T18:30:00Z")] {
        let item = json!({ "uri": format!("urn:kz:tz:{n}"), "language": "kk", "versionCreated": at,
                           "headlines": [{ "value": format!("Уақыт белдеуі {n}") }] });
        let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let session = support::sign_in(&base, "tz@kazinform.kz").await;
    let get = |path: &str| {
        let request = client.get(format!("{base}{path}")).header("cookie", &session.cookie).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let save = |zone: &str| {
        let form = [("csrf", session.csrf.as_str()), ("time_zone", zone), ("ui", "en")];
        client.post(format!("{base}/settings")).header("cookie", &session.cookie).form(&form).send()
    };
    let day = "/?day=2026-12-07&tz=0&ui=en";
    // Without a setting: the browser's offset (here 0, UTC) decides the day, and times are in UTC.
    let html = get(day).await;
    assert!(!html.contains("Уақыт белдеуі 1") && !html.contains("Уақыт белдеуі 2"), "neither is on the 7th in UTC");
    assert!(!html.contains("data-time-zone"));

    let refused = save("Mars/Olympus").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("Mars&#x2f;Olympus"), "the bad name is named");
    let saved = save("Asia/Almaty").await.unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved.headers()[LOCATION], "/settings?saved=1");
    let html = get("/settings?saved=1").await;
    assert!(html.contains("<option value=\"Asia&#x2f;Almaty\" selected>"), "the choice is shown");
    assert!(html.contains("Settings saved."));

    let html = get(day).await;
    assert!(html.contains("data-time-zone=\"Asia&#x2f;Almaty\""), "the pages' script is told the zone");
    assert!(html.contains("Уақыт белдеуі 1") && !html.contains("Уақыт белдеуі 2"), "Almaty's 7th: {html}");
    assert!(html.contains("7 Dec 2026, 01:30 +05"), "the server writes Almaty's time");

    assert_eq!(save("").await.unwrap().status(), StatusCode::SEE_OTHER);
    let html = get(day).await;
    assert!(!html.contains("data-time-zone") && !html.contains("Уақыт белдеуі 1"), "the browser's again");

    // No translation model here: an editor opening an item in a language the agency does not read is
    // told so, once (the browser remembers); the translation page always says it.
    let read = json!({ "languages": ["ru"] });
    let response = client.put(format!("{base}/v1/me/read-languages")).bearer_auth(&key).json(&read).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    let item = &ids[0];
    let first = client.get(format!("{base}/items/{item}?ui=en")).header("cookie", &session.cookie).send().await;
    let first = first.unwrap();
    let told = set_cookie(first.headers(), "karavan_model_notice").expect("remembered").1;
    assert!(first.text().await.unwrap().contains("Machine translation is not set up"));
    let cookies = format!("{}; karavan_model_notice={told}", session.cookie);
    let again = client.get(format!("{base}/items/{item}?ui=en")).header("cookie", &cookies).send().await.unwrap();
    assert!(!again.text().await.unwrap().contains("Machine translation is not set up"), "said once");
    assert!(get("/translation").await.contains("Machine translation is not set up"));

    // Without scripts a new feed URL is asked for on a page of its own before anything changes.
    let spec = json!({ "name": "All", "query": {} });
    let created = client.post(format!("{base}/v1/subscriptions")).bearer_auth(&key).json(&spec).send().await;
    let id = created.unwrap().json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let rotate = |confirm: bool| {
        let mut form = vec![("csrf", session.csrf.clone())];
        if confirm {
            form.push(("confirm", "yes".into()));
        }
        client
            .post(format!("{base}/subscriptions/{id}/feed-token"))
            .header("cookie", &session.cookie)
            .form(&form)
            .send()
    };
    let asked = rotate(false).await.unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let html = asked.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("role=\"alertdialog\"") && !html.contains("/feeds/"), "asked, no new URL yet");
    let rotated = rotate(true).await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
    assert!(rotated.contains("/feeds/"), "the new feed URL is shown once confirmed");

    // An upload over the server's limit is told so on a page in the UI language (with the limit),
    // before the body is read; the API answers the same with its JSON error.
    let over = |path: &str, accept: &str| {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {}; karavan_ui=kk\r\nAccept: {accept}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
            session.cookie,
            8 * 1024 * 1024
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let page = over("/publish/upload", "text/html");
    assert!(page.starts_with("HTTP/1.1 413"), "{page}");
    assert!(page.contains("text/html") && page.contains("4 MB"), "{page}");
    assert!(!page.contains("Too large"), "in the UI language (kk): {page}");
    let api = over("/v1/items", "application/json");
    assert!(api.starts_with("HTTP/1.1 413") && api.contains("payload_too_large"), "{api}");
}

/// Stories in the newsroom: the list (newest activity first) and a story's page comparing the
/// agencies' coverage, and the item page naming its story; an agency sees only its part.
#[tokio::test]
async fn stories_are_listed_and_compared_across_agencies() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let (kazinform, kz_key) = support::member_with_key(dir.path(), "Kazinform", "editor");
    let (tass, tass_key) = support::member_with_key(dir.path(), "TASS", "editor");
    cli(dir.path(), &["agreement", "add", "--grantor", &kazinform, "--grantee", "*"]);
    cli(dir.path(), &["agreement", "add", "--grantor", &tass, "--grantee", "*"]);
    support::add_web_user(dir.path(), &kazinform, "stories@kazinform.kz");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let publish = |key: &str, item: serde_json::Value| {
        let request = client.post(format!("{base}/v1/items")).bearer_auth(key).json(&item).send();
        async move { request.await.unwrap().json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string() }
    };
    let ru = publish(&tass_key, json!({ "uri": "urn:tass:s1", "language": "ru",
        "headlines": [{ "value": "Токаев прибыл в Ташкент с государственным визитом" }],
        "bodies": [{ "contentType": "text/plain", "value": "Касым-Жомарт Токаев прибыл в Ташкент. Переговоры с Шавкатом Мирзиёевым пройдут 9 декабря." }] })).await;
    let kk = publish(&kz_key, json!({ "uri": "urn:kz:s1", "language": "kk",
        "headlines": [{ "value": "Тоқаев Ташкентке мемлекеттік сапармен барды" }],
        "bodies": [{ "contentType": "text/plain", "value": "Қасым-Жомарт Тоқаев Ташкентке келді. Шавкат Мирзиёевпен келіссөздер 9 желтоқсанда өтеді." }] })).await;
    // The story engine places both within seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let story = loop {
        let response = client.get(format!("{base}/v1/items/{kk}/story")).bearer_auth(&kz_key).send().await.unwrap();
        if response.status() == StatusCode::OK {
            let body: serde_json::Value = response.json().await.unwrap();
            if body["story"]["size"] == 2 {
                break body["story"]["id"].as_str().unwrap().to_string();
            }
        }
        assert!(std::time::Instant::now() < deadline, "the items were not placed in one story");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let session = support::sign_in(&base, "stories@kazinform.kz").await;
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).header("cookie", &session.cookie).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.unwrap().replace("&#x2f;", "/")
        }
    };
    let list = get("/stories?ui=en".into()).await;
    assert!(list.contains(&format!("href=\"/stories/{story}\"")), "{list}");
    assert!(list.contains("Kazinform") && list.contains("TASS"), "both agencies are named");
    let page = get(format!("/stories/{story}")).await;
    assert!(page.contains("Coverage by agency") && page.contains("Timeline"), "{page}");
    assert!(page.contains(&format!("href=\"/items/{ru}\"")) && page.contains(&format!("href=\"/items/{kk}\"")));
    let item = get(format!("/items/{kk}")).await;
    assert!(item.contains(&format!("href=\"/stories/{story}\"")) && item.contains("2 items"), "{item}");
    let missing = client
        .get(format!("{base}/stories/sty_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
