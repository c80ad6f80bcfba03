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
}

impl Server {
    /// Starts the server on a free port and waits until it answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
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
        let server = Server { child, base: format!("http://{address}") };
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
