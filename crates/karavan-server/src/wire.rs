//! JSON wire types of the HTTP API and their explicit conversions from domain and store types.

use karavan_domain::{Agreement, ItemId, Member, MemberId};
use karavan_store::{ItemRead, KeyInfo, Store, StoreError, StoredVersion};
use serde_json::{Value, json};

/// The role under which an item's Karavan id appears in its ninjs `altIds`.
pub const ALT_ID_ROLE: &str = "karavan";

/// An item version as ninjs 3.1, with its Karavan id added to `altIds` (the only place ninjs 3.1
/// leaves for it: the document stays valid against the schema). The id is always the store's: an
/// entry with the same role in the document (the publish path drops them; older stored documents may
/// still carry one) is replaced, never served.
pub fn ninjs(version: &StoredVersion) -> Value {
    let mut document = version.document.clone();
    let entry = json!({ "role": ALT_ID_ROLE, "value": version.item_id.as_str() });
    match document.get_mut("altIds").and_then(Value::as_array_mut) {
        Some(alt_ids) => {
            alt_ids.retain(|a| {
                a.get("role").and_then(Value::as_str).is_none_or(|role| !role.eq_ignore_ascii_case(ALT_ID_ROLE))
            });
            alt_ids.push(entry);
        }
        None => {
            document.insert("altIds".to_string(), Value::Array(vec![entry]));
        }
    }
    Value::Object(document)
}

/// What the exchange knows of an item version beside its content.
/// An item version as NewsML-G2 (a `newsItem`, or a `packageItem` for a composite) and its media type.
/// `provider` is the owning member's name.
pub fn newsml(version: &StoredVersion, provider: &str) -> Export {
    let Value::Object(document) = ninjs(version) else { unreachable!("ninjs() returns an object") };
    let provider = karavan_formats::Provider { id: version.owner.as_str(), name: provider };
    (karavan_formats::export_g2(&document, provider), karavan_formats::g2_media_type(&document))
}

/// The name NewsML-G2 gives as an item's provider: its owner's name (the member id if it is gone).
pub fn provider_name(store: &dyn Store, owner: &MemberId) -> Result<String, StoreError> {
    Ok(store.member(owner)?.map_or_else(|| owner.to_string(), |m| m.name.as_str().to_string()))
}

/// A NewsML-G2 document and its media type.
pub type Export = (String, &'static str);

/// How an item is to be read: as NewsML-G2 (else ninjs), translated into a language, converted into a script.
#[derive(Debug, Clone, Default)]
pub struct ReadAs {
    pub newsml: bool,
    pub script: Option<karavan_script::Script>,
    /// A language tag: the item translated into it (machine translation), unless already in it.
    pub lang: Option<String>,
}

/// What reading an item needs beside the store: the language models, translation, the search index
/// (a translation made on demand is indexed), the bus (a reader waiting for a translation wakes the
/// workers).
#[derive(Clone)]
pub struct ReadContext {
    pub models: std::sync::Arc<crate::language::LanguageModels>,
    pub translations: std::sync::Arc<crate::translation::Translations>,
    pub search: std::sync::Arc<karavan_search::SearchIndex>,
    pub bus: std::sync::Arc<dyn crate::bus::EventBus>,
    /// Where the original is read (`/v1/items/{id}` under the public URL, if any).
    pub public_url: Option<String>,
}

/// An item as read: the read, its NewsML-G2 export when asked for, and the translation shown with
/// where it stands (if any).
pub type ItemView = (ItemRead, Option<Export>, Option<crate::translation::Translated>);

/// One item as `viewer` may read it and, when `as_.newsml` and visible, its NewsML-G2 export (for the
/// API and the web download; called on the blocking pool). With a language, the visible version is
/// translated first (see `translation.rs`); with a script, its text is then converted (so both ninjs
/// and NewsML-G2 carry it); a language that cannot be converted is a 400.
pub fn read_item(
    store: &dyn Store,
    context: &ReadContext,
    viewer: &MemberId,
    id: &ItemId,
    as_: ReadAs,
) -> Result<Result<ItemView, crate::error::ApiError>, StoreError> {
    let models = context.models.as_ref();
    let mut read = store.item(viewer, id, crate::now())?;
    let mut shown = None;
    if let (ItemRead::Visible(version, _), Some(lang)) = (&mut read, as_.lang.as_deref()) {
        let translated = crate::translation::translated(store, context, viewer, version, lang);
        match translated {
            Ok(Some(translated)) => {
                let href = context.public_url.as_ref().map(|url| format!("{url}/v1/items/{}", version.item_id));
                version.document =
                    crate::translation::translated_document(version, &translated.translation, href.as_deref());
                shown = Some(translated);
            }
            Ok(None) => {}
            Err(error) => return Ok(Err(error)),
        }
    }
    if let (ItemRead::Visible(version, _), Some(script)) = (&mut read, as_.script) {
        // Identified only when the item does not say its language.
        let detected = match version.document.get("language") {
            Some(_) => None,
            None => models.detect(&crate::language::item_text(&version.document)).map(|d| d.language),
        };
        if let Err(error) = crate::language::convert_script(&mut version.document, script, detected.as_deref()) {
            return Ok(Err(error));
        }
    }
    let export = match (&read, as_.newsml) {
        (ItemRead::Visible(version, _), true) => Some(self::newsml(version, &provider_name(store, &version.owner)?)),
        _ => None,
    };
    Ok(Ok((read, export, shown)))
}

pub fn meta(version: &StoredVersion) -> Value {
    json!({
        "id": version.item_id.as_str(),
        "member": version.owner.as_str(),
        "uri": version.uri,
        "version": version.version,
        "versionNumber": version.number,
        "pubStatus": version.pub_status.as_str(),
        "receivedAt": version.committed_at.to_rfc3339(),
        "availableAt": version.available_at.to_rfc3339(),
        "sourceFormat": version.source_format,
        "extensions": version.extensions,
    })
}

/// Member names by id, for showing who published what.
pub fn member_names(members: &[Member]) -> std::collections::HashMap<String, String> {
    members.iter().map(|m| (m.id.to_string(), m.name.as_str().to_string())).collect()
}

pub fn member(member: &Member) -> Value {
    json!({
        "id": member.id.as_str(),
        "name": member.name.as_str(),
        "country": member.country.as_str(),
        "languages": member.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        "contact": member.contact,
        "createdAt": member.created_at.to_rfc3339(),
    })
}

pub fn key(key: &KeyInfo) -> Value {
    json!({
        "id": key.id.as_str(),
        "member": key.member.as_str(),
        "role": key.role.as_str(),
        "label": key.label,
        "createdAt": key.created_at.to_rfc3339(),
        "revokedAt": key.revoked_at.map(|t| t.to_rfc3339()),
    })
}

pub fn agreement(agreement: &Agreement) -> Value {
    json!({
        "id": agreement.id.as_str(),
        "grantor": agreement.grantor.as_str(),
        "grantee": agreement.grantee.to_string(),
        "right": agreement.right.as_str(),
        "subjects": agreement.subjects,
        "delayMinutes": agreement.delay_minutes,
        "createdAt": agreement.created_at.to_rfc3339(),
    })
}
