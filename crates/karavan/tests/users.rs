//! The `karavan user` commands: passwords from standard input, hashed; clear refusals.

mod support;

use support::cli;

/// `support::run_with_input` with stdout trimmed.
fn run_with_input(data_dir: &std::path::Path, args: &[&str], input: &str) -> (bool, String, String) {
    let (ok, stdout, stderr) = support::run_with_input(data_dir, args, input);
    (ok, stdout.trim().to_string(), stderr)
}

#[test]
fn users_are_added_listed_refused_and_disabled_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let member = cli(dir.path(), &["member", "add", "--name", "Kabar", "--country", "KG", "--languages", "ky,ru"]);
    let add = ["user", "add", "--member", &member, "--email", "Editor@Kabar.kg", "--name", "Айгүл", "--role", "editor"];
    let (ok, id, _) = run_with_input(dir.path(), &add, "a long enough password\n");
    assert!(ok && id.starts_with("usr_"), "{id}");
    let listed = cli(dir.path(), &["user", "list", "--member", &member]);
    assert_eq!(listed, format!("{id}\teditor\tactive\teditor@kabar.kg\tАйгүл"));
    assert!(!std::fs::read(dir.path().join("karavan.db")).unwrap().windows(22).any(|w| w == b"a long enough password"));

    let (ok, _, error) = run_with_input(dir.path(), &add, "another long password\n");
    assert!(!ok && error.contains("already has a user"), "{error}");
    let mut short = add;
    short[5] = "other@kabar.kg";
    let (ok, _, error) = run_with_input(dir.path(), &short, "short\n");
    assert!(!ok && error.contains("at least 10 characters"), "{error}");
    let mut bad_email = add;
    bad_email[5] = "not-an-address";
    let (ok, _, error) = run_with_input(dir.path(), &bad_email, "a long enough password\n");
    assert!(!ok && error.contains("--email"), "{error}");

    cli(dir.path(), &["user", "disable", "--member", &member, &id]);
    assert!(cli(dir.path(), &["user", "list", "--member", &member]).contains("\tdisabled\t"));
    cli(dir.path(), &["user", "disable", "--member", &member, &id, "--enable"]);
    let (ok, out, _) =
        run_with_input(dir.path(), &["user", "password", "--member", &member, &id], "a brand new password\n");
    assert!(ok, "{out}");
}
