//! IPTC's ninjs test suite (`validation/test_suite/<version>/should_pass|should_fail`) read through
//! the publish path's entry point, [`read`].

mod common;

use common::{VERSION_FOLDERS, names_a_blamed_place, oracle, oracle_blames, suite_cases};
use karavan_ninjs::{NinjsError, NinjsVersion, declared_version, read};
use serde_json::Value;

/// Every `should_pass` document is accepted as its folder's version and every `should_fail` one is
/// refused — by `serde_json` for the files that are not JSON at all, else by us with
/// [`NinjsError::Invalid`] whose first violation names a property that IPTC's own schema (run by the
/// `jsonschema` crate) also blames.
#[test]
fn the_suite_passes_and_fails_what_it_says() {
    let mut problems = Vec::new();
    let mut totals = (0, 0);
    for (folder, version) in VERSION_FOLDERS {
        let oracle = oracle(version, false);
        let passes = suite_cases(folder, "should_pass");
        let fails = suite_cases(folder, "should_fail");
        assert!(
            !passes.is_empty() && !fails.is_empty(),
            "the suite folder {folder} has lost its should_pass or should_fail files"
        );

        let mut accepted = 0;
        for case in &passes {
            match &case.json {
                Err(error) => problems.push(format!("{}: should pass but is not JSON: {error}", case.name)),
                Ok(doc) => match read(doc, Some(version)) {
                    Ok(_) => accepted += 1,
                    Err(error) => problems.push(format!("{}: should pass as {folder} but: {error}", case.name)),
                },
            }
        }

        let (mut refused, mut not_json) = (0, 0);
        for case in &fails {
            let doc = match &case.json {
                Err(_) => {
                    not_json += 1;
                    continue;
                }
                Ok(doc) => doc,
            };
            match read(doc, Some(version)) {
                Ok(_) => problems.push(format!("{}: should fail as {folder} but was accepted", case.name)),
                Err(NinjsError::Invalid { violations, .. }) => {
                    let blamed = oracle_blames(&oracle, doc);
                    let first = &violations[0];
                    if blamed.is_empty() {
                        problems.push(format!(
                            "{}: IPTC's schema accepts it, so the suite and the schema disagree",
                            case.name
                        ));
                    } else if names_a_blamed_place(&first.pointer, &blamed)
                        || message_names_one(&first.message, &blamed)
                    {
                        refused += 1;
                    } else {
                        problems.push(format!(
                            "{}: refused, but the first violation ({} at {}) is not where IPTC's schema blames ({blamed:?})",
                            case.name, first.message, first.pointer
                        ));
                    }
                }
                Err(other) => {
                    problems.push(format!("{}: refused with {other:?} instead of a list of violations", case.name))
                }
            }
        }
        println!(
            "suite {folder}: {accepted}/{} should_pass accepted, {}/{} should_fail refused ({refused} by us naming the property, {not_json} not JSON)",
            passes.len(),
            refused + not_json,
            fails.len()
        );
        totals.0 += passes.len();
        totals.1 += fails.len();
    }
    println!("suite total: {} should_pass, {} should_fail", totals.0, totals.1);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Whether `message` names the last property of one of the blamed pointers.
fn message_names_one(message: &str, blamed: &[String]) -> bool {
    blamed.iter().filter_map(|pointer| pointer.rsplit('/').next()).any(|name| {
        let name = name.replace("~1", "/").replace("~0", "~");
        !name.is_empty() && name.parse::<usize>().is_err() && message.contains(&name)
    })
}

/// Without the client's word, a suite document that declares its folder's version, or declares
/// nothing, is read as a version it is valid ninjs of. Documents that declare another version than
/// their folder's are reported, not read as the folder's version: a declaration is held to.
#[test]
fn undeclared_and_self_declared_suite_documents_read_without_a_version() {
    let mut problems = Vec::new();
    let (mut declared, mut guessed, mut contradicting) = (0, 0, Vec::new());
    for (folder, version) in VERSION_FOLDERS {
        for case in suite_cases(folder, "should_pass") {
            let Ok(Value::Object(doc)) = &case.json else {
                continue;
            };
            match declared_version(doc) {
                Some(said) if said != version => {
                    contradicting.push(format!("{} declares {}", case.name, said.as_str()));
                    continue;
                }
                Some(_) => declared += 1,
                None => guessed += 1,
            }
            match read(&Value::Object(doc.clone()), None) {
                Ok(normalized) => {
                    if declared_version(doc).is_some() && normalized.source_version != version {
                        problems.push(format!("{}: read as {}", case.name, normalized.source_version.as_str()));
                    }
                }
                Err(error) => problems.push(format!("{}: {error}", case.name)),
            }
        }
    }
    println!(
        "read without a version: {declared} declared their folder's version, {guessed} were guessed; set aside: {contradicting:?}"
    );
    assert!(declared > 0 && guessed > 0);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `1.x_dev` and `2.x_dev` folders test IPTC drafts (`ninjs-schema-dev_0.2_v1.4` / `_v1.5`,
/// `ninjs-schema-dev_0.1_v2.0` / `_v2.1`). Their one addition to the published schemas is an
/// `advices` array, which no published version (1.5, 1.6, 2.1, 2.2, 3.0, 3.1) adopted. Karavan reads
/// published versions only, so the drafts are out of scope: `advices` is refused like any unknown
/// property (an agency that needs it can declare an extension schema, whose extra top-level
/// properties are kept). This test pins the decision down: read as the published version each newest
/// draft extends, every `should_fail` file is refused, and every `should_pass` file is accepted exactly
/// when it does not use `advices` — so `advices` is the only difference.
#[test]
fn dev_folders_differ_from_published_versions_only_by_advices() {
    let mut problems = Vec::new();
    for (folder, version) in [("1.x_dev", NinjsVersion::V1_5), ("2.x_dev", NinjsVersion::V2_1)] {
        let (mut with_advices, mut without) = (0, 0);
        for case in suite_cases(folder, "should_pass") {
            let doc = case.json.as_ref().unwrap_or_else(|e| panic!("{} is not JSON: {e}", case.name));
            let result = read(doc, Some(version));
            if doc.get("advices").is_some() {
                with_advices += 1;
                match result {
                    Err(NinjsError::Invalid { violations, .. }) if violations[0].pointer == "/advices" => {}
                    other => problems.push(format!("{}: expected advices to be refused, got {other:?}", case.name)),
                }
            } else {
                without += 1;
                if let Err(error) = result {
                    problems.push(format!("{}: {error}", case.name));
                }
            }
        }
        let mut refused = 0;
        let fails = suite_cases(folder, "should_fail");
        for case in &fails {
            match &case.json {
                Err(_) => refused += 1,
                Ok(doc) => match read(doc, Some(version)) {
                    Err(NinjsError::Invalid { .. }) => refused += 1,
                    other => problems.push(format!("{}: should fail but got {other:?}", case.name)),
                },
            }
        }
        println!(
            "dev folder {folder} read as {}: {without} should_pass without advices accepted, {with_advices} with advices refused, {refused}/{} should_fail refused",
            version.as_str(),
            fails.len()
        );
        assert!(with_advices > 0 && without > 0 && !fails.is_empty(), "the {folder} folder changed shape");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
