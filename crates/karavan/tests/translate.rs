//! Machine translation through the real binary: `karavan models import` installs an NLLB-200
//! checkpoint (here the random-weight fixture with NLLB's exact architecture, so the words are not
//! a translation) and `karavan translate` translates standard input with it, as the library does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{binary, cli};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/tests/fixtures/m2m100").join(name)
}

/// `karavan translate ARGS` with `input` on standard input: (exit success, stdout, stderr).
fn translate(data_dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let args: Vec<&str> = std::iter::once("translate").chain(args.iter().copied()).collect();
    support::run_with_input(data_dir, &args, input)
}

#[test]
fn models_import_then_translate_from_stdin() {
    let data = tempfile::tempdir().unwrap();
    // Before any import: a clear error naming the way to install one.
    let (ok, _, stderr) = translate(data.path(), &["--from", "kk", "--to", "zh"], "Сәлем");
    assert!(!ok && stderr.contains("karavan models import"), "{stderr}");

    // A directory that is not a checkpoint is refused and nothing is recorded.
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("nllb-2x2").join("config.json"), broken.path().join("config.json")).unwrap();
    let output = Command::new(binary())
        .args(["models", "import", "--data-dir"])
        .arg(data.path())
        .arg(broken.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!cli(data.path(), &["models", "list"]).contains("translation"));

    let imported = cli(data.path(), &["models", "import", fixture("nllb-2x2").to_str().unwrap()]);
    assert!(imported.contains("as the translation model"), "{imported}");
    assert!(cli(data.path(), &["models", "list"]).starts_with("translation\thf-nllb-2x2"));

    let input = "Тоқаев Астанада делегацияны қабылдады. Сауда өсті.\n\nКелесі кездесу Ташкентте өтеді.\n";
    let (ok, stdout, stderr) = translate(data.path(), &["--from", "kk", "--to", "zh", "--beams", "2"], input);
    assert!(ok, "{stderr}");
    let mut translator = karavan_lang::translate::Translator::load(&fixture("nllb-2x2")).unwrap();
    translator.options.num_beams = 2;
    let expected = translator.translate(&[input], "kk", "zh", &[]).unwrap().remove(0);
    assert_eq!(stdout, expected);
    assert_eq!(stdout.matches('\n').count(), 3, "line breaks are kept: {stdout:?}");

    let (ok, stdout, _) =
        translate(data.path(), &["--from", "en", "--to", "ru", "--html"], "<p>Trade <b>grew</b>.</p>");
    assert!(
        ok && stdout.starts_with("<p>") && stdout.contains("<b>") && stdout.trim_end().ends_with("</p>"),
        "{stdout}"
    );

    let (ok, _, stderr) = translate(data.path(), &["--from", "kk", "--to", "tlh"], "x");
    assert!(!ok && stderr.contains("does not translate \"tlh\""), "{stderr}");
}
