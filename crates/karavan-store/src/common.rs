//! What both backends share: identifiers, the content hash of a publish, and the building of stored
//! records from the columns a backend read (each backend reads its rows its own way).

use karavan_domain::{
    Agreement, AgreementId, CountryCode, DeliveryId, EventKind, Grantee, ItemId, LanguageTag, Member, MemberId,
    MemberName, PubStatus, Right, Role, SavedSearchId, SubscriptionId, Timestamp, Ulid, UserId,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    JobProgress, JobState, JobsAhead, NewVersion, PartCounts, QueueCounts, Result, SavedSearch, StoreError,
    StoredTranslation, StoredVersion, Subscription, SubscriptionSpec, TranslationPart, TranslationProgress, User,
    Webhook,
};

pub(crate) fn now_micros() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))?;
    Ok(bytes)
}

pub(crate) fn new_ulid() -> Result<Ulid> {
    Ok(Ulid::from_parts((now_micros() / 1000) as u64, random_bytes()?))
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

pub(crate) fn build_member(raw: (String, String, String, String, Option<String>, i64)) -> Result<Member> {
    let (id, name, country, languages, contact, created_at) = raw;
    let languages: Vec<String> = serde_json::from_str(&languages).map_err(|e| corrupt("member languages", e))?;
    Ok(Member {
        id: MemberId::parse(&id).map_err(|e| corrupt("member id", e))?,
        name: MemberName::parse(&name).map_err(|e| corrupt("member name", e))?,
        country: CountryCode::parse(&country).map_err(|e| corrupt("member country", e))?,
        languages: languages
            .iter()
            .map(|l| LanguageTag::parse(l))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| corrupt("member language", e))?,
        contact,
        created_at: Timestamp(created_at),
    })
}

pub(crate) const AGREEMENT_COLUMNS: &str = "id, grantor, grantee, \"right\", subjects, delay_minutes, created_at";

pub(crate) fn build_agreement(raw: (String, String, String, String, String, i64, i64)) -> Result<Agreement> {
    let (id, grantor, grantee, right, subjects, delay, created_at) = raw;
    Ok(Agreement {
        id: AgreementId::parse(&id).map_err(|e| corrupt("agreement id", e))?,
        grantor: MemberId::parse(&grantor).map_err(|e| corrupt("agreement grantor", e))?,
        grantee: Grantee::parse(&grantee).map_err(|e| corrupt("agreement grantee", e))?,
        right: Right::parse(&right).map_err(|e| corrupt("agreement right", e))?,
        subjects: serde_json::from_str(&subjects).map_err(|e| corrupt("agreement subjects", e))?,
        delay_minutes: u32::try_from(delay).map_err(|e| corrupt("agreement delay", e))?,
        created_at: Timestamp(created_at),
    })
}

pub(crate) const VERSION_COLUMNS: &str = "v.seq, v.item_id, i.owner, i.uri, v.version, v.number, v.document, v.extensions, \
     v.original, v.source_format, v.pub_status, v.committed_at, v.available_at";

pub(crate) struct RawVersion {
    pub(crate) seq: i64,
    pub(crate) item_id: String,
    pub(crate) owner: String,
    pub(crate) uri: String,
    pub(crate) version: String,
    pub(crate) number: i64,
    pub(crate) document: String,
    pub(crate) extensions: String,
    pub(crate) original: String,
    pub(crate) source_format: String,
    pub(crate) pub_status: String,
    pub(crate) committed_at: i64,
    pub(crate) available_at: i64,
}

impl RawVersion {
    pub(crate) fn build(self) -> Result<StoredVersion> {
        let object = |text: &str, what: &str| -> Result<Map<String, Value>> {
            match serde_json::from_str(text).map_err(|e| corrupt(what, e))? {
                Value::Object(map) => Ok(map),
                _ => Err(corrupt(what, "not an object")),
            }
        };
        Ok(StoredVersion {
            item_id: ItemId::parse(&self.item_id).map_err(|e| corrupt("item id", e))?,
            seq: self.seq,
            owner: MemberId::parse(&self.owner).map_err(|e| corrupt("item owner", e))?,
            uri: self.uri,
            version: self.version,
            number: self.number,
            document: object(&self.document, "item document")?,
            extensions: object(&self.extensions, "item extensions")?,
            original: self.original,
            source_format: self.source_format,
            pub_status: PubStatus::parse(&self.pub_status).map_err(|e| corrupt("item status", e))?,
            committed_at: Timestamp(self.committed_at),
            available_at: Timestamp(self.available_at),
        })
    }
}

/// A hash of what a client sent, to tell a retry from a conflicting resend.
pub(crate) fn content_hash(version: &NewVersion) -> Vec<u8> {
    /// Feeds serialised JSON straight into the hash: no copy of the maps, no intermediate string.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Sha256::new());
    // Serialising a map of JSON values into a writer that cannot fail does not fail.
    let _ = serde_json::to_writer(&mut writer, &version.document);
    writer.0.update([0]);
    let _ = serde_json::to_writer(&mut writer, &version.extensions);
    writer.0.finalize().to_vec()
}

pub(crate) fn is_newer(new_version: &str, current_version: &str) -> Option<bool> {
    match (new_version.parse::<u64>(), current_version.parse::<u64>()) {
        (Ok(new), Ok(current)) => Some(new > current),
        _ => None,
    }
}

pub(crate) type RawSavedSearch = (String, String, String, i64);

pub(crate) fn build_saved_search(member: &MemberId, raw: RawSavedSearch) -> Result<SavedSearch> {
    let (id, name, query, created_at) = raw;
    Ok(SavedSearch {
        id: SavedSearchId::parse(&id).map_err(|e| corrupt("saved search id", e))?,
        member: member.clone(),
        name,
        query: serde_json::from_str(&query).map_err(|e| corrupt("saved search query", e))?,
        created_at: Timestamp(created_at),
    })
}

pub(crate) const SUBSCRIPTION_COLUMNS: &str =
    "id, member_id, name, query, events, format, webhook_url, webhook_secret, created_at, updated_at";

pub(crate) type RawSubscription =
    (String, String, String, String, String, String, Option<String>, Option<String>, i64, i64);

pub(crate) fn build_subscription(raw: RawSubscription) -> Result<Subscription> {
    let (id, member, name, query, events, format, url, secret, created_at, updated_at) = raw;
    let events: Vec<String> = serde_json::from_str(&events).map_err(|e| corrupt("subscription events", e))?;
    let webhook = match (url, secret) {
        (Some(url), Some(secret)) => Some(Webhook { url, secret }),
        _ => None,
    };
    Ok(Subscription {
        id: SubscriptionId::parse(&id).map_err(|e| corrupt("subscription id", e))?,
        member: MemberId::parse(&member).map_err(|e| corrupt("subscription member", e))?,
        spec: SubscriptionSpec {
            name,
            query: serde_json::from_str(&query).map_err(|e| corrupt("subscription query", e))?,
            events: events
                .iter()
                .map(|e| EventKind::parse(e))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| corrupt("subscription event", e))?,
            format,
            webhook,
        },
        created_at: Timestamp(created_at),
        updated_at: Timestamp(updated_at),
    })
}

pub(crate) fn spec_columns(spec: &SubscriptionSpec) -> Result<(String, String)> {
    let query = serde_json::to_string(&spec.query).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let events: Vec<&str> = spec.events.iter().map(|e| e.as_str()).collect();
    let events = serde_json::to_string(&events).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((query, events))
}

pub(crate) fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        code: "name_taken",
        message: format!("name: your member already has a subscription called {name:?}"),
    }
}

pub(crate) fn event_kind(text: &str) -> Result<EventKind> {
    EventKind::parse(text).map_err(|e| corrupt("event kind", e))
}

pub(crate) fn item_id(text: &str) -> Result<ItemId> {
    ItemId::parse(text).map_err(|e| corrupt("item id", e))
}

pub(crate) fn delivery_id(text: &str) -> Result<DeliveryId> {
    DeliveryId::parse(text).map_err(|e| corrupt("delivery id", e))
}

/// The error of a write made under a lease its holder no longer holds.
pub(crate) fn lost(what: &str) -> StoreError {
    StoreError::Conflict { code: "lease_lost", message: format!("the lease on {what} is held by another instance") }
}

/// The order in which claims take translation jobs of one part (and in which they are counted ahead
/// of one another): jobs a reader waits for, then by urgency (1 first, none last), then oldest first.
pub(crate) const JOB_ORDER: &str = "(wanted_at IS NULL), COALESCE(urgency, 10), created_at, id";

/// A job's place in the claim order ([`JOB_ORDER`]): no one waits for it, urgency, created, id.
pub(crate) type OrderKey = (bool, i64, i64, i64);

/// After every job.
pub(crate) const LAST: OrderKey = (true, i64::MAX, i64::MAX, i64::MAX);

/// A claimed job's row: id, seq, language, attempts, and its place in the claim order.
pub(crate) type Claimed = (i64, i64, String, i64, OrderKey);

/// The columns of a translation row, in the order [`build_translation`] reads them.
pub(crate) const TRANSLATION_COLUMNS: &str = "seq, language, variant, source_language, model, fields, created_at, part";

pub(crate) type RawTranslation = (i64, String, String, String, String, String, i64, String);

/// One stored row (one part) of a translation.
pub(crate) fn build_translation(raw: RawTranslation) -> Result<StoredTranslation> {
    let (seq, language, variant, source_language, model, fields, created_at, part) = raw;
    let fields: Map<String, Value> = serde_json::from_str(&fields).map_err(|e| corrupt("translation fields", e))?;
    let part = TranslationPart::parse(&part).ok_or_else(|| corrupt("translation part", &part))?;
    Ok(StoredTranslation {
        seq,
        language,
        variant,
        source_language,
        model,
        fields,
        created_at: Timestamp(created_at),
        parts: vec![part],
    })
}

/// Merges the rows of translations, read in (seq, language, variant) order, into one translation per
/// key: every part's fields, the newest row's model and time.
pub(crate) fn merge_translations(rows: Vec<StoredTranslation>) -> Vec<StoredTranslation> {
    let mut out: Vec<StoredTranslation> = Vec::with_capacity(rows.len());
    for row in rows {
        match out.last_mut() {
            Some(last) if last.seq == row.seq && last.language == row.language && last.variant == row.variant => {
                if row.created_at >= last.created_at {
                    last.created_at = row.created_at;
                    last.model = row.model;
                    last.source_language = row.source_language;
                }
                last.fields.extend(row.fields);
                last.parts.extend(row.parts);
                last.parts.sort();
                last.parts.dedup();
            }
            _ => out.push(row),
        }
    }
    out
}

/// The rows a translation is stored as: each part it holds with that part's fields as JSON. A field
/// of a part it does not hold, or of no part, is refused (it would be lost).
pub(crate) fn translation_rows(translation: &StoredTranslation) -> Result<Vec<(TranslationPart, String)>> {
    if let Some(field) = translation
        .fields
        .keys()
        .find(|field| TranslationPart::of_field(field).is_none_or(|part| !translation.has(part)))
    {
        return Err(StoreError::Invalid(format!(
            "translation field {field:?} is not a field of the parts it holds ({:?})",
            translation.parts
        )));
    }
    let mut parts = translation.parts.clone();
    parts.sort();
    parts.dedup();
    parts
        .into_iter()
        .map(|part| {
            let fields: Map<String, Value> = translation
                .fields
                .iter()
                .filter(|(field, _)| part.fields().contains(&field.as_str()))
                .map(|(field, value)| (field.clone(), value.clone()))
                .collect();
            let text = serde_json::to_string(&fields).map_err(|e| StoreError::Invalid(e.to_string()))?;
            Ok((part, text))
        })
        .collect()
}

/// Job counts by state, from (state, count) rows; a state the schema does not allow is corrupt data.
pub(crate) fn queue_counts(rows: impl Iterator<Item = (String, u64)>) -> Result<QueueCounts> {
    let mut counts = QueueCounts::default();
    for (state, count) in rows {
        match state.as_str() {
            "queued" => counts.queued += count,
            "running" => counts.running += count,
            "done" => counts.done += count,
            "failed" => counts.failed += count,
            other => return Err(corrupt("translation job state", other)),
        }
    }
    Ok(counts)
}

/// Job counts by part and state, from (part, state, count) rows.
pub(crate) fn part_counts(rows: impl Iterator<Item = (String, String, u64)>) -> Result<PartCounts> {
    let mut heads = Vec::new();
    let mut bodies = Vec::new();
    for (part, state, count) in rows {
        match TranslationPart::parse(&part) {
            Some(TranslationPart::Head) => heads.push((state, count)),
            Some(TranslationPart::Body) => bodies.push((state, count)),
            None => return Err(corrupt("translation part", part)),
        }
    }
    Ok(PartCounts { head: queue_counts(heads.into_iter())?, body: queue_counts(bodies.into_iter())? })
}

/// A job's progress from its row: (state, wanted, claimed at) and, for a queued one, the count of
/// jobs ahead.
pub(crate) fn job_progress(
    state: &str,
    wanted: bool,
    started_at: Option<i64>,
    ahead: Option<JobsAhead>,
) -> Result<JobProgress> {
    let state = JobState::parse(state).ok_or_else(|| corrupt("translation job state", state))?;
    Ok(JobProgress {
        state,
        wanted,
        started_at: if state == JobState::Running { started_at.map(Timestamp) } else { None },
        ahead: if state == JobState::Queued { ahead } else { None },
    })
}

/// Records one part's progress from its job row: (state, wanted, claimed at, due at, its place in
/// the claim order); a queued job that is due counts the jobs ahead of it with `count_ahead(part,
/// key)` (every head is ahead of a body).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_progress(
    progress: &mut TranslationProgress,
    part: TranslationPart,
    state: &str,
    wanted: bool,
    started_at: Option<i64>,
    due_at: i64,
    key: OrderKey,
    now: i64,
    mut count_ahead: impl FnMut(TranslationPart, OrderKey) -> Result<u64>,
) -> Result<()> {
    let ahead = if state == "queued" && due_at <= now {
        Some(match part {
            TranslationPart::Head => JobsAhead { heads: count_ahead(TranslationPart::Head, key)?, bodies: 0 },
            TranslationPart::Body => JobsAhead {
                heads: count_ahead(TranslationPart::Head, LAST)?,
                bodies: count_ahead(TranslationPart::Body, key)?,
            },
        })
    } else {
        None
    };
    let job = job_progress(state, wanted, started_at, ahead)?;
    match part {
        TranslationPart::Head => progress.head = Some(job),
        TranslationPart::Body => progress.body = Some(job),
    }
    Ok(())
}

pub(crate) const USER_COLUMNS: &str = "u.id, u.member_id, u.email, u.display_name, u.role, u.password_hash, u.locale, u.created_at, u.disabled_at, u.operator, u.time_zone";

pub(crate) type RawUser =
    (String, String, String, String, String, String, Option<String>, i64, Option<i64>, bool, Option<String>);

pub(crate) fn build_user(raw: RawUser) -> Result<User> {
    let (id, member, email, display_name, role, password_hash, locale, created_at, disabled_at, operator, time_zone) =
        raw;
    Ok(User {
        id: UserId::parse(&id).map_err(|e| corrupt("user id", e))?,
        member: MemberId::parse(&member).map_err(|e| corrupt("user member", e))?,
        email,
        display_name,
        role: Role::parse(&role).map_err(|e| corrupt("user role", e))?,
        password_hash,
        locale,
        created_at: Timestamp(created_at),
        disabled_at: disabled_at.map(Timestamp),
        operator,
        time_zone,
    })
}
