//! The store conformance suite: every backend runs the same scenarios through the `Store` trait, one
//! test per scenario. A backend's crate implements [`Backend`] and expands [`store_suite!`] in one of
//! its test files:
//!
//! ```ignore
//! fn my_backend() -> Box<dyn karavan_store_suite::Backend> { … }
//! karavan_store_suite::store_suite!(my_backend);
//! ```
//!
//! The scenarios state the contract of the trait's docs as checks: visibility, ordering (a `seq` never
//! skipped, gap-free cursors), idempotent publishes, and work claimed by lease by several instances on
//! one store (`another()` opens a second instance on the same data).

use std::collections::HashSet;
use std::sync::Arc;

use karavan_domain::{
    CountryCode, EventKind, Grantee, LanguageTag, MemberId, MemberName, PubStatus, Right, Role, Timestamp,
};
use karavan_store::{
    AttemptOutcome, AttemptRecord, Cursor, DeliveryState, DueDelivery, ItemRead, ListQuery, NewAgreement, NewDelivery,
    NewMember, NewUser, NewVersion, Page, PostgresConfig, PostgresStore, PublishOutcome, SqliteConfig, SqliteStore,
    Store, StoreError, SubscriptionSpec, VersionRead, Webhook,
};
use karavan_store::{
    ClaimLimits, FANOUT_LEASE, FeedSpec, GlossaryTerm, JobOutcome, JobState, JobsAhead, PollRecord, QueueCounts,
    StoredTranslation, TranslationPart, TranslationProgress,
};
use serde_json::{Map, Value, json};

/// A backend under test: a fresh, empty store, and more instances on the same data.
pub trait Backend {
    /// The store of this backend (the same instance on every call).
    fn store(&self) -> Arc<dyn Store>;
    /// Another instance on the same data, as a second process would open it.
    fn another(&self) -> Arc<dyn Store>;
}

/// Makes a fresh backend; what it holds (a directory, a database) lives as long as the backend.
pub type Make = fn() -> Box<dyn Backend>;

/// The embedded default: SQLite in a temporary directory.
pub struct Sqlite {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Sqlite {
    pub fn fresh() -> Box<dyn Backend> {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).unwrap());
        Box::new(Sqlite { dir, store })
    }
}

impl Backend for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    fn another(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(SqliteConfig::new(self.dir.path())).unwrap())
    }
}

/// The cluster backend: PostgreSQL, each backend in a schema of its own (created here, dropped with the
/// backend). The server is `KARAVAN_TEST_POSTGRES` (a connection URL), by default the one these machines
/// run on 127.0.0.1:5432 with trust authentication.
pub struct Postgres {
    schema: String,
    url: String,
    store: Arc<dyn Store>,
}

/// The PostgreSQL server tests use.
pub fn postgres_server() -> String {
    std::env::var("KARAVAN_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty schema of its own on the test server; the URL that opens a store in it, and the
/// schema's name (to drop it).
pub fn postgres_schema(prefix: &str) -> (String, String) {
    let admin = postgres_server();
    let mut bytes = [0u8; 8];
    getrandom_bytes(&mut bytes);
    let schema = format!("{prefix}_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("the test PostgreSQL server answers");
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    let separator = if admin.contains('?') { '&' } else { '?' };
    (format!("{admin}{separator}options=-csearch_path%3D{schema}"), schema)
}

/// Drops a schema made by [`postgres_schema`].
pub fn drop_postgres_schema(schema: &str) {
    if let Ok(mut client) = postgres::Client::connect(&postgres_server(), postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

fn getrandom_bytes(bytes: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        let value = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&value[..chunk.len()]);
    }
}

impl Postgres {
    pub fn fresh() -> Box<dyn Backend> {
        let (url, schema) = postgres_schema("karavan_suite");
        let store: Arc<dyn Store> = Arc::new(PostgresStore::open(PostgresConfig::new(&url)).unwrap());
        Box::new(Postgres { schema, url, store })
    }
}

impl Backend for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    fn another(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(PostgresConfig::new(&self.url)).unwrap())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop_postgres_schema(&self.schema);
    }
}

fn now() -> Timestamp {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp(elapsed.as_micros() as i64)
}

fn member(store: &dyn Store, name: &str) -> MemberId {
    store
        .add_member(NewMember {
            name: MemberName::parse(name).unwrap(),
            country: CountryCode::parse("KZ").unwrap(),
            languages: vec![LanguageTag::parse("kk").unwrap()],
            contact: None,
        })
        .unwrap()
        .id
}

fn grant(store: &dyn Store, grantor: &MemberId, grantee: Grantee, subjects: &[&str], delay: u32) {
    grant_with(store, grantor, grantee, subjects, delay, Right::View);
}

fn grant_with(store: &dyn Store, grantor: &MemberId, grantee: Grantee, subjects: &[&str], delay: u32, right: Right) {
    store
        .add_agreement(NewAgreement {
            grantor: grantor.clone(),
            grantee,
            right,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            delay_minutes: delay,
        })
        .unwrap();
}

fn version(owner: &MemberId, uri: &str, version: Option<&str>, headline: &str) -> NewVersion {
    NewVersion { version: version.map(str::to_string), ..NewVersion::headline_only(owner, uri, headline) }
}

/// A translation of one part, without glossary terms, made at `at`.
fn translation(seq: i64, language: &str, part: TranslationPart, fields: Value, at: Timestamp) -> StoredTranslation {
    let Value::Object(fields) = fields else { panic!("fields are an object") };
    StoredTranslation {
        seq,
        language: language.into(),
        variant: String::new(),
        source_language: "kk".into(),
        model: "nllb-test".into(),
        fields,
        created_at: at,
        parts: vec![part],
    }
}

fn headline(document: &Map<String, Value>) -> &str {
    document["headlines"][0]["value"].as_str().unwrap()
}

pub fn stats_count_the_whole_store(make: Make) {
    let backend = make();
    let store = backend.store();
    assert_eq!(store.head_positions().unwrap(), (0, 0), "an empty store");
    let owner = member(store.as_ref(), "Counted");
    let first = store.publish(version(&owner, "urn:stats:1", None, "One")).unwrap().stored().clone();
    let second = store.publish(version(&owner, "urn:stats:2", None, "Two")).unwrap().stored().clone();
    assert!(second.seq > first.seq);
    let (head, behind) = store.head_positions().unwrap();
    assert_eq!(head, second.seq, "the head is the newest version's sequence");
    assert_eq!(behind, 2, "two outbox events the fan-out has not reached");
    let stats = store.stats().unwrap();
    assert_eq!((stats.head_seq, stats.outbox_behind), (head, behind));
    assert!(stats.deliveries.is_empty(), "no subscription, no delivery");
    assert_eq!(stats.translation_jobs, karavan_store::QueueCounts::default());
    assert_eq!(store.queue_depths().unwrap(), karavan_store::QueueDepths::default(), "nothing waits");
}

pub fn set_aside_items_are_held_until_retried(make: Make) {
    let backend = make();
    let store = backend.store();
    let owner = member(store.as_ref(), "Owner");
    let other = member(store.as_ref(), "Other");
    let stored = store.publish(version(&owner, "urn:sa:1", None, "One")).unwrap().stored().clone();
    store.set_aside("search-index", stored.seq, stored.item_id.as_str(), Some(&owner), "it broke").unwrap();
    store.set_aside("search-index", stored.seq, stored.item_id.as_str(), Some(&owner), "it broke again").unwrap();
    let listed = store.set_aside_list(Some(&owner)).unwrap();
    assert_eq!(listed.len(), 1, "one record per work and version");
    assert_eq!((listed[0].error.as_str(), listed[0].retry), ("it broke again", false));
    assert!(store.set_aside_list(Some(&other)).unwrap().is_empty(), "per owner");
    assert_eq!(store.set_aside_list(None).unwrap().len(), 1);
    assert!(store.set_aside_to_retry("search-index").unwrap().is_empty(), "held until an operator says");
    assert_eq!(store.retry_set_aside("search-index", None).unwrap(), 1);
    assert_eq!(store.retry_set_aside("embedding", None).unwrap(), 0);
    let retried = store.set_aside_to_retry("search-index").unwrap();
    assert_eq!(retried.iter().map(|v| v.seq).collect::<Vec<_>>(), [stored.seq]);
    store.clear_set_aside("search-index", stored.seq).unwrap();
    assert!(store.set_aside_list(None).unwrap().is_empty());
}

pub fn login_failures_are_counted_per_key(make: Make) {
    let backend = make();
    let store = backend.store();
    let t0 = Timestamp(1_000_000_000_000);
    let keys = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let long_ago = Timestamp(0);
    store.record_login_failure(keys(&["pair:a|x", "acct:a"]), t0, long_ago).unwrap();
    store.record_login_failure(keys(&["pair:a|x", "acct:a"]), Timestamp(t0.micros() + 5), long_ago).unwrap();
    store.record_login_failure(keys(&["acct:b"]), t0, long_ago).unwrap();
    let mut counted = store.login_failures(&keys(&["pair:a|x", "acct:a", "acct:c"]), long_ago).unwrap();
    counted.sort_by(|a, b| a.key.cmp(&b.key));
    let seen: Vec<(&str, u32, i64)> =
        counted.iter().map(|c| (c.key.as_str(), c.failures, c.last_at.micros())).collect();
    assert_eq!(seen, [("acct:a", 2, t0.micros() + 5), ("pair:a|x", 2, t0.micros() + 5)]);
    // Too old to count; then forgotten (pruned) by the next failure's window.
    assert!(store.login_failures(&keys(&["acct:b"]), Timestamp(t0.micros() + 1)).unwrap().is_empty());
    store.record_login_failure(keys(&["acct:a"]), Timestamp(t0.micros() + 10), Timestamp(t0.micros() + 1)).unwrap();
    assert!(store.login_failures(&keys(&["acct:b"]), long_ago).unwrap().is_empty(), "pruned");
    store.clear_login_failures(keys(&["acct:a"])).unwrap();
    let left = store.login_failures(&keys(&["pair:a|x", "acct:a"]), long_ago).unwrap();
    assert_eq!(left.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["pair:a|x"]);
}

pub fn health_is_ok_while_writes_work(make: Make) {
    let backend = make();
    let store = backend.store();
    member(store.as_ref(), "Healthy");
    assert_eq!(store.health(), karavan_store::StoreHealth::default());
}

pub fn saved_searches_are_per_member(make: Make) {
    let backend = make();
    let store = backend.store();
    let (a, b) = (member(store.as_ref(), "A"), member(store.as_ref(), "B"));
    let query = vec![("q".to_string(), "railway".to_string()), ("lang".to_string(), "kk".to_string())];
    let saved = store.add_saved_search(&a, "rail", query.clone()).unwrap();
    assert_eq!(store.saved_search(&a, &saved.id).unwrap().unwrap().query, query);
    assert!(store.saved_search(&b, &saved.id).unwrap().is_none(), "another member's search is invisible");
    assert!(matches!(store.add_saved_search(&a, "rail", Vec::new()), Err(StoreError::Conflict { .. })));
    assert!(store.add_saved_search(&b, "rail", Vec::new()).is_ok(), "names are per member");
    assert_eq!(store.saved_searches(&a).unwrap().len(), 1);
    assert!(!store.delete_saved_search(&b, &saved.id).unwrap());
    assert!(store.delete_saved_search(&a, &saved.id).unwrap());
    assert!(store.saved_searches(&a).unwrap().is_empty());
}

pub fn keys_authenticate_until_revoked(make: Make) {
    let backend = make();
    let store = backend.store();
    let agency = member(store.as_ref(), "Agency");
    let (info, key) = store.create_key(&agency, Role::Editor, Some("desk".into())).unwrap();
    let principal = store.authenticate(&key.hash()).unwrap().expect("a live key authenticates");
    assert_eq!((principal.member, principal.role), (agency.clone(), Role::Editor));
    assert_eq!(store.keys(&agency).unwrap().len(), 1);
    assert!(store.revoke_key(&agency, &info.id).unwrap());
    assert!(store.authenticate(&key.hash()).unwrap().is_none(), "a revoked key no longer authenticates");
    assert!(!store.revoke_key(&agency, &info.id).unwrap(), "revoking twice reports nothing revoked");
    let stranger = MemberId::parse("mbr_01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
    assert!(matches!(store.create_key(&stranger, Role::Admin, None), Err(StoreError::NotFound(_))));
}

pub fn corrections_idempotency_and_conflicts(make: Make) {
    let backend = make();
    let store = backend.store();
    let agency = member(store.as_ref(), "Agency");
    let first = store.publish(version(&agency, "urn:a:1", Some("1"), "first")).unwrap();
    let PublishOutcome::Created(first) = first else { panic!("a new uri creates an item") };
    assert_eq!(first.document["version"], "1");
    assert!(first.document.contains_key("versionCreated") && first.document.contains_key("firstCreated"));

    let again = store.publish(version(&agency, "urn:a:1", Some("1"), "first")).unwrap();
    assert!(matches!(&again, PublishOutcome::Unchanged(v) if v.seq == first.seq), "a resend is idempotent");

    let clash = store.publish(version(&agency, "urn:a:1", Some("1"), "different")).unwrap_err();
    assert!(matches!(clash, StoreError::Conflict { code: "version_conflict", .. }));

    let second = store.publish(version(&agency, "urn:a:1", Some("2"), "corrected")).unwrap();
    let PublishOutcome::Corrected(second) = second else { panic!("a new version corrects") };
    assert_eq!(second.item_id, first.item_id);
    assert_eq!(second.number, 2);

    let stale = store.publish(version(&agency, "urn:a:1", Some("1"), "late")).unwrap_err();
    assert!(matches!(stale, StoreError::Conflict { code: "version_conflict", .. }), "version 1 exists: {stale}");
    let older = store.publish(version(&agency, "urn:a:1", Some("0"), "older")).unwrap_err();
    assert!(matches!(older, StoreError::Conflict { code: "stale_version", .. }));

    // Without a version, the store numbers versions, and a resend of the current content is a no-op.
    let third = store.publish(version(&agency, "urn:a:1", None, "third")).unwrap();
    assert_eq!(third.stored().version, "3");
    assert!(matches!(store.publish(version(&agency, "urn:a:1", None, "third")).unwrap(), PublishOutcome::Unchanged(_)));

    // Derived data catches up through the current versions after a sequence number.
    let current = store.current_versions_after(0, 100).unwrap().versions;
    assert_eq!(current.len(), 1, "one item, its current version only");
    assert_eq!(headline(&current[0].document), "third");
    assert!(store.current_versions_after(current[0].seq, 100).unwrap().versions.is_empty());
    let history = store.versions(&agency, &first.item_id, now()).unwrap().unwrap();
    let headlines: Vec<&str> = history.iter().map(|v| headline(&v.document)).collect();
    assert_eq!(headlines, ["first", "corrected", "third"], "every version stays readable");
    let ItemRead::Visible(current, _) = store.item(&agency, &first.item_id, now()).unwrap() else { panic!() };
    assert_eq!(headline(&current.document), "third");

    // The same uri from another member is another item.
    let other = member(store.as_ref(), "Other");
    let theirs = store.publish(version(&other, "urn:a:1", Some("1"), "theirs")).unwrap();
    assert!(matches!(&theirs, PublishOutcome::Created(v) if v.item_id != first.item_id));
}

pub fn agreements_embargo_and_kills(make: Make) {
    let backend = make();
    let store = backend.store();
    let (owner, partner, stranger) =
        (member(store.as_ref(), "Owner"), member(store.as_ref(), "Partner"), member(store.as_ref(), "Stranger"));
    grant(store.as_ref(), &owner, Grantee::Member(partner.clone()), &[], 0);

    let open = store.publish(version(&owner, "urn:open", None, "open")).unwrap().stored().item_id.clone();
    let mut embargoed = version(&owner, "urn:embargoed", None, "embargoed");
    let until = now().plus_minutes(60);
    embargoed.embargoed_until = Some(until);
    let embargoed = store.publish(embargoed).unwrap().stored().item_id.clone();

    let t = now();
    assert!(matches!(store.item(&partner, &open, t).unwrap(), ItemRead::Visible(..)));
    assert_eq!(store.item(&stranger, &open, t).unwrap(), ItemRead::NotFound, "no agreement, no item");
    assert_eq!(store.item(&partner, &embargoed, t).unwrap(), ItemRead::NotFound, "embargo hides the item");
    assert!(matches!(store.item(&owner, &embargoed, t).unwrap(), ItemRead::Visible(..)), "except from its owner");
    assert!(store.versions(&partner, &embargoed, t).unwrap().is_none());
    let listed: Vec<_> = store.list(&partner, &ListQuery::newest(50), t).unwrap().entries;
    assert_eq!(listed.len(), 1, "the embargoed item is not listed");
    // When the embargo passes, the item appears by itself.
    let later = until.plus_minutes(1);
    assert!(matches!(store.item(&partner, &embargoed, later).unwrap(), ItemRead::Visible(..)));

    let mut kill = version(&owner, "urn:open", None, "killed");
    kill.pub_status = PubStatus::Canceled;
    store.publish(kill).unwrap();
    let t = now();
    assert!(matches!(store.item(&partner, &open, t).unwrap(), ItemRead::Killed(_)), "a kill leaves a notice");
    assert_eq!(store.item(&stranger, &open, t).unwrap(), ItemRead::NotFound);
    let history = store.versions(&partner, &open, t).unwrap().unwrap();
    assert!(
        history.iter().all(|v| v.pub_status == PubStatus::Canceled),
        "the killed content is withdrawn from the version history too"
    );
    assert_eq!(store.versions(&owner, &open, t).unwrap().unwrap().len(), 2, "its owner keeps the history");
    let listed = store.list(&partner, &ListQuery::newest(50), t).unwrap().entries;
    assert!(listed.is_empty(), "a killed item leaves every list");
    let mut with_kills = ListQuery::newest(50);
    with_kills.include_kills = true;
    let listed = store.list(&partner, &with_kills, t).unwrap().entries;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version.pub_status, PubStatus::Canceled);
}

pub fn cursors_page_and_poll_without_gaps_or_repeats(make: Make) {
    let backend = make();
    let store = backend.store();
    let (owner, reader) = (member(store.as_ref(), "Owner"), member(store.as_ref(), "Reader"));
    grant(store.as_ref(), &owner, Grantee::Everyone, &[], 0);
    for n in 0..25 {
        store.publish(version(&owner, &format!("urn:p:{n}"), None, &format!("item {n}"))).unwrap();
    }
    // Newest first, in pages of 10.
    let mut seen = Vec::new();
    let mut query = ListQuery::newest(10);
    let first_page = store.list(&reader, &query, now()).unwrap();
    let poll_from = first_page.horizon;
    let mut page = first_page;
    loop {
        seen.extend(page.entries.iter().map(|e| headline(&e.version.document).to_string()));
        let Some(next) = page.next else { break };
        query.page = Page::NewestFirst(Some(next));
        page = store.list(&reader, &query, now()).unwrap();
    }
    let expected: Vec<String> = (0..25).rev().map(|n| format!("item {n}")).collect();
    assert_eq!(seen, expected);

    // Polling from the horizon sees exactly what is published afterwards, oldest first.
    let mut cursor: Cursor = poll_from;
    let mut polled = Vec::new();
    for n in 25..32 {
        store.publish(version(&owner, &format!("urn:p:{n}"), None, &format!("item {n}"))).unwrap();
        let mut poll = ListQuery::newest(3);
        poll.page = Page::Since(cursor);
        loop {
            let page = store.list(&reader, &poll, now()).unwrap();
            polled.extend(page.entries.iter().map(|e| headline(&e.version.document).to_string()));
            cursor = page.next.expect("a poll always says where to continue");
            if page.entries.len() < 3 {
                break;
            }
            poll.page = Page::Since(cursor);
        }
    }
    let expected: Vec<String> = (25..32).map(|n| format!("item {n}")).collect();
    assert_eq!(polled, expected);
    // A correction shows up again in the poll, as its new version.
    store.publish(version(&owner, "urn:p:3", None, "item 3 corrected")).unwrap();
    let mut poll = ListQuery::newest(10);
    poll.page = Page::Since(cursor);
    let page = store.list(&reader, &poll, now()).unwrap();
    let again: Vec<&str> = page.entries.iter().map(|e| headline(&e.version.document)).collect();
    assert_eq!(again, ["item 3 corrected"]);
}

/// The wire's filters (`ListQuery`): subjects (any of the keys, on the current version only),
/// languages, urgency and owner, combined, within what the viewer may see.
pub fn lists_filter_by_subject_language_urgency_and_owner(make: Make) {
    let backend = make();
    let store = backend.store();
    let (a, b, reader) = (member(store.as_ref(), "A"), member(store.as_ref(), "B"), member(store.as_ref(), "Reader"));
    grant(store.as_ref(), &a, Grantee::Everyone, &[], 0);
    // B shares only its economy items.
    grant(store.as_ref(), &b, Grantee::Everyone, &["medtop:04000000"], 0);
    let item = |owner: &MemberId, uri: &str, language: &str, urgency: u8, subjects: &[&str]| {
        let mut new = version(owner, uri, None, uri);
        new.language = Some(language.to_string());
        new.urgency = karavan_domain::Urgency::new(i64::from(urgency)).ok();
        new.subjects = subjects.iter().map(|s| s.to_string()).collect();
        store.publish(new).unwrap();
    };
    item(&a, "a-economy-kk", "kk", 2, &["medtop:04000000", "http://cv.iptc.org/newscodes/mediatopic/04000000"]);
    item(&a, "a-sport-ru", "ru", 4, &["medtop:15000000"]);
    item(&a, "a-both-uz", "uz-Latn", 3, &["medtop:15000000", "medtop:04000000"]);
    item(&a, "a-none-zh", "zh", 5, &[]);
    item(&b, "b-economy-kk", "kk", 1, &["medtop:04000000"]);
    item(&b, "b-sport-kk", "kk", 1, &["medtop:15000000"]);
    let listed = |query: &ListQuery| -> Vec<String> {
        let mut found: Vec<String> = store
            .list(&reader, query, now())
            .unwrap()
            .entries
            .iter()
            .map(|e| headline(&e.version.document).to_string())
            .collect();
        found.sort();
        found
    };
    let mut query = ListQuery::newest(50);
    query.subjects = vec!["medtop:04000000".into()];
    assert_eq!(listed(&query), ["a-both-uz", "a-economy-kk", "b-economy-kk"]);
    // Any of several keys; a URI names the same subject as its QCode where the item carried both.
    query.subjects = vec!["medtop:15000000".into(), "http://cv.iptc.org/newscodes/mediatopic/04000000".into()];
    assert_eq!(listed(&query), ["a-both-uz", "a-economy-kk", "a-sport-ru"], "B's sport item stays hidden");
    query.subjects = vec!["medtop:04000000".into()];
    query.languages = vec!["kk".into()];
    assert_eq!(listed(&query), ["a-economy-kk", "b-economy-kk"]);
    query.urgency = Some((1, 1));
    assert_eq!(listed(&query), ["b-economy-kk"]);
    query.owner = Some(a.clone());
    assert!(listed(&query).is_empty());
    query.urgency = None;
    query.languages = vec!["uz".into()];
    assert_eq!(listed(&query), ["a-both-uz"]);
    query.subjects = vec!["medtop:01000000".into()];
    assert!(listed(&query).is_empty());
    // A correction that drops the subject takes the item out of the subject's list.
    let mut corrected = version(&a, "a-economy-kk", None, "a-economy-kk, corrected");
    corrected.language = Some("kk".into());
    store.publish(corrected).unwrap();
    let mut query = ListQuery::newest(50);
    query.subjects = vec!["medtop:04000000".into()];
    assert_eq!(listed(&query), ["a-both-uz", "b-economy-kk"]);
    query.subjects = Vec::new();
    query.languages = vec!["kk".into()];
    assert!(listed(&query).contains(&"a-economy-kk, corrected".to_string()));
    // Kill notices only: the killed item's notice, and nothing else.
    let killed = store.list(&reader, &ListQuery::newest(50), now()).unwrap().entries;
    let sport = killed.iter().find(|e| headline(&e.version.document) == "a-sport-ru").unwrap();
    let mut kill = version(&a, "a-sport-ru", None, "a-sport-ru, killed");
    kill.pub_status = PubStatus::Canceled;
    store.publish(kill).unwrap();
    let mut kills = ListQuery::newest(50);
    kills.include_kills = true;
    kills.only_kills = true;
    let notices = store.list(&reader, &kills, now()).unwrap().entries;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].version.item_id, sport.version.item_id);
    assert_eq!(notices[0].version.pub_status, PubStatus::Canceled);
}

pub fn concurrent_publishers_lose_nothing(make: Make) {
    let backend = make();
    let store = backend.store();
    let owner = member(store.as_ref(), "Owner");
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = Arc::clone(&store);
            let owner = owner.clone();
            std::thread::spawn(move || {
                for n in 0..40 {
                    let uri = format!("urn:c:{t}:{n}");
                    store.publish(version(&owner, &uri, None, &uri)).unwrap();
                    // A retry of the same publish must not duplicate it.
                    if n % 10 == 0 {
                        assert!(matches!(
                            store.publish(version(&owner, &uri, None, &uri)).unwrap(),
                            PublishOutcome::Unchanged(_)
                        ));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut query = ListQuery::newest(1000);
    query.limit = 1000;
    let entries = store.list(&owner, &query, now()).unwrap().entries;
    let uris: HashSet<&str> = entries.iter().map(|e| e.version.uri.as_str()).collect();
    assert_eq!(entries.len(), 16 * 40);
    assert_eq!(uris.len(), 16 * 40, "nothing duplicated");
}

/// A second reader of the outbox (cluster mode's stream relay) keeps events in the outbox until it has
/// passed them, moves only under its lease, and the store's identity is the same for every instance.
pub fn outbox_readers_keep_events_until_they_pass_them(make: Make) {
    let backend = make();
    let store = backend.store();
    let identity = store.identity().unwrap();
    assert!(!identity.is_empty());
    assert_eq!(backend.another().identity().unwrap(), identity, "every instance names the store alike");
    let owner = member(store.as_ref(), "Relayed");
    let seqs: Vec<i64> = (0..3)
        .map(|n| store.publish(version(&owner, &format!("urn:relay:{n}"), None, "x")).unwrap().stored().seq)
        .collect();
    let t = now();
    assert!(store.acquire_lease("stream", "relay-1", t, Timestamp(t.micros() + 60_000_000)).unwrap());
    assert_eq!(store.open_outbox_reader("stream").unwrap(), 0, "a new reader starts where the fan-out stands");
    let entries = store.outbox_entries_after(0, 10).unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert!(entries.iter().all(|e| e.kind == EventKind::Publish));
    let (first, last) = (entries[0].id, entries[2].id);

    // The fan-out passes every event: they stay for the other reader.
    assert!(store.acquire_lease(FANOUT_LEASE, "fanout-1", t, Timestamp(t.micros() + 60_000_000)).unwrap());
    store.record_fanout("fanout-1", last, Vec::new()).unwrap();
    assert_eq!(store.outbox_position().unwrap(), last);
    assert_eq!(store.outbox_entries_after(0, 10).unwrap().len(), 3, "kept for the stream relay");

    // Only the holder of the reader's lease moves it.
    let refused = store.record_outbox_reader("stream", "relay-2", first).unwrap_err();
    assert!(matches!(refused, StoreError::Conflict { code: "lease_lost", .. }), "{refused:?}");
    store.record_outbox_reader("stream", "relay-1", first).unwrap();
    store.record_fanout("fanout-1", last, Vec::new()).unwrap();
    assert_eq!(store.outbox_entries_after(0, 10).unwrap().len(), 2, "what both readers passed is gone");
    store.record_outbox_reader("stream", "relay-1", 0).unwrap();
    assert_eq!(store.open_outbox_reader("stream").unwrap(), first, "a position never moves back");
    store.record_outbox_reader("stream", "relay-1", last).unwrap();
    store.record_fanout("fanout-1", last, Vec::new()).unwrap();
    assert!(store.outbox_entries_after(0, 10).unwrap().is_empty());
    // A publish after that is kept until the fan-out passes it too.
    let next = store.publish(version(&owner, "urn:relay:3", None, "x")).unwrap().stored().seq;
    let pending = store.outbox_entries_after(last, 10).unwrap();
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![next]);
    store.record_outbox_reader("stream", "relay-1", pending[0].id).unwrap();
    assert_eq!(store.outbox_entries_after(0, 10).unwrap().len(), 1, "the fan-out has not passed it");

    // A reader gone for good (its lease lapsed over an hour ago) holds nothing back any more.
    assert!(store.release_lease("stream", "relay-1").unwrap());
    let long_ago = Timestamp(t.micros() - karavan_store::OUTBOX_READER_GRACE_MICROS - 1_000_000);
    assert!(store.acquire_lease("stream", "relay-gone", long_ago, Timestamp(long_ago.micros() + 1)).unwrap());
    let later = store.publish(version(&owner, "urn:relay:4", None, "x")).unwrap().stored().seq;
    let head = store.outbox_head().unwrap();
    assert!(store.outbox_entries_after(0, 10).unwrap().iter().any(|e| e.seq == later));
    store.record_fanout("fanout-1", head, Vec::new()).unwrap();
    assert!(store.outbox_entries_after(0, 10).unwrap().is_empty(), "the fan-out alone decides");
}

/// Cluster mode: several instances (nodes) publish at once while a poller follows the wire with
/// `since=` cursors and a tailer follows the store by sequence number (as the indexes do), both on
/// another instance. Neither skips nor repeats anything: sequence numbers and commit times follow
/// commit order across instances. Only for backends meant to be written by several nodes at once
/// (the embedded SQLite store has one writer process), so it is not in [`store_suite!`]'s list.
pub fn pollers_miss_nothing_while_instances_publish_at_once(make: Make) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let backend = make();
    let instances: Vec<Arc<dyn Store>> = vec![backend.store(), backend.another(), backend.another()];
    let owner = member(instances[0].as_ref(), "Owner");
    let reader = member(instances[0].as_ref(), "Reader");
    grant(instances[0].as_ref(), &owner, Grantee::Member(reader.clone()), &[], 0);
    let done = Arc::new(AtomicBool::new(false));
    const PER_INSTANCE: usize = 120;

    let publishers: Vec<_> = instances
        .iter()
        .enumerate()
        .flat_map(|(i, store)| (0..2).map(move |t| (i, t, Arc::clone(store))))
        .map(|(i, t, store)| {
            let owner = owner.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while n < PER_INSTANCE / 2 {
                    // Single publishes and small batches, as the API makes them.
                    let batch = 1 + (n % 3);
                    let versions: Vec<NewVersion> = (n..(n + batch).min(PER_INSTANCE / 2))
                        .map(|k| {
                            let uri = format!("urn:cluster:{i}:{t}:{k}");
                            version(&owner, &uri, None, &uri)
                        })
                        .collect();
                    n += versions.len();
                    store.publish_all(versions).unwrap();
                }
            })
        })
        .collect();

    // The poller reads the partner's wire oldest first, from a cursor taken before anything was
    // published; the tailer reads current versions after a position.
    let poller = {
        let store = Arc::clone(&instances[1]);
        let (reader, done) = (reader.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut cursor = store.list(&reader, &ListQuery::newest(1), now()).unwrap().horizon;
            let mut seen: Vec<String> = Vec::new();
            // After the last publish, the poller goes on until it has seen every item or 10 s have
            // passed: commit times can run a few microseconds ahead of the database's clock (several
            // versions stored in one microsecond), so the last ones pass a reader's horizon a moment
            // later. An item it never sees still fails the test.
            let mut finished_at: Option<std::time::Instant> = None;
            loop {
                if finished_at.is_none() && done.load(Ordering::SeqCst) {
                    finished_at = Some(std::time::Instant::now());
                }
                let finished = finished_at.is_some_and(|at| {
                    seen.len() >= 3 * PER_INSTANCE || at.elapsed() > std::time::Duration::from_secs(10)
                });
                loop {
                    let mut query = ListQuery::newest(25);
                    query.page = Page::Since(cursor);
                    let page = store.list(&reader, &query, now()).unwrap();
                    seen.extend(page.entries.iter().map(|e| e.version.uri.clone()));
                    cursor = page.next.unwrap();
                    if page.entries.len() < 25 {
                        break;
                    }
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    let tailer = {
        let store = Arc::clone(&instances[2]);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut position, mut seen) = (0i64, Vec::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                loop {
                    let page = store.current_versions_after(position, 17).unwrap();
                    seen.extend(page.versions.iter().map(|v| v.seq));
                    match page.scanned_to {
                        Some(to) => position = to,
                        None => break,
                    }
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    for publisher in publishers {
        publisher.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let polled = poller.join().unwrap();
    let tailed = tailer.join().unwrap();

    let total = instances.len() * PER_INSTANCE;
    let unique: HashSet<&String> = polled.iter().collect();
    assert_eq!(unique.len(), polled.len(), "the poller saw nothing twice");
    assert_eq!(polled.len(), total, "the poller saw every item");
    assert!(tailed.windows(2).all(|pair| pair[0] < pair[1]), "the tailer's sequence numbers only grow");
    assert_eq!(tailed.len(), total, "the tailer saw every version once");
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The SQL of `list` must agree with the domain's `visibility_for` on random agreements and items.
pub fn list_matches_the_visibility_rule(make: Make) {
    let subjects = ["economy", "sport", "culture"];
    for seed in 1..=6u64 {
        let backend = make();
        let store = backend.store();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let members: Vec<MemberId> = (0..4).map(|n| member(store.as_ref(), &format!("M{n}"))).collect();
        for _ in 0..6 {
            let grantor = &members[rng.below(4) as usize];
            let grantee = match rng.below(5) {
                0 => Grantee::Everyone,
                n => Grantee::Member(members[(n - 1) as usize].clone()),
            };
            if grantee == Grantee::Member(grantor.clone()) {
                continue;
            }
            let limited: Vec<&str> = subjects.iter().copied().filter(|_| rng.below(3) == 0).collect();
            let delay = [0, 0, 5, 120][rng.below(4) as usize];
            let right = if rng.below(2) == 0 { Right::View } else { Right::Republish };
            grant_with(store.as_ref(), grantor, grantee, &limited, delay, right);
        }
        let base = now();
        for n in 0..30 {
            let owner = &members[rng.below(4) as usize];
            let mut item = version(owner, &format!("urn:r:{n}"), None, "x");
            item.subjects = subjects.iter().filter(|_| rng.below(2) == 0).map(|s| s.to_string()).collect();
            if rng.below(4) == 0 {
                item.embargoed_until = Some(base.plus_minutes(rng.below(200) as i64 - 20));
            }
            if rng.below(6) == 0 {
                item.pub_status = PubStatus::Canceled;
            }
            store.publish(item).unwrap();
        }
        for minutes in [0, 10, 130, 400] {
            let at = now().plus_minutes(minutes);
            for viewer in &members {
                let mut all = ListQuery::newest(1000);
                all.include_kills = true;
                let entries = store.list(viewer, &all, at).unwrap().entries;
                let listed: HashSet<String> = entries.iter().map(|e| e.version.uri.clone()).collect();
                // The right the SQL computes is the right `item` (the Rust rule) gives.
                for entry in &entries {
                    if let ItemRead::Visible(_, right) = store.item(viewer, &entry.version.item_id, at).unwrap() {
                        assert_eq!(entry.right, right, "seed {seed}: right on {}", entry.version.uri);
                    }
                }
                // The naive way: ask `item` (which applies the domain's `visibility_for` in Rust) about
                // every item of every member, and compare with what the SQL of `list` returned.
                let mut expected = HashSet::new();
                for owner in &members {
                    let mut everything = ListQuery::newest(1000);
                    everything.include_kills = true;
                    for entry in store.list(owner, &everything, at).unwrap().entries {
                        if &entry.version.owner != owner {
                            continue;
                        }
                        let id = &entry.version.item_id;
                        let seq = entry.version.seq;
                        let (ItemRead::Visible(v, _) | ItemRead::Killed(v)) = store.item(owner, id, at).unwrap() else {
                            panic!("the owner sees its item")
                        };
                        assert_eq!(v.seq, seq);
                        let read = store.item(viewer, id, at).unwrap();
                        if read != ItemRead::NotFound {
                            expected.insert(entry.version.uri.clone());
                        }
                    }
                }
                assert_eq!(listed, expected, "seed {seed}, +{minutes} min, viewer {viewer}");
                // Paging in small steps (which takes the store's bounded-scan path) gives exactly the
                // full list, newest first with `after=` and oldest first with `since=`.
                let full: Vec<String> =
                    store.list(viewer, &all, at).unwrap().entries.iter().map(|e| e.version.uri.clone()).collect();
                for (page_size, newest_first) in [(3, true), (4, false)] {
                    let mut query = all.clone();
                    query.limit = page_size;
                    query.page = if newest_first {
                        Page::NewestFirst(None)
                    } else {
                        Page::Since(Cursor { at: Timestamp(0), seq: 0 })
                    };
                    let mut paged = Vec::new();
                    loop {
                        let page = store.list(viewer, &query, at).unwrap();
                        paged.extend(page.entries.iter().map(|e| e.version.uri.clone()));
                        if (page.entries.len() as u32) < page_size {
                            break;
                        }
                        let next = page.next.expect("a full page has a next cursor");
                        query.page = if newest_first { Page::NewestFirst(Some(next)) } else { Page::Since(next) };
                    }
                    let mut expected_order = full.clone();
                    if !newest_first {
                        expected_order.reverse();
                    }
                    assert_eq!(paged, expected_order, "seed {seed}, +{minutes} min, page {page_size}");
                }
            }
        }
    }
}

pub fn outbox_fanout_deliveries_and_changes(make: Make) {
    let backend = make();
    let store = backend.store();
    let store = store.as_ref();
    let (a, b) = (member(store, "Agency A"), member(store, "Agency B"));
    grant(store, &a, Grantee::Everyone, &[], 0);
    let start = store.outbox_position().unwrap();
    assert_eq!(start, 0);

    // Every stored version leaves one event in the outbox, of the right kind; a resend leaves none.
    store.publish(version(&a, "urn:1", Some("1"), "First")).unwrap();
    store.publish(version(&a, "urn:1", Some("1"), "First")).unwrap();
    store.publish(version(&a, "urn:1", Some("2"), "First, corrected")).unwrap();
    let mut embargoed = version(&a, "urn:2", None, "Embargoed");
    embargoed.embargoed_until = Some(Timestamp(now().micros() + 3_600_000_000));
    store.publish(embargoed).unwrap();
    let mut kill = version(&a, "urn:1", Some("3"), "First, killed");
    kill.pub_status = PubStatus::Canceled;
    store.publish(kill).unwrap();
    let events = store.outbox_after(start, 100).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Publish, EventKind::Correction, EventKind::EmbargoRelease, EventKind::Kill]);
    assert!(events[2].due_at.micros() > now().micros() + 3_000_000_000, "an embargo release falls due at its end");

    // A subscription with a webhook gets pending deliveries; one without only feed entries.
    let hook = SubscriptionSpec {
        name: "pushed".into(),
        query: vec![("q".into(), "first".into())],
        events: EventKind::ALL.to_vec(),
        format: "ninjs".into(),
        webhook: Some(Webhook { url: "http://127.0.0.1:9/hook".into(), secret: "s".into() }),
    };
    let pushed = store.add_subscription(&b, hook.clone(), [1; 32]).unwrap();
    let pulled = store
        .add_subscription(&b, SubscriptionSpec { name: "pulled".into(), webhook: None, ..hook.clone() }, [2; 32])
        .unwrap();
    assert!(matches!(store.add_subscription(&b, hook.clone(), [3; 32]), Err(StoreError::Conflict { .. })));
    assert_eq!(store.subscription_by_feed_token([2; 32]).unwrap().unwrap().id, pulled.id);
    assert!(store.subscription(&a, &pushed.id).unwrap().is_none(), "subscriptions are per member");
    let before = store.changes(&pulled.id, None, 10, now()).unwrap().next;

    let first = &events[0];
    assert!(store.acquire_lease(FANOUT_LEASE, "fanout-1", now(), Timestamp(now().micros() + 600_000_000)).unwrap());
    let deliveries: Vec<NewDelivery> = [&pushed, &pulled]
        .iter()
        .map(|s| NewDelivery {
            subscription: s.id.clone(),
            event_id: first.id,
            seq: first.version.seq,
            item_id: first.version.item_id.clone(),
            kind: first.kind,
            due_at: first.due_at,
        })
        .collect();
    assert_eq!(store.record_fanout("fanout-1", first.id, deliveries.clone()).unwrap(), 2);
    assert_eq!(store.queue_depths().unwrap().deliveries_pending, 1, "the webhook's; the feed's is listed only");
    assert_eq!(
        store.record_fanout("fanout-1", first.id, deliveries).unwrap(),
        0,
        "a fan-out replayed writes nothing twice"
    );
    assert_eq!(store.outbox_position().unwrap(), first.id);
    let rest = store.outbox_after(store.outbox_position().unwrap(), 100).unwrap();
    assert_eq!(rest.len(), 3);
    assert_eq!(store.outbox_head().unwrap(), rest.last().unwrap().id, "the head is the newest event");
    assert_eq!(store.delivered_items(std::slice::from_ref(&first.version.item_id)).unwrap().len(), 2);

    // The pull feed lists the entry after the cursor taken before it, and not again after it.
    let page = store.changes(&pulled.id, Some(before), 10, now()).unwrap();
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].kind, EventKind::Publish);
    assert!(store.changes(&pulled.id, Some(page.next), 10, now()).unwrap().changes.is_empty());

    // Only the webhook's delivery is due for pushing; busy subscriptions and in-flight ones are left out.
    let due = store.due_deliveries(now(), 10, &[], &[]).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].subscription, pushed.id);
    assert!(store.due_deliveries(now(), 10, std::slice::from_ref(&pushed.id), &[]).unwrap().is_empty());
    assert!(store.due_deliveries(now(), 10, &[], &[due[0].n]).unwrap().is_empty());

    // A failed attempt schedules a retry; a success ends it; the log shows both attempts.
    let retry_at = Timestamp(now().micros() + 60_000_000);
    let failed = AttemptRecord {
        n: due[0].n,
        attempt: 1,
        at: now(),
        status: Some(503),
        latency_micros: 1200,
        error: Some("HTTP 503".into()),
        outcome: AttemptOutcome::RetryAt(retry_at),
    };
    store.record_attempts("pusher-1", vec![failed]).unwrap();
    assert!(store.due_deliveries(now(), 10, &[], &[]).unwrap().is_empty());
    assert_eq!(store.next_due().unwrap(), Some(retry_at));
    let later = Timestamp(retry_at.micros() + 1);
    let again = store.due_deliveries(later, 10, &[], &[]).unwrap();
    assert_eq!(again[0].attempts, 1);
    let done = AttemptRecord {
        n: again[0].n,
        attempt: 2,
        at: later,
        status: Some(200),
        latency_micros: 900,
        error: None,
        outcome: AttemptOutcome::Delivered,
    };
    store.record_attempts("pusher-1", vec![done]).unwrap();
    let log = store.deliveries(&pushed.id, now(), None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert_eq!(log[0].attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(503), Some(200)]);
    assert_eq!(store.next_due().unwrap(), None);

    // A delivery due in the future (the embargo) stays out of the feed and the log until then.
    let release = &events[2];
    store
        .record_fanout(
            "fanout-1",
            release.id,
            vec![NewDelivery {
                subscription: pulled.id.clone(),
                event_id: release.id,
                seq: release.version.seq,
                item_id: release.version.item_id.clone(),
                kind: release.kind,
                due_at: release.due_at,
            }],
        )
        .unwrap();
    assert!(store.changes(&pulled.id, Some(page.next), 10, now()).unwrap().changes.is_empty());
    assert_eq!(store.deliveries(&pulled.id, now(), None, 10).unwrap().len(), 1);
    assert_eq!(store.recent_changes(&pulled.id, 10, now()).unwrap().len(), 1);

    // The version read applies visibility: the killed item shows only its notice to others.
    match store.version_for(&b, &first.version.item_id, first.version.seq, now()).unwrap() {
        VersionRead::Killed(notice) => assert_eq!(notice.pub_status, PubStatus::Canceled),
        other => panic!("expected the kill notice, got {other:?}"),
    }
    match store.version_for(&a, &first.version.item_id, first.version.seq, now()).unwrap() {
        VersionRead::Killed(_) => {}
        other => panic!("the owner's item is killed too, got {other:?}"),
    }
    assert_eq!(
        store.version_for(&b, &release.version.item_id, release.version.seq, now()).unwrap(),
        VersionRead::NotFound,
        "embargoed"
    );
    assert!(matches!(
        store.version_for(&a, &release.version.item_id, release.version.seq, now()).unwrap(),
        VersionRead::Visible(..)
    ));

    // Deleting a subscription deletes its deliveries; without a webhook nothing is pushed.
    assert!(store.delete_subscription(&b, &pushed.id).unwrap());
    assert!(!store.delete_subscription(&b, &pushed.id).unwrap());
    assert!(
        store
            .update_subscription(&b, &pulled.id, SubscriptionSpec { name: "renamed".into(), ..pulled.spec.clone() })
            .unwrap()
    );
    assert_eq!(store.subscriptions(&b).unwrap().iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>(), ["renamed"]);
    assert!(store.due_deliveries(Timestamp(i64::MAX), 10, &[], &[]).unwrap().is_empty());
}

pub fn users_and_sessions(make: Make) {
    let backend = make();
    let store = backend.store();
    let store = store.as_ref();
    let (a, b) = (member(store, "Agency A"), member(store, "Agency B"));
    let new = |member: &MemberId, email: &str| NewUser {
        member: member.clone(),
        email: email.to_string(),
        display_name: "Aigerim".to_string(),
        role: Role::Editor,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
        operator: false,
    };
    let user = store.add_user(new(&a, " Aigerim@Example.KZ ")).unwrap();
    assert_eq!(user.email, "aigerim@example.kz", "emails are kept trimmed and lowercased");
    assert!(matches!(store.add_user(new(&b, "AIGERIM@example.kz")), Err(StoreError::Conflict { .. })));
    assert!(matches!(
        store.add_user(new(&MemberId::parse("mbr_01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap(), "x@example.kz")),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.user_by_email("AIGERIM@EXAMPLE.KZ").unwrap().unwrap().id, user.id);
    assert_eq!(store.users(&a).unwrap().len(), 1);
    assert!(store.users(&b).unwrap().is_empty());

    let later = Timestamp(now().micros() + 3_600_000_000);
    store.create_session(&user.id, [7; 32], "csrf-token", later).unwrap();
    let session = store.session([7; 32], now()).unwrap().unwrap();
    assert_eq!((session.user.id.clone(), session.csrf.as_str()), (user.id.clone(), "csrf-token"));
    assert!(store.session([7; 32], Timestamp(later.micros() + 1)).unwrap().is_none(), "expired");
    assert!(store.session([8; 32], now()).unwrap().is_none());

    // Another member cannot touch the user; a locale is remembered; disabling ends the sessions.
    assert!(!store.update_user(&b, &user.id, None, Some(Some("kk".into())), None).unwrap());
    assert!(store.update_user(&a, &user.id, None, Some(Some("kk".into())), None).unwrap());
    assert_eq!(store.session([7; 32], now()).unwrap().unwrap().user.locale.as_deref(), Some("kk"));
    // A time zone likewise, and it can be cleared (back to the browser's).
    assert_eq!(user.time_zone, None);
    assert!(!store.set_user_time_zone(&b, &user.id, Some("Asia/Almaty".into())).unwrap());
    assert!(store.set_user_time_zone(&a, &user.id, Some("Asia/Almaty".into())).unwrap());
    assert_eq!(store.session([7; 32], now()).unwrap().unwrap().user.time_zone.as_deref(), Some("Asia/Almaty"));
    assert_eq!(store.users(&a).unwrap()[0].time_zone.as_deref(), Some("Asia/Almaty"));
    assert!(store.set_user_time_zone(&a, &user.id, None).unwrap());
    assert_eq!(store.user_by_email("aigerim@example.kz").unwrap().unwrap().time_zone, None);
    assert!(store.update_user(&a, &user.id, None, None, Some(true)).unwrap());
    assert!(store.session([7; 32], now()).unwrap().is_none(), "a disabled user has no session");
    assert!(store.update_user(&a, &user.id, None, None, Some(false)).unwrap());
    store.create_session(&user.id, [9; 32], "c2", later).unwrap();
    assert!(store.update_user(&a, &user.id, Some("$argon2id$new".into()), None, None).unwrap());
    assert!(store.session([9; 32], now()).unwrap().is_none(), "a new password ends every session");
    store.create_session(&user.id, [10; 32], "c3", later).unwrap();
    store.end_session([10; 32]).unwrap();
    assert!(store.session([10; 32], now()).unwrap().is_none(), "logged out");
}

pub fn translation_queue_glossaries_and_cache(make: Make) {
    let backend = make();
    let store = backend.store();
    let store = store.as_ref();
    let owner = member(store, "Kazinform");
    let partner = member(store, "Xinhua");
    let stranger = member(store, "Other");
    // Read languages: replaced as a whole, kept sorted.
    store.set_read_languages(&owner, vec!["ru".into(), "en".into()]).unwrap();
    store.set_read_languages(&owner, vec!["ru".into(), "kk".into()]).unwrap();
    assert_eq!(store.read_languages(&owner).unwrap(), vec!["kk".to_string(), "ru".to_string()]);
    store.set_read_languages(&partner, vec!["zh-Hans".into()]).unwrap();
    store.set_read_languages(&stranger, vec!["tg".into()]).unwrap();
    grant(store, &owner, Grantee::Member(partner.clone()), &[], 0);

    // A Kazakh item: a head and a body job for the owner's Russian and the partner's Chinese, not for
    // Kazakh (its own language) nor Tajik (read only by a member who cannot see it).
    let first = store.publish(version(&owner, "urn:t:1", None, "Бірінші")).unwrap().stored().clone();
    assert_eq!(store.queue_depths().unwrap().translation_jobs_queued, 4, "two jobs per language wait");
    let t0 = now();
    let lease = Timestamp(t0.micros() + 60_000_000);
    let jobs = store.claim_translation_jobs("worker-1", t0, lease, ClaimLimits::each(10)).unwrap();
    let mut seen: Vec<(TranslationPart, &str)> = jobs.iter().map(|j| (j.part, j.language.as_str())).collect();
    assert_eq!(jobs[0].part, TranslationPart::Head, "heads come first: {seen:?}");
    seen.sort();
    assert_eq!(
        seen,
        [
            (TranslationPart::Head, "ru"),
            (TranslationPart::Head, "zh-Hans"),
            (TranslationPart::Body, "ru"),
            (TranslationPart::Body, "zh-Hans")
        ]
    );
    assert!(jobs.iter().all(|j| j.version.seq == first.seq && j.current && j.attempts == 1 && !j.wanted));
    // Leased: not claimed again until the lease runs out (a crashed worker's jobs come back).
    assert!(store.claim_translation_jobs("worker-1", t0, lease, ClaimLimits::each(10)).unwrap().is_empty());
    // After the lease: one head asked for, and another due head left, so no body is taken.
    let after = Timestamp(lease.micros() + 1);
    let again =
        store.claim_translation_jobs("worker-1", after, Timestamp(after.micros() + 1), ClaimLimits::each(1)).unwrap();
    assert_eq!(again.iter().map(|j| (j.part, j.attempts)).collect::<Vec<_>>(), [(TranslationPart::Head, 2)]);
    let counts = store.translation_queue(&owner).unwrap();
    assert_eq!(counts.head, QueueCounts { queued: 0, running: 2, done: 0, failed: 0 });
    assert_eq!(counts.total(), QueueCounts { queued: 0, running: 4, done: 0, failed: 0 });
    let counts = store.translation_queue(&partner).unwrap().total();
    assert_eq!(
        (counts.queued, counts.running, counts.done, counts.failed),
        (0, 0, 0, 0),
        "only the owner's jobs count"
    );

    // A retry goes back to the queue at its time; done stores the translations with the job.
    let job = |part: TranslationPart, language: &str| {
        jobs.iter().find(|j| j.part == part && j.language == language).unwrap().id
    };
    let retry_at = Timestamp(t0.micros() + 5_000_000);
    let zh = job(TranslationPart::Head, "zh-Hans");
    store.finish_translation_job("worker-1", zh, JobOutcome::Retry { error: "busy".into(), retry_at }).unwrap();
    let head = translation(first.seq, "ru", TranslationPart::Head, json!({ "headlines": [{ "value": "Первый" }] }), t0);
    let ru = job(TranslationPart::Head, "ru");
    store.finish_translation_job("worker-1", ru, JobOutcome::Done(vec![head.clone()])).unwrap();
    assert_eq!(store.translations(&[first.seq]).unwrap(), vec![head]);
    let body_ru = job(TranslationPart::Body, "ru");
    let body_zh = job(TranslationPart::Body, "zh-Hans");
    store.finish_translation_job("worker-1", body_ru, JobOutcome::Done(Vec::new())).unwrap();
    store.finish_translation_job("worker-1", body_zh, JobOutcome::Done(Vec::new())).unwrap();
    assert!(store.claim_translation_jobs("worker-1", t0, lease, ClaimLimits::each(10)).unwrap().is_empty());
    let retried = store.claim_translation_jobs("worker-1", retry_at, lease, ClaimLimits::each(10)).unwrap();
    assert_eq!(
        retried.iter().map(|j| (j.part, j.language.as_str())).collect::<Vec<_>>(),
        [(TranslationPart::Head, "zh-Hans")]
    );
    store
        .finish_translation_job("worker-1", retried[0].id, JobOutcome::Failed { error: "no such language".into() })
        .unwrap();
    assert!(matches!(
        store.finish_translation_job("worker-1", 9_999, JobOutcome::Done(vec![])),
        Err(StoreError::NotFound(_))
    ));
    let counts = store.translation_queue(&owner).unwrap();
    assert_eq!(counts.head, QueueCounts { queued: 0, running: 0, done: 1, failed: 1 });
    assert_eq!(counts.body, QueueCounts { queued: 0, running: 0, done: 2, failed: 0 });

    // Two jobs per version and language; a correction gets its own, and the old version is no longer current.
    assert!(!store.enqueue_translation(first.seq, "ru").unwrap());
    assert!(store.enqueue_translation(first.seq, "en").unwrap());
    assert!(!store.enqueue_translation(i64::MAX, "en").unwrap(), "no job for a version that does not exist");
    let second = store.publish(version(&owner, "urn:t:1", None, "Екінші")).unwrap().stored().clone();
    let far = Timestamp(now().micros() + 1_000_000_000);
    let jobs =
        store.claim_translation_jobs("worker-1", far, Timestamp(far.micros() + 1), ClaimLimits::each(10)).unwrap();
    let mut seen: Vec<(i64, &str, TranslationPart, bool)> =
        jobs.iter().map(|j| (j.version.seq, j.language.as_str(), j.part, j.current)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (first.seq, "en", TranslationPart::Head, false),
            (first.seq, "en", TranslationPart::Body, false),
            (second.seq, "ru", TranslationPart::Head, true),
            (second.seq, "ru", TranslationPart::Body, true),
            (second.seq, "zh-Hans", TranslationPart::Head, true),
            (second.seq, "zh-Hans", TranslationPart::Body, true),
        ]
    );
    // A kill is not translated.
    let mut kill = version(&owner, "urn:t:1", None, "Killed");
    kill.pub_status = PubStatus::Canceled;
    store.publish(kill).unwrap();
    assert!(
        store
            .claim_translation_jobs("worker-1", far, Timestamp(far.micros() + 1), ClaimLimits::each(10))
            .unwrap()
            .is_empty()
    );

    // Glossaries: per member and pair, in order; replaced whole; no terms deletes.
    let terms = vec![
        GlossaryTerm { source: "Тоқаев".into(), target: "Токаев".into() },
        GlossaryTerm { source: "Астана".into(), target: "Астана".into() },
    ];
    let saved = store.set_glossary(&owner, "kk", "ru", terms.clone()).unwrap();
    assert_eq!(saved.terms, terms);
    store.set_glossary(&partner, "kk", "ru", vec![terms[0].clone()]).unwrap();
    store
        .set_glossary(
            &owner,
            "kk",
            "zh-Hans",
            vec![GlossaryTerm { source: "Тоқаев".into(), target: "托卡耶夫".into() }],
        )
        .unwrap();
    let mine = store.glossaries(&owner).unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].target_language, "ru");
    assert_eq!(mine[0].terms, terms);
    assert_eq!(store.glossaries_into("ru").unwrap().len(), 2);
    store.set_glossary(&owner, "kk", "ru", vec![]).unwrap();
    assert_eq!(store.glossaries(&owner).unwrap().len(), 1);
    assert_eq!(store.glossaries_into("ru").unwrap().len(), 1);
    let nobody = MemberId::parse("mbr_01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap();
    assert!(matches!(store.set_glossary(&nobody, "kk", "ru", terms), Err(StoreError::NotFound(_))));

    // The segment cache.
    let (a, b) = ([1u8; 32], [2u8; 32]);
    store.cache_segments(vec![(a, "один".into())]).unwrap();
    assert_eq!(store.cached_segments(&[a, b]).unwrap(), vec![(a, "один".to_string())]);
}

/// Jobs by part: every due head is claimed before any body; bodies a reader waits for come first,
/// then by urgency, then oldest first; where a job stands counts only what its reader may know of.
pub fn translation_heads_come_first_then_wanted_urgent_and_old_bodies(make: Make) {
    let backend = make();
    let store = backend.store();
    let store = store.as_ref();
    let owner = member(store, "Kazinform");
    let other = member(store, "Xinhua");
    store.set_read_languages(&owner, vec!["ru".into()]).unwrap();
    store.set_read_languages(&other, vec!["ru".into()]).unwrap();
    let publish = |by: &MemberId, uri: &str, urgency: Option<i64>| {
        let mut new = version(by, uri, None, uri);
        new.urgency = urgency.map(|u| karavan_domain::Urgency::new(u).unwrap());
        store.publish(new).unwrap().stored().seq
    };
    let a = publish(&owner, "urn:order:a", Some(5));
    let b = publish(&owner, "urn:order:b", None);
    let c = publish(&owner, "urn:order:c", Some(1));
    let d = publish(&owner, "urn:order:d", Some(5));
    // Another member's most urgent item, under embargo: it is translated like any other, but the
    // owner's counts do not tell of it.
    let mut embargoed = version(&other, "urn:order:e", None, "Embargoed");
    embargoed.urgency = Some(karavan_domain::Urgency::new(1).unwrap());
    embargoed.embargoed_until = Some(Timestamp(now().micros() + 3_600_000_000));
    let e = store.publish(embargoed).unwrap().stored().seq;

    let t0 = now();
    let progress = store.translation_progress(&owner, d, "ru", t0).unwrap();
    let (head, body) = (progress.head.unwrap(), progress.body.unwrap());
    assert_eq!((head.state, body.state), (JobState::Queued, JobState::Queued));
    assert_eq!(head.ahead, Some(JobsAhead { heads: 2, bodies: 0 }), "heads of c and a (e is not counted)");
    assert_eq!(body.ahead, Some(JobsAhead { heads: 4, bodies: 2 }), "every head, then the bodies of c and a");
    assert_eq!(
        store.translation_progress(&other, d, "ru", t0).unwrap().body.unwrap().ahead,
        Some(JobsAhead { heads: 5, bodies: 3 }),
        "its owner's own embargoed item counts"
    );
    assert_eq!(store.translation_progress(&owner, d, "kk", t0).unwrap(), TranslationProgress::default());

    // Heads first, most urgent first, and no body while a due head is left.
    let lease = Timestamp(t0.micros() + 60_000_000);
    let heads = store.claim_translation_jobs("worker", t0, lease, ClaimLimits { heads: 5, bodies: 0 }).unwrap();
    assert_eq!(heads.iter().map(|j| j.version.seq).collect::<Vec<_>>(), [c, e, a, d, b]);
    assert!(heads.iter().all(|j| j.part == TranslationPart::Head));
    for job in &heads {
        store.finish_translation_job("worker", job.id, JobOutcome::Done(Vec::new())).unwrap();
    }
    // A reader waits for b's body: it goes first, though it has no urgency.
    assert!(store.prioritize_translation(b, "ru").unwrap());
    let waiting = store.translation_progress(&owner, b, "ru", t0).unwrap().body.unwrap();
    assert_eq!((waiting.wanted, waiting.ahead), (true, Some(JobsAhead { heads: 0, bodies: 0 })));
    assert_eq!(
        store.translation_progress(&owner, d, "ru", t0).unwrap().body.unwrap().ahead,
        Some(JobsAhead { heads: 0, bodies: 3 })
    );
    assert!(!store.prioritize_translation(b, "kk").unwrap(), "no such job");
    let bodies = store.claim_translation_jobs("worker", t0, lease, ClaimLimits::each(10)).unwrap();
    assert_eq!(bodies.iter().map(|j| j.version.seq).collect::<Vec<_>>(), [b, c, e, a, d]);
    assert_eq!(bodies.iter().map(|j| j.wanted).collect::<Vec<_>>(), [true, false, false, false, false]);
    let running = store.translation_progress(&owner, b, "ru", t0).unwrap().body.unwrap();
    assert_eq!((running.state, running.started_at, running.ahead), (JobState::Running, Some(t0), None));
    assert!(store.prioritize_translation(b, "ru").unwrap(), "running: still wanted");

    // Done, a reader still waits (its rendering is missing): queued again, first. Failed stays failed.
    let job = |seq: i64| bodies.iter().find(|j| j.version.seq == seq).unwrap().id;
    store.finish_translation_job("worker", job(b), JobOutcome::Done(Vec::new())).unwrap();
    store.finish_translation_job("worker", job(c), JobOutcome::Failed { error: "no".into() }).unwrap();
    assert_eq!(store.translation_progress(&owner, b, "ru", t0).unwrap().body.unwrap().state, JobState::Done);
    assert!(store.prioritize_translation(b, "ru").unwrap());
    assert!(!store.prioritize_translation(c, "ru").unwrap());
    assert_eq!(store.translation_progress(&owner, c, "ru", t0).unwrap().body.unwrap().state, JobState::Failed);
    let later = now();
    let again = store.claim_translation_jobs("worker", later, lease, ClaimLimits::each(10)).unwrap();
    assert_eq!(
        again.iter().map(|j| (j.version.seq, j.part, j.wanted)).collect::<Vec<_>>(),
        [(b, TranslationPart::Body, true)]
    );
}

/// A translation is stored per part: a head and a body stored apart are read as one, and storing one
/// never loses the other.
pub fn translation_parts_are_stored_apart_and_merged(make: Make) {
    let backend = make();
    let store = backend.store();
    let store = store.as_ref();
    let owner = member(store, "Kazinform");
    let seq = store.publish(version(&owner, "urn:parts:1", None, "Бірінші")).unwrap().stored().seq;
    let t0 = now();
    let t1 = Timestamp(t0.micros() + 1);
    let head = translation(seq, "ru", TranslationPart::Head, json!({ "headlines": [{ "value": "Первый" }] }), t0);
    let body = translation(seq, "ru", TranslationPart::Body, json!({ "bodies": [{ "value": "<p>Текст</p>" }] }), t1);
    store.put_translation(body.clone()).unwrap();
    assert_eq!(store.translations(&[seq]).unwrap(), vec![body.clone()], "a body alone");
    store.put_translation(head.clone()).unwrap();
    let merged = store.translations(&[seq]).unwrap();
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0].parts, TranslationPart::ALL);
    assert!(merged[0].has(TranslationPart::Head) && merged[0].has(TranslationPart::Body));
    assert_eq!(merged[0].fields["headlines"], json!([{ "value": "Первый" }]));
    assert_eq!(merged[0].fields["bodies"], json!([{ "value": "<p>Текст</p>" }]));
    assert_eq!(merged[0].created_at, t1, "the newest part's time");

    // The head again (a new glossary rendering of the same variant): the body stays.
    let t2 = Timestamp(t1.micros() + 1);
    let head2 = translation(seq, "ru", TranslationPart::Head, json!({ "headlines": [{ "value": "Первая" }] }), t2);
    store.put_translation(head2).unwrap();
    let merged = store.translations(&[seq]).unwrap();
    assert_eq!(merged[0].fields["headlines"], json!([{ "value": "Первая" }]));
    assert_eq!(merged[0].fields["bodies"], json!([{ "value": "<p>Текст</p>" }]));

    // Both parts at once (another variant) are two rows read back as one; a field of a part the
    // translation does not hold is refused, and nothing is written.
    let mut whole = translation(
        seq,
        "ru",
        TranslationPart::Head,
        json!({ "headlines": [{ "value": "В" }], "descriptions": [{ "value": "Д" }], "bodies": [{ "value": "Т" }] }),
        t2,
    );
    let refused = store.put_translation(whole.clone());
    assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
    assert_eq!(store.translations(&[seq]).unwrap().len(), 1);
    whole.variant = "v1".into();
    whole.parts = TranslationPart::ALL.to_vec();
    store.put_translation(whole.clone()).unwrap();
    let read = store.translations(&[seq]).unwrap();
    assert_eq!(read.iter().map(|t| t.variant.as_str()).collect::<Vec<_>>(), ["", "v1"]);
    assert_eq!(read[1], whole);

    // Through the job queue: the head job's translation, then the body job's, merged.
    store.set_read_languages(&owner, vec!["en".into()]).unwrap();
    let next = store.publish(version(&owner, "urn:parts:2", None, "Екінші")).unwrap().stored().seq;
    let t = now();
    let lease = Timestamp(t.micros() + 60_000_000);
    let jobs = store.claim_translation_jobs("worker", t, lease, ClaimLimits::each(5)).unwrap();
    assert_eq!(jobs.iter().map(|j| j.part).collect::<Vec<_>>(), TranslationPart::ALL);
    let head = translation(next, "en", TranslationPart::Head, json!({ "headlines": [{ "value": "Second" }] }), t);
    let body = translation(next, "en", TranslationPart::Body, json!({ "bodies": [{ "value": "Text" }] }), t);
    store.finish_translation_job("worker", jobs[1].id, JobOutcome::Done(vec![body])).unwrap();
    store.finish_translation_job("worker", jobs[0].id, JobOutcome::Done(vec![head])).unwrap();
    let read = store.translations(&[next]).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].fields.len(), read[0].parts.len()), (2, 2), "{read:?}");
}

// ---------------------------------------------------------------------------------------------------
// Work claimed by lease: several engine instances on one store.

/// A publisher with `items` items fanned out to `subscriptions` webhook subscriptions of a reader:
/// `items × subscriptions` pending deliveries, due now.
fn pending_deliveries(store: &dyn Store, items: usize, subscriptions: usize) -> Vec<karavan_domain::SubscriptionId> {
    let (owner, reader) = (member(store, "Publisher"), member(store, "Reader"));
    grant(store, &owner, Grantee::Everyone, &[], 0);
    for n in 0..items {
        store.publish(version(&owner, &format!("urn:lease:{n}"), None, "Leased")).unwrap();
    }
    let ids: Vec<_> = (0..subscriptions)
        .map(|n| {
            let spec = SubscriptionSpec {
                name: format!("hook {n}"),
                query: Vec::new(),
                events: EventKind::ALL.to_vec(),
                format: "ninjs".into(),
                webhook: Some(Webhook { url: format!("http://127.0.0.1:9/{n}"), secret: "s".into() }),
            };
            store.add_subscription(&reader, spec, [n as u8 + 100; 32]).unwrap().id
        })
        .collect();
    let events = store.outbox_after(0, 10_000).unwrap();
    let deliveries: Vec<NewDelivery> = events
        .iter()
        .flat_map(|event| {
            ids.iter().map(move |id| NewDelivery {
                subscription: id.clone(),
                event_id: event.id,
                seq: event.version.seq,
                item_id: event.version.item_id.clone(),
                kind: event.kind,
                due_at: event.due_at,
            })
        })
        .collect();
    let through = events.last().unwrap().id;
    assert!(store.acquire_lease(FANOUT_LEASE, "fanout", now(), Timestamp(now().micros() + 600_000_000)).unwrap());
    assert_eq!(store.record_fanout("fanout", through, deliveries).unwrap(), items * subscriptions);
    ids
}

fn delivered(n: i64, attempt: u32) -> AttemptRecord {
    AttemptRecord {
        n,
        attempt,
        at: now(),
        status: Some(200),
        latency_micros: 10,
        error: None,
        outcome: AttemptOutcome::Delivered,
    }
}

/// Two instances claim deliveries at once: each delivery is held by one of them at a time and sent
/// once, none is lost, and a subscription never has more than its limit in hand across both.
pub fn deliveries_are_claimed_once_by_concurrent_instances(make: Make) {
    let backend = make();
    let store = backend.store();
    let subscriptions = pending_deliveries(store.as_ref(), 40, 3);
    let instances = [("node-a", store), ("node-b", backend.another())];
    let held: Arc<std::sync::Mutex<std::collections::HashMap<i64, (String, String)>>> = Arc::default();
    let sent: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    std::thread::scope(|scope| {
        for (holder, instance) in &instances {
            let (held, sent) = (Arc::clone(&held), Arc::clone(&sent));
            scope.spawn(move || {
                loop {
                    let t = now();
                    let lease = Timestamp(t.micros() + 600_000_000);
                    let claimed = instance.claim_deliveries(holder, t, lease, 7, 4).unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    {
                        let mut held = held.lock().unwrap();
                        for delivery in &claimed {
                            let before =
                                held.insert(delivery.n, (holder.to_string(), delivery.subscription.to_string()));
                            assert!(before.is_none(), "delivery {} claimed while {before:?} held it", delivery.n);
                            let of_subscription =
                                held.values().filter(|(_, s)| *s == delivery.subscription.as_str()).count();
                            assert!(of_subscription <= 4, "a subscription had {of_subscription} deliveries in hand");
                        }
                    }
                    // Hold them a moment, as a send would, so that the two instances overlap.
                    std::thread::sleep(std::time::Duration::from_millis(3));
                    // Let go of the bookkeeping before the record ends the lease in the store.
                    {
                        let mut held = held.lock().unwrap();
                        for delivery in &claimed {
                            held.remove(&delivery.n);
                        }
                    }
                    let records: Vec<AttemptRecord> = claimed.iter().map(|d| delivered(d.n, d.attempts + 1)).collect();
                    assert_eq!(instance.record_attempts(holder, records).unwrap(), claimed.len());
                    sent.lock().unwrap().extend(claimed.iter().map(|d| d.n));
                }
            });
        }
    });
    let mut sent = sent.lock().unwrap().clone();
    let total = sent.len();
    sent.sort_unstable();
    sent.dedup();
    assert_eq!((total, sent.len()), (120, 120), "every delivery sent once");
    let store = backend.store();
    for subscription in &subscriptions {
        let log = store.deliveries(subscription, Timestamp(i64::MAX), None, 1000).unwrap();
        assert_eq!(log.len(), 40);
        assert!(log.iter().all(|d| d.state == DeliveryState::Delivered && d.attempts.len() == 1));
    }
    assert_eq!(store.next_due().unwrap(), None);
}

/// A claim takes the oldest due deliveries no one holds, at most a subscription's limit of each
/// however long its backlog, and leaves the rest for the next claim in the same order.
pub fn claims_take_the_oldest_within_each_subscriptions_limit(make: Make) {
    let backend = make();
    let store = backend.store();
    let subscriptions = pending_deliveries(store.as_ref(), 30, 3);
    let t = now();
    let lease = Timestamp(t.micros() + 600_000_000);
    let order: Vec<DueDelivery> = store.due_deliveries(t, 1000, &[], &[]).unwrap();
    assert_eq!(order.len(), 90);
    // What a claim of 5 with a limit of 2 per subscription takes: each subscription's 2 oldest, then
    // the oldest 5 of those.
    let expected = |order: &[DueDelivery], held: &[(usize, usize)]| -> Vec<i64> {
        let mut room: Vec<usize> = subscriptions.iter().map(|_| 2).collect();
        for (subscription, n) in held {
            room[*subscription] -= n;
        }
        let mut taken = Vec::new();
        for delivery in order {
            let i = subscriptions.iter().position(|s| *s == delivery.subscription).unwrap();
            if room[i] > 0 && taken.len() < 5 {
                room[i] -= 1;
                taken.push(delivery.n);
            }
        }
        taken
    };
    let first = store.claim_deliveries("a", t, lease, 5, 2).unwrap();
    assert_eq!(first.iter().map(|d| d.n).collect::<Vec<_>>(), expected(&order, &[]));
    // The subscriptions at their limit give nothing more; the one with room gives its next oldest.
    let held: Vec<(usize, usize)> = subscriptions
        .iter()
        .enumerate()
        .map(|(i, s)| (i, first.iter().filter(|d| d.subscription == *s).count()))
        .collect();
    let rest: Vec<DueDelivery> = order.iter().filter(|d| first.iter().all(|f| f.n != d.n)).cloned().collect();
    let second = store.claim_deliveries("b", t, lease, 5, 2).unwrap();
    assert_eq!(second.iter().map(|d| d.n).collect::<Vec<_>>(), expected(&rest, &held));
    assert_eq!(first.len() + second.len(), 6, "two per subscription in hand");
    assert!(store.claim_deliveries("c", t, lease, 5, 2).unwrap().is_empty(), "every subscription at its limit");
    // Sent: the next claim goes on from there, oldest first.
    let records = first.iter().chain(&second).map(|d| delivered(d.n, d.attempts + 1)).collect::<Vec<_>>();
    assert_eq!(store.record_attempts("a", records[..first.len()].to_vec()).unwrap(), first.len());
    assert_eq!(store.record_attempts("b", records[first.len()..].to_vec()).unwrap(), second.len());
    let left: Vec<DueDelivery> = store.due_deliveries(now(), 1000, &[], &[]).unwrap();
    assert_eq!(left.len(), 84);
    let third = store.claim_deliveries("a", now(), lease, 5, 2).unwrap();
    assert_eq!(third.iter().map(|d| d.n).collect::<Vec<_>>(), expected(&left, &[]));
}

/// Work held by an instance that died comes back when its lease ends (not before); the dead
/// instance's late writes are refused; work handed back at shutdown is free at once.
pub fn work_of_a_dead_instance_is_taken_over(make: Make) {
    let backend = make();
    let (a, b) = (backend.store(), backend.another());
    pending_deliveries(a.as_ref(), 3, 1);
    let t0 = now();
    let lease = |at: Timestamp| Timestamp(at.micros() + 10_000_000);
    let taken = a.claim_deliveries("dead", t0, lease(t0), 10, 10).unwrap();
    assert_eq!(taken.len(), 3);
    let soon = Timestamp(t0.micros() + 5_000_000);
    assert!(b.claim_deliveries("alive", soon, lease(soon), 10, 10).unwrap().is_empty(), "held inside the lease");
    let after = Timestamp(lease(t0).micros() + 1);
    let again = b.claim_deliveries("alive", after, lease(after), 10, 10).unwrap();
    assert_eq!(again.iter().map(|d| d.n).collect::<Vec<_>>(), taken.iter().map(|d| d.n).collect::<Vec<_>>());
    assert_eq!(
        a.record_attempts("dead", vec![delivered(taken[0].n, 1)]).unwrap(),
        0,
        "the dead holder's record is refused"
    );
    assert_eq!(b.record_attempts("alive", vec![delivered(again[0].n, 1)]).unwrap(), 1);
    assert_eq!(b.release_deliveries("alive").unwrap(), 2, "the two unsent are handed back");
    let free = a.claim_deliveries("restarted", after, lease(after), 10, 10).unwrap();
    assert_eq!(free.len(), 2, "handed-back deliveries are free at once");

    // Feed polls.
    let owner = member(a.as_ref(), "Feeds");
    let spec = FeedSpec {
        name: "Wire".into(),
        url: "https://feeds.example.org/rss".into(),
        language: Some("ru".into()),
        subjects: Vec::new(),
        interval_seconds: 300,
    };
    let feed = a.add_feed(&owner, spec).unwrap();
    let t1 = Timestamp(now().micros() + 1);
    assert_eq!(a.claim_feeds("dead", t1, lease(t1), 10).unwrap().len(), 1);
    assert!(b.claim_feeds("alive", t1, lease(t1), 10).unwrap().is_empty(), "one poller at a time");
    assert_eq!(b.next_feed_due().unwrap(), Some(lease(t1)), "a feed in hand falls due when its lease ends");
    let late = Timestamp(lease(t1).micros() + 1);
    let polled = b.claim_feeds("alive", late, lease(late), 10).unwrap();
    assert_eq!(polled.iter().map(|f| &f.id).collect::<Vec<_>>(), [&feed.id]);
    let fetched = |next: Timestamp| PollRecord::Fetched {
        etag: Some("\"v1\"".into()),
        last_modified: None,
        entries: Vec::new(),
        published: 0,
        next_poll_at: next,
    };
    let next = Timestamp(late.micros() + 300_000_000);
    assert!(matches!(
        a.record_feed_poll("dead", &feed.id, t1, fetched(next)),
        Err(StoreError::Conflict { code: "lease_lost", .. })
    ));
    b.record_feed_poll("alive", &feed.id, late, fetched(next)).unwrap();
    let recorded = b.feed(&owner, &feed.id).unwrap().unwrap();
    assert_eq!((recorded.next_poll_at, recorded.etag.as_deref()), (next, Some("\"v1\"")));
    assert!(a.claim_feeds("dead", late, lease(late), 10).unwrap().is_empty(), "polled: due again only later");

    // Translation jobs.
    a.set_read_languages(&owner, vec!["en".into()]).unwrap();
    a.publish(version(&owner, "urn:lease:tr", None, "Перевод")).unwrap();
    let t2 = now();
    let limits = ClaimLimits::each(10);
    let jobs = a.claim_translation_jobs("dead", t2, lease(t2), limits).unwrap();
    assert_eq!(jobs.iter().map(|j| j.part).collect::<Vec<_>>(), TranslationPart::ALL);
    assert!(b.claim_translation_jobs("alive", t2, lease(t2), limits).unwrap().is_empty());
    let late = Timestamp(lease(t2).micros() + 1);
    let taken_over = b.claim_translation_jobs("alive", late, lease(late), limits).unwrap();
    assert_eq!(taken_over.iter().map(|j| j.id).collect::<Vec<_>>(), jobs.iter().map(|j| j.id).collect::<Vec<_>>());
    assert!(matches!(
        a.finish_translation_job("dead", jobs[0].id, JobOutcome::Done(Vec::new())),
        Err(StoreError::Conflict { code: "lease_lost", .. })
    ));
    assert_eq!(b.release_translation_jobs("alive").unwrap(), 2);
    let back = a.claim_translation_jobs("restarted", late, lease(late), limits).unwrap();
    assert_eq!(back.len(), 2, "jobs handed back are queued again at once");
    for job in back {
        a.finish_translation_job("restarted", job.id, JobOutcome::Done(Vec::new())).unwrap();
    }
    assert_eq!(a.translation_queue(&owner).unwrap().total().done, 2);

    // The fan-out's named lease.
    let far = Timestamp(now().micros() + 3_600_000_000);
    assert!(a.acquire_lease("singleton", "dead", now(), Timestamp(now().micros() + 10_000_000)).unwrap());
    assert!(a.acquire_lease("singleton", "dead", now(), Timestamp(now().micros() + 20_000_000)).unwrap(), "extended");
    assert!(!b.acquire_lease("singleton", "alive", now(), far).unwrap(), "held by another");
    assert!(b.acquire_lease("singleton", "alive", far, Timestamp(far.micros() + 10_000_000)).unwrap(), "taken over");
    assert_eq!(a.lease("singleton").unwrap().map(|(holder, _)| holder).as_deref(), Some("alive"));
    assert!(!a.release_lease("singleton", "dead").unwrap(), "only its holder gives a lease up");
    // The fan-out writes only under its lease: a second instance without it writes nothing.
    let events = a.outbox_after(a.outbox_position().unwrap(), 100).unwrap();
    let last = events.last().unwrap().id;
    assert!(matches!(
        a.record_fanout("not-the-holder", last, Vec::new()),
        Err(StoreError::Conflict { code: "lease_lost", .. })
    ));
    assert!(a.outbox_position().unwrap() < last, "nothing written without the lease");
}

/// Feed providers and translation jobs claimed by two instances at once: each polled or translated
/// once, none left out.
pub fn feeds_and_jobs_are_claimed_once_by_concurrent_instances(make: Make) {
    let backend = make();
    let (a, b) = (backend.store(), backend.another());
    let owner = member(a.as_ref(), "Many feeds");
    for n in 0..24 {
        let spec = FeedSpec {
            name: format!("Feed {n}"),
            url: format!("https://feeds.example.org/{n}.xml"),
            language: None,
            subjects: Vec::new(),
            interval_seconds: 600,
        };
        a.add_feed(&owner, spec).unwrap();
    }
    a.set_read_languages(&owner, vec!["en".into()]).unwrap();
    for n in 0..24 {
        a.publish(version(&owner, &format!("urn:jobs:{n}"), None, "Текст")).unwrap();
    }
    let polled: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let translated: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    std::thread::scope(|scope| {
        for (holder, instance) in [("node-a", &a), ("node-b", &b)] {
            let (polled, translated) = (Arc::clone(&polled), Arc::clone(&translated));
            scope.spawn(move || {
                loop {
                    let t = now();
                    let until = Timestamp(t.micros() + 600_000_000);
                    let feeds = instance.claim_feeds(holder, t, until, 3).unwrap();
                    let jobs = instance.claim_translation_jobs(holder, t, until, ClaimLimits::each(2)).unwrap();
                    if feeds.is_empty() && jobs.is_empty() {
                        break;
                    }
                    for feed in feeds {
                        let record = PollRecord::Fetched {
                            etag: None,
                            last_modified: None,
                            entries: Vec::new(),
                            published: 0,
                            next_poll_at: until,
                        };
                        instance.record_feed_poll(holder, &feed.id, t, record).unwrap();
                        polled.lock().unwrap().push(feed.id.to_string());
                    }
                    for job in jobs {
                        instance.finish_translation_job(holder, job.id, JobOutcome::Done(Vec::new())).unwrap();
                        translated.lock().unwrap().push(job.id);
                    }
                }
            });
        }
    });
    for (what, mut done) in [
        ("feeds polled", polled.lock().unwrap().clone()),
        ("jobs done", translated.lock().unwrap().iter().map(|id| id.to_string()).collect()),
    ] {
        let total = done.len();
        done.sort();
        done.dedup();
        let expected = if what == "feeds polled" { 24 } else { 48 };
        assert_eq!((total, done.len()), (expected, expected), "{what}: each once, none left out");
    }
    assert_eq!(a.translation_queue(&owner).unwrap().total().done, 48);
}

/// The subscriptions' generation grows with every change, and every instance sees it.
pub fn generations_count_configuration_changes(make: Make) {
    let backend = make();
    let (a, b) = (backend.store(), backend.another());
    let reader = member(a.as_ref(), "Reader");
    let generation = || b.generation(karavan_store::SUBSCRIPTIONS_GENERATION).unwrap();
    let mut last = generation();
    let mut changed = |what: &str| {
        let now = generation();
        assert!(now > last, "{what}: generation {now} after {last}");
        last = now;
    };
    let spec = SubscriptionSpec {
        name: "watch".into(),
        query: Vec::new(),
        events: vec![EventKind::Publish],
        format: "ninjs".into(),
        webhook: None,
    };
    let subscription = a.add_subscription(&reader, spec.clone(), [42; 32]).unwrap();
    changed("created");
    a.update_subscription(&reader, &subscription.id, SubscriptionSpec { name: "renamed".into(), ..spec }).unwrap();
    changed("updated");
    a.delete_subscription(&reader, &subscription.id).unwrap();
    changed("deleted");
}

/// Stories: the engine's placements (under its lease only), kills leaving, merges redirecting (through
/// every merge since), the pool at start-up, and a story's items read through the visibility rule
/// (`ListQuery::items`): a reader sees only the items it may see, an empty list shows nothing.
pub fn stories_place_merge_and_show_only_visible_items(make: Make) {
    use karavan_domain::StoryId;
    use karavan_store::{Placement, STORY_LEASE, StoryLookup, StoryRound};
    let backend = make();
    let store = backend.store();
    let (owner, partner, outsider) =
        (member(store.as_ref(), "Owner"), member(store.as_ref(), "Partner"), member(store.as_ref(), "Outsider"));
    grant(store.as_ref(), &owner, Grantee::Member(partner.clone()), &[], 0);
    let t0 = now();
    let publish = |uri: &str| store.publish(version(&owner, uri, None, uri)).unwrap().stored().clone();
    let (a, b, c) = (publish("urn:story:a"), publish("urn:story:b"), publish("urn:story:c"));
    let story = |n: u8| StoryId::parse(&format!("sty_01ARZ3NDEKTSV4RRFFQ69G5FA{n}")).unwrap();
    let placed = |v: &karavan_store::StoredVersion, s: &StoryId, centrality: f32| Placement {
        item: v.item_id.clone(),
        story: s.clone(),
        seq: v.seq,
        at: v.committed_at,
        centrality,
    };
    assert_eq!(store.story_position().unwrap(), 0);
    let round = StoryRound {
        created: vec![(story(1), t0), (story(2), t0)],
        placed: vec![placed(&a, &story(1), 1.0), placed(&b, &story(1), 0.8), placed(&c, &story(2), 1.0)],
        ..StoryRound::default()
    };
    // Without the lease nothing is written.
    assert!(matches!(store.record_stories("engine-1", c.seq, round.clone()), Err(StoreError::Conflict { .. })));
    assert_eq!(store.story_position().unwrap(), 0);
    let until = Timestamp(t0.micros() + 60_000_000);
    assert!(store.acquire_lease(STORY_LEASE, "engine-1", t0, until).unwrap());
    store.record_stories("engine-1", c.seq, round).unwrap();
    assert_eq!(store.story_position().unwrap(), c.seq);
    let StoryLookup::Found(first) = store.story(&story(1)).unwrap() else { panic!("story 1 is stored") };
    let mut members: Vec<(karavan_domain::ItemId, f32)> =
        first.members.iter().map(|m| (m.item.clone(), m.centrality)).collect();
    members.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    let mut expected = vec![(a.item_id.clone(), 1.0), (b.item_id.clone(), 0.8)];
    expected.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(members, expected);
    let mut of = store.stories_of(&[a.item_id.clone(), c.item_id.clone()]).unwrap();
    of.sort_by(|x, y| x.1.as_str().cmp(y.1.as_str()));
    assert_eq!(of, [(a.item_id.clone(), story(1)), (c.item_id.clone(), story(2))]);

    // A story's items through the visibility rule: the partner sees them, an outsider nothing.
    let mut query = ListQuery::newest(100);
    query.items = Some(first.members.iter().map(|m| m.item.clone()).collect());
    assert_eq!(store.list(&partner, &query, now()).unwrap().entries.len(), 2);
    assert!(store.list(&outsider, &query, now()).unwrap().entries.is_empty());
    query.items = Some(Vec::new());
    assert!(store.list(&owner, &query, now()).unwrap().entries.is_empty(), "no items named, none listed");

    // A kill takes the item out; a merge moves the items and redirects, also from older merges; the
    // position never goes back.
    let round = StoryRound {
        created: vec![(story(3), t0)],
        removed: vec![b.item_id.clone()],
        merged: vec![(story(1), story(2))],
        ..StoryRound::default()
    };
    store.record_stories("engine-1", a.seq, round).unwrap();
    assert_eq!(store.story_position().unwrap(), c.seq);
    assert_eq!(store.story(&story(1)).unwrap(), StoryLookup::Merged(story(2)));
    store
        .record_stories("engine-1", c.seq, StoryRound { merged: vec![(story(2), story(3))], ..StoryRound::default() })
        .unwrap();
    assert_eq!(store.story(&story(1)).unwrap(), StoryLookup::Merged(story(3)), "redirects follow every merge");
    let StoryLookup::Found(merged) = store.story(&story(3)).unwrap() else { panic!("story 3 holds the items") };
    let mut items: Vec<&str> = merged.members.iter().map(|m| m.item.as_str()).collect();
    items.sort();
    let mut expected = vec![a.item_id.as_str(), c.item_id.as_str()];
    expected.sort();
    assert_eq!(items, expected, "the killed item left");
    assert_eq!(store.story(&StoryId::parse("sty_01ARZ3NDEKTSV4RRFFQ69G5FB0").unwrap()).unwrap(), StoryLookup::NotFound);
    let active = store.stories_active_since(Timestamp(t0.micros() - 60_000_000), 10).unwrap();
    assert_eq!(active.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), [story(3)]);
    assert!(store.stories_active_since(Timestamp(now().micros() + 60_000_000), 10).unwrap().is_empty());
}

/// Expands to one `#[test]` per scenario of the suite for a backend: `store_suite!(make)` where
/// `make` is a [`Make`].
#[macro_export]
macro_rules! store_suite {
    ($make:path) => {
        $crate::store_suite!(@tests $make;
            stats_count_the_whole_store,
            set_aside_items_are_held_until_retried,
            login_failures_are_counted_per_key,
            health_is_ok_while_writes_work,
            saved_searches_are_per_member,
            keys_authenticate_until_revoked,
            corrections_idempotency_and_conflicts,
            agreements_embargo_and_kills,
            cursors_page_and_poll_without_gaps_or_repeats,
            lists_filter_by_subject_language_urgency_and_owner,
            concurrent_publishers_lose_nothing,
            list_matches_the_visibility_rule,
            outbox_fanout_deliveries_and_changes,
            users_and_sessions,
            translation_queue_glossaries_and_cache,
            translation_heads_come_first_then_wanted_urgent_and_old_bodies,
            translation_parts_are_stored_apart_and_merged,
            deliveries_are_claimed_once_by_concurrent_instances,
            claims_take_the_oldest_within_each_subscriptions_limit,
            work_of_a_dead_instance_is_taken_over,
            feeds_and_jobs_are_claimed_once_by_concurrent_instances,
            generations_count_configuration_changes,
            releases_are_found_when_embargoes_end_and_delays_pass,
            outbox_readers_keep_events_until_they_pass_them,
            stories_place_merge_and_show_only_visible_items,
        );
    };
    (@tests $make:path; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::$scenario($make);
            }
        )*
    };
}

/// The instants at which versions become visible to more members without a write: embargo ends,
/// and agreement delays passing; killed items and revoked agreements release nothing.
pub fn releases_are_found_when_embargoes_end_and_delays_pass(make: Make) {
    let backend = make();
    let store = backend.store();
    let (owner, reader) = (member(store.as_ref(), "Owner"), member(store.as_ref(), "Reader"));
    let t0 = now();
    assert_eq!(store.next_release(t0).unwrap(), None, "nothing stored, nothing to release");
    grant(store.as_ref(), &owner, Grantee::Member(reader.clone()), &[], 30);
    let plain = store.publish(version(&owner, "urn:release:1", None, "Plain")).unwrap().stored().clone();
    let mut embargoed = version(&owner, "urn:release:2", None, "Embargoed");
    let end = Timestamp(t0.micros() + 10 * 60_000_000);
    embargoed.embargoed_until = Some(end);
    store.publish(embargoed).unwrap();
    let delay = 30 * 60_000_000;
    let plain_release = Timestamp(plain.available_at.micros() + delay);
    assert_eq!(store.next_release(t0).unwrap(), Some(end), "the embargo ends first");
    assert_eq!(store.next_release(end).unwrap(), Some(plain_release), "then the delay of the first item");
    assert_eq!(store.next_release(plain_release).unwrap(), Some(Timestamp(end.micros() + delay)));
    assert_eq!(store.next_release(Timestamp(end.micros() + delay)).unwrap(), None);
    // A killed item releases nothing more.
    let mut kill = version(&owner, "urn:release:2", None, "Killed");
    kill.pub_status = PubStatus::Canceled;
    store.publish(kill).unwrap();
    assert_eq!(store.next_release(t0).unwrap(), Some(plain_release));
}
