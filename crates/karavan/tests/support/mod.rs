//! Shared helpers for tests and benches that drive the real `karavan` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_karavan"))
}

/// Runs a CLI subcommand on a data directory and returns its stdout, failing on a non-zero exit.
pub fn cli(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "karavan {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output").trim().to_string()
}

/// Runs `karavan ARGS --data-dir DIR` with `input` on standard input; returns (success, stdout,
/// stderr), stdout as written.
#[allow(dead_code)]
/// A models directory under `data` (named `name`) with the test models (linked, not copied) and the
/// translation fixture imported (a random-weight NLLB: its words are no translation, but the flow is
/// the real one).
pub fn models_with_translation_fixture(data: &Path, name: &str) -> PathBuf {
    let installed = karavan_lang::testing::models();
    let dir = data.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(installed.root()).unwrap() {
        let entry = entry.unwrap();
        let target = dir.join(entry.file_name());
        if entry.file_name() == "models.json" {
            std::fs::copy(entry.path(), target).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), target).unwrap();
        }
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100/nllb-2x2");
    cli(data, &["models", "import", "--models-dir", dir.to_str().unwrap(), fixture.to_str().unwrap()]);
    dir
}

pub fn run_with_input(data_dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("input written");
    let output = child.wait_with_output().expect("the binary ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Creates a member with an admin key; returns (member id, key).
pub fn member_with_key(data_dir: &Path, name: &str, role: &str) -> (String, String) {
    let id = cli(data_dir, &["member", "add", "--name", name, "--country", "KZ", "--languages", "kk,ru"]);
    let key = cli(data_dir, &["key", "create", "--member", &id, "--role", role]);
    (id, key)
}

/// A running `karavan serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// What the server has written to standard output so far, line by line.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server on a free port and waits until it answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra, &[])
    }

    /// [`Server::start`] with environment variables set for the server.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stdout_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = std::sync::Arc::clone(&stdout_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        // Read the log until the server says where it listens, then keep draining it.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("address=").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default().to_string();
                    let _ = sender.send(address);
                    sent = true;
                }
            }
        });
        let address = receiver.recv_timeout(Duration::from_secs(60)).expect("the server logs its address");
        let server = Server { child, base: format!("http://{address}"), stdout: stdout_lines };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.base);
        while Instant::now() < deadline {
            if let Ok(healthy) = probe::get_ok(&url)
                && healthy
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not become healthy at {url}");
    }

    /// Sends SIGTERM and waits for the process to exit, failing the test if it takes longer than
    /// `limit`; returns how it exited and how long it took.
    pub fn terminate(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let signalled = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.expect("kill runs").success(), "SIGTERM could not be sent");
        loop {
            if let Some(exit) = self.child.try_wait().expect("the server's status") {
                return (exit, signalled.elapsed());
            }
            assert!(signalled.elapsed() < limit, "the server did not stop within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the server exits");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking health probe without pulling in reqwest's blocking client.
mod probe {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn get_ok(url: &str) -> std::io::Result<bool> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.starts_with("HTTP/1.1 200"))
    }
}

/// Percent-encodes a query parameter's value.
pub fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The parallel dev set's rows (`karavan-lang/devset/parallel.tsv`): each story's nine renderings, in
/// the column order en, zh, ru, kk, ky, tg, tk, uz (Latin), uz-Cyrl.
pub fn devset() -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/devset/parallel.tsv");
    let text = std::fs::read_to_string(path).expect("the dev set");
    text.lines().skip(1).map(|line| line.split('\t').skip(1).map(str::to_string).collect()).collect()
}

/// A realistic item of about 2 KB: headline, three HTML paragraphs, subjects, places, rights.
pub fn realistic_item(uri: &str, n: usize) -> serde_json::Value {
    let language = ["kk", "ru", "zh", "uz-Latn", "en"][n % 5];
    serde_json::json!({
        "uri": uri,
        "type": "text",
        "language": language,
        "urgency": 1 + (n % 9),
        "headlines": [{ "value": format!("Freight trains between Khorgos and Tashkent hit a record, report {n}") }],
        "bodies": [{
            "contentType": "text/html",
            "value": format!(
                "<p>ALMATY, report {n}. The number of container trains crossing the Khorgos gateway rose again this \
                 month, the railway operator said on Tuesday, as shippers moved more cargo from sea to rail along \
                 the middle corridor.</p><p>Officials said the new schedule adds two weekly departures to Tashkent \
                 and one to Baku, and that customs clearance at the border now takes less than a day on average. \
                 Traders in Urumqi welcomed the change, citing lower costs for electronics and textiles.</p><p>The \
                 operator expects volumes to keep growing next year as a second track opens and the dry port in \
                 Khorgos extends its container yard, according to a statement published on its website.</p><p>Freight \
                 forwarders said the main bottleneck is now the change of gauge at the border, where containers are \
                 moved between Chinese standard-gauge and Kazakh broad-gauge wagons. New gantry cranes installed in \
                 the spring have cut the average transfer time to about four hours per train.</p><p>Exporters of \
                 agricultural products in Uzbekistan and Kazakhstan hope to use the returning trains, which often \
                 travel east half empty, to ship dried fruit, cotton yarn and flour to markets in western China.</p>"
            )
        }],
        "subjects": [
            { "name": "economy", "uri": "http://cv.iptc.org/newscodes/mediatopic/04000000" },
            { "name": "transport", "uri": "http://cv.iptc.org/newscodes/mediatopic/20000290" }
        ],
        "places": [{ "name": "Khorgos" }, { "name": "Tashkent" }],
        "descriptions": [{ "role": "summary", "value": "Container traffic through Khorgos keeps rising as shippers move cargo to rail." }],
        "slugline": "kz-rail-khorgos",
        "located": "Almaty",
        "by": "Demo Reporter",
        "copyrightHolder": "Demo Agency",
        "copyrightNotice": "(c) 2026 Demo Agency",
        "usageTerms": "For use by exchange members only"
    })
}

/// A webhook receiver for tests and benches: an HTTP server in the test process that records every
/// delivery. Paths: `/ok` answers 200; `/flaky` answers 503 to a delivery's first attempt, then 200;
/// `/fail` always answers 500; `/hang` never answers.
pub mod receiver {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    #[derive(Debug, Clone)]
    pub struct Received {
        pub path: &'static str,
        pub delivery: String,
        pub event: String,
        pub attempt: u32,
        pub subscription: String,
        /// Whether `Karavan-Signature` verified with the receiver's secret.
        pub signature_ok: bool,
        pub body: serde_json::Value,
        /// The body as sent, and its content type (for NewsML-G2 deliveries, which are not JSON).
        pub raw: String,
        pub content_type: String,
        pub at: Instant,
    }

    impl Received {
        pub fn uri(&self) -> &str {
            self.body["meta"]["uri"].as_str().unwrap_or_default()
        }
    }

    #[derive(Default)]
    pub struct Log {
        pub received: Vec<Received>,
        /// Requests to `/hang` now waiting, and the most at once.
        pub hanging: usize,
        pub most_hanging: usize,
    }

    #[derive(Clone)]
    struct Shared {
        secret: String,
        log: Arc<Mutex<Log>>,
    }

    pub struct Receiver {
        pub base: String,
        pub log: Arc<Mutex<Log>>,
    }

    impl Receiver {
        /// Starts on a free loopback port; deliveries are verified with `secret`.
        pub async fn start(secret: &str) -> Receiver {
            let log = Arc::new(Mutex::new(Log::default()));
            let shared = Shared { secret: secret.to_string(), log: Arc::clone(&log) };
            let app = axum::Router::new()
                .route("/ok", post(|s: State<Shared>, h: HeaderMap, b: Bytes| record(s, h, b, "/ok")))
                .route("/flaky", post(|s: State<Shared>, h: HeaderMap, b: Bytes| record(s, h, b, "/flaky")))
                .route("/fail", post(|s: State<Shared>, h: HeaderMap, b: Bytes| record(s, h, b, "/fail")))
                .route("/hang", post(hang))
                .with_state(shared);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            Receiver { base, log }
        }

        pub fn received(&self) -> Vec<Received> {
            self.log.lock().unwrap().received.clone()
        }
    }

    fn header(headers: &HeaderMap, name: &str) -> String {
        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    /// Checks `t=UNIX_SECONDS,v1=HEX` against HMAC-SHA256(secret, "UNIX_SECONDS.BODY").
    pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
        let mut timestamp = None;
        let mut signature = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => timestamp = Some(value),
                Some(("v1", value)) => signature = Some(value),
                _ => {}
            }
        }
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return false };
        let mut message = format!("{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        karavan_server::outbound::hex(&karavan_server::outbound::hmac_sha256(secret.as_bytes(), &message)) == signature
    }

    async fn record(State(shared): State<Shared>, headers: HeaderMap, body: Bytes, path: &'static str) -> StatusCode {
        let attempt: u32 = header(&headers, "karavan-attempt").parse().unwrap_or(0);
        let received = Received {
            path,
            delivery: header(&headers, "karavan-delivery"),
            event: header(&headers, "karavan-event"),
            attempt,
            subscription: header(&headers, "karavan-subscription"),
            signature_ok: verify(&shared.secret, &header(&headers, "karavan-signature"), &body),
            body: serde_json::from_slice(&body).unwrap_or_default(),
            raw: String::from_utf8_lossy(&body).into_owned(),
            content_type: header(&headers, "content-type"),
            at: Instant::now(),
        };
        shared.log.lock().unwrap().received.push(received);
        match path {
            "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
            "/flaky" if attempt == 1 => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        }
    }

    async fn hang(State(shared): State<Shared>) -> StatusCode {
        {
            let mut log = shared.log.lock().unwrap();
            log.hanging += 1;
            log.most_hanging = log.most_hanging.max(log.hanging);
        }
        // Never answers; the sender's timeout ends the request (and the guard counts it out).
        struct Leaving(Arc<Mutex<Log>>);
        impl Drop for Leaving {
            fn drop(&mut self) {
                self.0.lock().unwrap().hanging -= 1;
            }
        }
        let _leaving = Leaving(Arc::clone(&shared.log));
        std::future::pending::<()>().await;
        StatusCode::OK
    }
}

/// The PostgreSQL server tests and benches use (`KARAVAN_TEST_POSTGRES`; these machines run one on
/// 127.0.0.1:5432 with trust authentication).
pub fn postgres_server() -> String {
    std::env::var("KARAVAN_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS server with JetStream tests and benches use (`KARAVAN_TEST_NATS`).
pub fn nats_server() -> String {
    std::env::var("KARAVAN_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// Runs blocking PostgreSQL work on a thread of its own: the synchronous client may not run on a
/// thread that drives a Tokio runtime.
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("the database work ran"))
}

/// A fresh database on the test server (named after `label`), dropped when this is.
pub struct Database {
    pub name: String,
    pub url: String,
}

impl Database {
    pub fn create(label: &str) -> Database {
        off_runtime(|| {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let name = format!("karavan_{label}_{nanos:x}_{}", std::process::id());
            let mut admin = postgres::Client::connect(&postgres_server(), postgres::NoTls).expect("PostgreSQL answers");
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let base = postgres_server();
            let url = match base.rfind('/') {
                Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &base[..slash]),
                _ => format!("{base}/{name}"),
            };
            Database { name, url }
        })
    }

    /// A connection to this database.
    pub fn client(&self) -> Pg {
        Pg(Some(off_runtime(|| postgres::Client::connect(&self.url, postgres::NoTls).unwrap())))
    }

    /// The store's identity, which names the cluster's NATS stream.
    pub fn identity(&self) -> String {
        self.client().query("SELECT id FROM store_identity")[0].get(0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        off_runtime(move || {
            if let Ok(mut admin) = postgres::Client::connect(&postgres_server(), postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        });
    }
}

/// A connection to a test database, used (and closed) off any runtime.
pub struct Pg(Option<postgres::Client>);

impl Pg {
    pub fn query(&mut self, sql: &str) -> Vec<postgres::Row> {
        let client = self.0.as_mut().unwrap();
        off_runtime(|| client.query(sql, &[]).unwrap())
    }

    pub fn count(&mut self, sql: &str) -> i64 {
        self.query(sql)[0].get(0)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// A bench setting from the environment.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Milliseconds at a percentile of sorted microseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// A process's peak resident memory.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The password of newsroom users that [`add_web_user`] adds.
pub const WEB_PASSWORD: &str = "a long enough password";

/// Adds an editor of `member` to the newsroom (before the server starts: the CLI writes the store).
pub fn add_web_user(data_dir: &Path, member: &str, email: &str) {
    let args = ["user", "add", "--member", member, "--email", email, "--name", "Tester", "--role", "editor"];
    let (ok, _, stderr) = run_with_input(data_dir, &args, &format!("{WEB_PASSWORD}\n"));
    assert!(ok, "user add: {stderr}");
}

/// A signed-in newsroom session: its cookie header and the CSRF token its forms carry.
pub struct WebSession {
    pub cookie: String,
    pub csrf: String,
}

/// Signs `email` in through the form (as a browser would) and reads the session's CSRF token from
/// the wire page.
pub async fn sign_in(base: &str, email: &str) -> WebSession {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie_value = |response: &reqwest::Response, name: &str| {
        response.headers().get_all(reqwest::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(
            |line| {
                let (pair, _) = line.split_once(';').unwrap_or((line, ""));
                let (key, value) = pair.split_once('=')?;
                (key == name).then(|| value.to_string())
            },
        )
    };
    let form_page = client.get(format!("{base}/login")).send().await.unwrap();
    let csrf = cookie_value(&form_page, "karavan_csrf").expect("a sign-in CSRF cookie");
    let form = [("email", email), ("password", WEB_PASSWORD), ("csrf", csrf.as_str())];
    let signed = client
        .post(format!("{base}/login"))
        .header("cookie", format!("karavan_csrf={csrf}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER, "sign-in of {email}");
    let cookie = format!("karavan_session={}", cookie_value(&signed, "karavan_session").unwrap());
    let wire = client.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = wire
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with the session's CSRF token")
        .to_string();
    WebSession { cookie, csrf }
}
