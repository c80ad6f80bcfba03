//! Demo content for `karavan serve --demo`: members, agreements and a few dozen items in the member
//! languages, written for the demo (`demo/demo.json`), loaded through the same use cases as the API.
//! Loading happens only into a data directory without members, so it never mixes with real data.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use karavan_domain::{CountryCode, Grantee, LanguageTag, MemberId, MemberName, Right, Role};
use karavan_server::app::access;
use karavan_store::{NewAgreement, NewMember};

use crate::Local;
use serde_json::Value;

const DEMO: &str = include_str!("../demo/demo.json");

/// The file in the data directory that lists the demo's API keys.
pub const KEYS_FILE: &str = "demo-keys.txt";

fn text<'a>(value: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    value.get(key).and_then(Value::as_str).with_context(|| format!("demo.json: {key} missing in {value}"))
}

pub fn load(local: &Local, data_dir: &Path) -> anyhow::Result<()> {
    if !local.core.store().members()?.is_empty() {
        tracing::info!(keys = %data_dir.join(KEYS_FILE).display(), "the data directory has members; demo content not loaded again");
        return Ok(());
    }
    let demo: Value = serde_json::from_str(DEMO).context("demo.json is not JSON")?;
    let mut members: HashMap<String, MemberId> = HashMap::new();
    let mut demo_users: Vec<(String, MemberId)> = Vec::new();
    let mut keys_file = std::fs::File::create(data_dir.join(KEYS_FILE))?;
    writeln!(keys_file, "# Demo API keys: member key, member id, role, API key, member name")?;
    for member in demo["members"].as_array().context("demo.json: members")? {
        let languages = member["languages"]
            .as_array()
            .context("demo.json: languages")?
            .iter()
            .filter_map(Value::as_str)
            .map(LanguageTag::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let new = NewMember {
            name: MemberName::parse(text(member, "name")?)?,
            country: CountryCode::parse(text(member, "country")?)?,
            languages,
            contact: member.get("contact").and_then(Value::as_str).map(str::to_string),
        };
        let stored = local.run(access::add_member(&local.core, new))?;
        let short = text(member, "key")?;
        for role in [Role::Admin, Role::Editor, Role::Reader] {
            let (_, key) =
                local.run(access::create_key(&local.core, &stored.id, role, Some(format!("demo {role}"))))?;
            writeln!(keys_file, "{short}\t{}\t{role}\t{}\t{}", stored.id, key.reveal(), stored.name.as_str())?;
        }
        members.insert(short.to_string(), stored.id.clone());
        demo_users.push((short.to_string(), stored.id));
    }
    // People to sign in to the web newsroom with: an admin and an editor per member.
    writeln!(keys_file, "# Demo users of the web newsroom: member key, role, email, password")?;
    for (short, member_id) in &demo_users {
        for role in [Role::Admin, Role::Editor] {
            let mut random = [0u8; 9];
            getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("random password: {e}"))?;
            let password = karavan_server::outbound::hex(&random);
            let email = format!("{role}@{short}.demo");
            let display_name = format!("Demo {role} ({short})");
            let user = access::UserInput {
                member: member_id.clone(),
                email: email.clone(),
                display_name,
                role,
                password: password.clone(),
                // The first agency's admin also operates the exchange (adds member agencies).
                operator: role == Role::Admin && demo_users.first().is_some_and(|(first, _)| first == short),
            };
            local.run(access::add_user(&local.core, user))?;
            writeln!(keys_file, "#user\t{short}\t{role}\t{email}\t{password}")?;
        }
    }
    let member = |key: &str| members.get(key).cloned().with_context(|| format!("demo.json: no member {key:?}"));
    for agreement in demo["agreements"].as_array().context("demo.json: agreements")? {
        let grantee = match text(agreement, "grantee")? {
            "*" => Grantee::Everyone,
            key => Grantee::Member(member(key)?),
        };
        let agreement = NewAgreement {
            grantor: member(text(agreement, "grantor")?)?,
            grantee,
            right: Right::parse(text(agreement, "right")?)?,
            subjects: agreement["subjects"]
                .as_array()
                .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            delay_minutes: agreement["delayMinutes"].as_u64().unwrap_or(0) as u32,
        };
        local.run(karavan_server::app::agreements::grant(&local.core, agreement))?;
    }
    let mut published = 0;
    for entry in demo["items"].as_array().context("demo.json: items")? {
        let owner = member(text(entry, "member")?)?;
        let mut document = entry["ninjs"].clone();
        if let Some(minutes) = entry["embargoMinutes"].as_i64() {
            document["embargoedUntil"] = Value::String(karavan_server::now().plus_minutes(minutes).to_rfc3339());
        }
        let original = document.to_string();
        let version = karavan_server::publish::new_version(&owner, &document, original, None)
            .map_err(|error| anyhow::anyhow!("demo item {}: {}", document["uri"], error.message))?;
        local.run(karavan_server::app::publishing::publish(&local.core, version))?;
        published += 1;
    }
    if published == 0 {
        bail!("demo.json has no items");
    }
    tracing::info!(
        members = members.len(),
        items = published,
        keys = %data_dir.join(KEYS_FILE).display(),
        "loaded the demo content"
    );
    Ok(())
}
