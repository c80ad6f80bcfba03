//! Demo content for `karavan serve --demo`: members, agreements and a few dozen items in the member
//! languages, written for the demo (`demo/demo.json`), loaded through the same publish path as the API.
//! Loading happens only into a data directory without members, so it never mixes with real data.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use karavan_domain::{CountryCode, Grantee, LanguageTag, MemberId, MemberName, Right, Role};
use karavan_store::{NewAgreement, NewMember, NewUser, Store};
use serde_json::Value;

const DEMO: &str = include_str!("../demo/demo.json");

/// The file in the data directory that lists the demo's API keys.
pub const KEYS_FILE: &str = "demo-keys.txt";

fn text<'a>(value: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    value.get(key).and_then(Value::as_str).with_context(|| format!("demo.json: {key} missing in {value}"))
}

pub fn load(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    if !store.members()?.is_empty() {
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
        let stored = store.add_member(NewMember {
            name: MemberName::parse(text(member, "name")?)?,
            country: CountryCode::parse(text(member, "country")?)?,
            languages,
            contact: member.get("contact").and_then(Value::as_str).map(str::to_string),
        })?;
        let short = text(member, "key")?;
        for role in [Role::Admin, Role::Editor, Role::Reader] {
            let (_, key) = store.create_key(&stored.id, role, Some(format!("demo {role}")))?;
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
            let password_hash = karavan_server::password::hash(&password).map_err(anyhow::Error::msg)?;
            let display_name = format!("Demo {role} ({short})");
            store.add_user(NewUser {
                member: member_id.clone(),
                email: email.clone(),
                display_name,
                role,
                password_hash,
                // The first agency's admin also operates the exchange (adds member agencies).
                operator: role == Role::Admin && demo_users.first().is_some_and(|(first, _)| first == short),
            })?;
            writeln!(keys_file, "#user\t{short}\t{role}\t{email}\t{password}")?;
        }
    }
    let member = |key: &str| members.get(key).cloned().with_context(|| format!("demo.json: no member {key:?}"));
    for agreement in demo["agreements"].as_array().context("demo.json: agreements")? {
        let grantee = match text(agreement, "grantee")? {
            "*" => Grantee::Everyone,
            key => Grantee::Member(member(key)?),
        };
        store.add_agreement(NewAgreement {
            grantor: member(text(agreement, "grantor")?)?,
            grantee,
            right: Right::parse(text(agreement, "right")?)?,
            subjects: agreement["subjects"]
                .as_array()
                .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            delay_minutes: agreement["delayMinutes"].as_u64().unwrap_or(0) as u32,
        })?;
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
        store.publish(version)?;
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
