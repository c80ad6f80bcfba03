//! The web newsroom in a real browser: `tests/browser/newsroom.mjs` drives Debian's chromium with
//! playwright-core against the real binary (sign in, the live wire, keyboard, XSS, Kazakh UI, an item
//! page taking in its translated body).
//! `scripts/test-setup` (run by `scripts/test`) installs both; without them this test fails and
//! says how to install them, it is never skipped. Screenshots go to `.cache/screenshots`.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use support::{Server, binary, cli, models_with_translation_fixture};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_newsroom_works_in_chromium() {
    let modules = repository().join(".cache/browser/node_modules");
    assert!(
        modules.join("playwright-core").is_dir() && std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium and playwright-core are needed: run scripts/test-setup (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let member = cli(dir.path(), &["member", "add", "--name", "Kazinform", "--country", "KZ", "--languages", "kk,ru"]);
    let key = cli(dir.path(), &["key", "create", "--member", &member, "--role", "editor"]);
    let password = "browser test password";
    let kabar = cli(dir.path(), &["member", "add", "--name", "Kabar", "--country", "KG", "--languages", "ky,ru"]);
    let kabar_key = cli(dir.path(), &["key", "create", "--member", &kabar, "--role", "editor"]);
    for (email, role, member) in [
        ("editor@kazinform.kz", "editor", &member),
        ("admin@kazinform.kz", "admin", &member),
        ("editor@kabar.kg", "editor", &kabar),
    ] {
        // The admin also operates the exchange (adds member agencies).
        let operator: &[&str] = if role == "admin" { &["--operator"] } else { &[] };
        let mut add = Command::new(binary())
            .args(["user", "add", "--member", member, "--email", email, "--name", "Aigerim", "--role", role])
            .args(operator)
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        add.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        assert!(add.wait().unwrap().success());
    }
    let models = models_with_translation_fixture(dir.path(), "models-for-the-browser");
    let server = Server::start(dir.path(), &["--models-dir", models.to_str().unwrap()]);
    let screenshots = repository().join(".cache/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let output = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/newsroom.mjs"))
        .env("NODE_PATH", &modules)
        .env("KARAVAN_BASE", &server.base)
        .env("KARAVAN_EMAIL", "editor@kazinform.kz")
        .env("KARAVAN_ADMIN_EMAIL", "admin@kazinform.kz")
        .env("KARAVAN_PASSWORD", password)
        .env("KARAVAN_KEY", &key)
        .env("KARAVAN_KABAR_KEY", &kabar_key)
        .env("KARAVAN_SCREENSHOTS", &screenshots)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("browser: ok"),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
