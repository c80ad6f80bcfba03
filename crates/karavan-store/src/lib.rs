//! Karavan's store: members, API keys, sharing agreements and versioned news items, behind the
//! [`Store`] trait. [`SqliteStore`] is the embedded default (one SQLite file in WAL mode in the data
//! directory); every backend must pass the same test suite (`tests/store_suite.rs`).
//!
//! Architecture invariant: every read of items takes the viewer and applies the visibility rule of
//! `karavan_domain::visibility_for` (in SQL, for lists); no method returns an item without a viewer.
//! Architecture invariant: a publish is acknowledged only after its transaction is durably committed.

mod common;
mod forward;
mod postgres;
mod sqlite;

use karavan_domain::{
    Agreement, AgreementId, ApiKey, CountryCode, DeliveryId, EventKind, FeedId, Grantee, ItemId, KeyHash, KeyId,
    LanguageTag, Member, MemberId, MemberName, PubStatus, Right, Role, SavedSearchId, StoryId, SubscriptionId,
    Timestamp, Urgency, UserId,
};
use serde_json::{Map, Value};

pub use self::postgres::{PostgresConfig, PostgresStore, redacted as redacted_url};
pub use sqlite::{
    BEFORE_RESTORE_FILE, BackupSummary, DATABASE_FILE, READ_WORK, RestoreReport, SERVE_LOCK_FILE, ServeLock,
    SqliteConfig, SqliteStore, sqlite_restore,
};

/// Errors of the store, the same for every backend (none carries a backend's own error type: a backend
/// maps its errors to these, a full disk to `StorageFull`). `Conflict`, `NotFound` and `Invalid` are the
/// caller's fault; the others are ours.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (its message, for the log; never shown to clients).
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The disk (or the database's size limit) is full: nothing was written. Writes work again once
    /// space is freed.
    #[error("the storage is full: {0}")]
    StorageFull(String),
    /// A transaction could not be committed (and so was rolled back) for another reason.
    #[error("the write could not be committed: {0}")]
    CommitFailed(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the error means the storage is full (SQLite's `SQLITE_FULL`, an `ENOSPC` from the file
    /// system), whatever layer reported it.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::StorageFull(_) => true,
            StoreError::Io(error) => {
                error.kind() == std::io::ErrorKind::StorageFull || error.raw_os_error() == Some(28)
            }
            _ => false,
        }
    }
}

/// Failed sign-ins counted under one key (an account, an address, or both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    pub key: String,
    pub failures: u32,
    pub last_at: Timestamp,
}

/// A stored version that background work could not use (it failed, or panicked, on it): recorded
/// with the error and skipped, so that one item never stops the server, its start-up or the work on
/// every other item. It is tried again only when an operator says so. Stored type (migration 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Which work: `read` (the stored row could not be read), `search-index`, `embedding`, `delivery`.
    pub work: String,
    pub seq: i64,
    pub item_id: String,
    /// The item's owner, where it could be read.
    pub owner: Option<MemberId>,
    pub error: String,
    /// Marked by an operator to be tried again (at the work's next pass or start-up).
    pub retry: bool,
    pub at: Timestamp,
}

/// The current versions after a sequence number, and how far the scan went (rows that could not be
/// read were set aside and skipped, but the scan went past them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionsAfter {
    pub versions: Vec<StoredVersion>,
    /// The highest sequence number scanned; `None` when there was nothing after.
    pub scanned_to: Option<i64>,
}

/// How the store is doing, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreHealth {
    /// Since when writes have been failing because the storage is full (`None`: they are not).
    pub storage_full_since: Option<Timestamp>,
}

/// Exchange-wide counts for the operator's metrics (never shown to a member: they count every
/// member's items, embargoed ones included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// The highest store sequence number written (0: none).
    pub head_seq: i64,
    /// Deliveries by state (`pending`, `delivered`, `dead`, `withdrawn`, `feed`), states with none left out.
    pub deliveries: Vec<(String, u64)>,
    /// Translation jobs of the whole exchange by state.
    pub translation_jobs: QueueCounts,
    /// Outbox events the fan-out has not reached yet.
    pub outbox_behind: u64,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long after its lease lapsed an outbox reader still holds events back (an hour).
pub const OUTBOX_READER_GRACE_MICROS: i64 = 3_600_000_000;

/// The named lease the fan-out holds: one instance fans out at a time.
pub const FANOUT_LEASE: &str = "fanout";
/// The generation of subscriptions (see [`LeaseStore::generation`]).
pub const SUBSCRIPTIONS_GENERATION: &str = "subscriptions";

/// A member to create.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub name: MemberName,
    pub country: CountryCode,
    pub languages: Vec<LanguageTag>,
    pub contact: Option<String>,
}

/// What the store knows of an API key; never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: KeyId,
    pub member: MemberId,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub member: MemberId,
    pub role: Role,
    pub key: KeyId,
}

/// An agreement to create.
#[derive(Debug, Clone)]
pub struct NewAgreement {
    pub grantor: MemberId,
    pub grantee: Grantee,
    pub right: Right,
    pub subjects: Vec<String>,
    pub delay_minutes: u32,
}

/// One version of an item to store: a normalised ninjs 3.1 document and the facts extracted from it.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub owner: MemberId,
    pub uri: String,
    /// The document's `version`; `None` lets the store number the version (1, 2, …).
    pub version: Option<String>,
    /// The normalised ninjs 3.1 document.
    pub document: Map<String, Value>,
    /// Input properties that ninjs 3.1 has no place for; kept, not dropped.
    pub extensions: Map<String, Value>,
    /// The document exactly as it was received.
    pub original: String,
    /// The ninjs version the input was read as ("1.4", "3.1", …).
    pub source_format: String,
    pub pub_status: PubStatus,
    pub embargoed_until: Option<Timestamp>,
    pub urgency: Option<Urgency>,
    pub language: Option<String>,
    pub item_type: Option<String>,
    pub version_created: Option<Timestamp>,
    /// Subject keys (codes and URIs) for agreements limited to subjects.
    pub subjects: Vec<String>,
}

impl NewVersion {
    /// A Kazakh text item with one headline and nothing else, as tests and tools make them.
    pub fn headline_only(owner: &MemberId, uri: &str, headline: &str) -> NewVersion {
        let mut document = Map::new();
        document.insert("uri".into(), Value::String(uri.to_string()));
        document.insert("headlines".into(), serde_json::json!([{ "value": headline }]));
        NewVersion {
            owner: owner.clone(),
            uri: uri.to_string(),
            version: None,
            original: Value::Object(document.clone()).to_string(),
            document,
            extensions: Map::new(),
            source_format: "ninjs 3.1".into(),
            pub_status: PubStatus::Usable,
            embargoed_until: None,
            urgency: None,
            language: Some("kk".into()),
            item_type: Some("text".into()),
            version_created: None,
            subjects: Vec::new(),
        }
    }
}

/// A stored version of an item, as a reader may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    pub item_id: ItemId,
    pub seq: i64,
    pub owner: MemberId,
    pub uri: String,
    pub version: String,
    /// 1 for the first version stored, 2 for the first correction, …
    pub number: i64,
    pub document: Map<String, Value>,
    pub extensions: Map<String, Value>,
    pub original: String,
    pub source_format: String,
    pub pub_status: PubStatus,
    pub committed_at: Timestamp,
    pub available_at: Timestamp,
}

/// The result of a publish.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishOutcome {
    /// A new item was created.
    Created(StoredVersion),
    /// A new version of an existing item was stored (a correction, or a kill).
    Corrected(StoredVersion),
    /// The same uri and version with the same content was already stored; nothing changed.
    Unchanged(StoredVersion),
}

impl PublishOutcome {
    pub fn stored(&self) -> &StoredVersion {
        match self {
            PublishOutcome::Created(v) | PublishOutcome::Corrected(v) | PublishOutcome::Unchanged(v) => v,
        }
    }
}

/// What a viewer gets when asking for one item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemRead {
    /// Visible, with the strongest right the viewer holds on it (its owner: republish).
    Visible(StoredVersion, Right),
    /// The item was killed; this is its kill notice (the canceled version).
    Killed(StoredVersion),
    /// Absent, or not visible to the viewer: the two are indistinguishable on purpose.
    NotFound,
}

/// A position in a viewer's wire: the instant the viewer could first see an item version, then the
/// version's sequence number to break ties. Lists are ordered by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: Timestamp,
    pub seq: i64,
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn to_token(self) -> String {
        format!("{:x}-{:x}", self.at.micros(), self.seq)
    }

    pub fn parse_token(token: &str) -> Option<Cursor> {
        let (at, seq) = token.split_once('-')?;
        let at = i64::from_str_radix(at, 16).ok()?;
        let seq = i64::from_str_radix(seq, 16).ok()?;
        (at >= 0 && seq >= 0).then_some(Cursor { at: Timestamp(at), seq })
    }
}

/// Which part of the wire a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Newest first, from the newest item (`None`) or from just before a cursor (`after=`).
    NewestFirst(Option<Cursor>),
    /// Oldest first, everything that appeared after a cursor (`since=`), for polling.
    Since(Cursor),
}

/// Filters and paging for listing items.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub page: Page,
    pub limit: u32,
    pub owner: Option<MemberId>,
    /// Language tags; `uz` matches `uz`, `uz-Latn` and `uz-Cyrl`.
    pub languages: Vec<String>,
    pub item_type: Option<String>,
    /// Urgency range, inclusive.
    pub urgency: Option<(u8, u8)>,
    /// `versionCreated` range (the time the item was stored where it has none), inclusive.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Include kill notices of killed items the viewer could see.
    pub include_kills: bool,
    /// List kill notices only (with `include_kills`): the wire's "kill notices" view.
    pub only_kills: bool,
    /// Subject keys (a subject's `literal` or `uri`, or the QCode of an IPTC NewsCodes URI, as
    /// agreements name them); an item matches when its current version has any of them.
    pub subjects: Vec<String>,
    /// Only these items (a story's); `None` for any. An empty list lists nothing.
    pub items: Option<Vec<ItemId>>,
}

impl ListQuery {
    pub fn newest(limit: u32) -> ListQuery {
        ListQuery {
            page: Page::NewestFirst(None),
            limit,
            owner: None,
            languages: Vec::new(),
            item_type: None,
            urgency: None,
            from: None,
            to: None,
            include_kills: false,
            only_kills: false,
            subjects: Vec::new(),
            items: None,
        }
    }
}

/// One entry of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    pub cursor: Cursor,
    pub version: StoredVersion,
    /// The strongest right the viewer holds on the item (its owner: republish).
    pub right: Right,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// Where to continue: the next older page for `NewestFirst`, the next poll for `Since`.
    pub next: Option<Cursor>,
    /// A cursor to poll from (`since=`) so as to see only what appears after this page was read.
    pub horizon: Cursor,
}

/// A member's named search: the query parameters as a client gives them to `GET /v1/search`.
/// Stored: changing it needs a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSearch {
    pub id: SavedSearchId,
    pub member: MemberId,
    pub name: String,
    /// (parameter, value) pairs, in order.
    pub query: Vec<(String, String)>,
    pub created_at: Timestamp,
}

/// A person to create, who signs in to the web newsroom for a member.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub member: MemberId,
    /// The sign-in name, lowercased; unique across the exchange.
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// A PHC string (argon2id); the password itself is never stored.
    pub password_hash: String,
    /// An operator of the exchange, who may also add member agencies.
    pub operator: bool,
}

/// What a member says about a feed ingest provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    pub name: String,
    /// The RSS or Atom URL (checked by the caller against the outbound URL rules).
    pub url: String,
    /// The language of entries that do not say theirs.
    pub language: Option<String>,
    /// Subjects added to every item (QCodes, URIs or names).
    pub subjects: Vec<String>,
    /// Seconds between polls.
    pub interval_seconds: u32,
}

/// A feed ingest provider with its polling state and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedProvider {
    pub id: FeedId,
    pub member: MemberId,
    pub spec: FeedSpec,
    /// Paused by its member, or after too many failures in a row.
    pub paused: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_poll_at: Timestamp,
    pub last_polled_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub items_published: u64,
    pub created_at: Timestamp,
}

/// A feed entry a provider has seen: its identity, its content hash, and the item it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEntry {
    pub key: String,
    pub hash: String,
    pub item_id: Option<ItemId>,
}

/// What one poll of a feed came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollRecord {
    /// The feed was read (or had not changed: 304): entries seen, items published, validators kept.
    Fetched {
        etag: Option<String>,
        last_modified: Option<String>,
        entries: Vec<SeenEntry>,
        published: u32,
        next_poll_at: Timestamp,
    },
    /// The poll failed; after `pause_after` failures in a row the provider is paused.
    Failed { error: String, next_poll_at: Timestamp, pause_after: u32 },
}

/// A stored user. Stored: changing it needs a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub member: MemberId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    /// The UI language the user chose, if any.
    pub locale: Option<String>,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    /// An operator of the exchange, who may also add member agencies.
    pub operator: bool,
    /// The time zone the user chose (an IANA name such as `Asia/Almaty`); none: the browser's.
    pub time_zone: Option<String>,
}

/// A signed-in session: its user and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// Where a webhook subscription pushes, and the secret it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// What a member asks to receive: a saved query, the events wanted, the format, and where to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    pub name: String,
    /// (parameter, value) pairs of `GET /v1/search`, in order.
    pub query: Vec<(String, String)>,
    pub events: Vec<EventKind>,
    /// The format items are delivered in ("ninjs" or "newsml").
    pub format: String,
    pub webhook: Option<Webhook>,
}

/// A stored subscription. Its feed token is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub member: MemberId,
    pub spec: SubscriptionSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An item event from the outbox, with the version it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The outbox position; events are fanned out in this order.
    pub id: i64,
    pub kind: EventKind,
    /// When the event takes effect for others (after an embargo, its end).
    pub due_at: Timestamp,
    pub version: StoredVersion,
    pub subjects: Vec<String>,
    pub embargoed_until: Option<Timestamp>,
}

/// An outbox event, without its version (for readers that only pass it on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub seq: i64,
    pub kind: EventKind,
}

/// A delivery the fan-out decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub subscription: SubscriptionId,
    pub event_id: i64,
    pub seq: i64,
    pub item_id: ItemId,
    pub kind: EventKind,
    /// The earliest instant the subscriber may see it (embargo and agreement delay applied).
    pub due_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be pushed (or retried).
    Pending,
    Delivered,
    /// Every retry failed.
    Dead,
    /// Not sent: by the time it was due the subscriber could no longer see the item (killed, agreement
    /// revoked).
    Withdrawn,
    /// The subscription has no webhook: the delivery is only in its changes feed.
    Feed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Withdrawn => "withdrawn",
            DeliveryState::Feed => "feed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
            DeliveryState::Withdrawn,
            DeliveryState::Feed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A pending delivery whose time has come, with what is needed to push it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub n: i64,
    pub id: DeliveryId,
    pub subscription: SubscriptionId,
    pub member: MemberId,
    pub kind: EventKind,
    pub seq: i64,
    pub item_id: ItemId,
    /// Attempts made so far.
    pub attempts: u32,
    pub webhook: Webhook,
    pub listed_at: Timestamp,
    /// The subscription's delivery format ("ninjs" or "newsml").
    pub format: String,
}

/// What became of one attempt, and what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(Timestamp),
    Dead,
    Withdrawn,
}

/// One attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub n: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub latency_micros: i64,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: u32,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub latency_micros: i64,
    pub error: Option<String>,
}

/// A delivery, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub n: i64,
    pub id: DeliveryId,
    pub kind: EventKind,
    pub item_id: ItemId,
    pub seq: i64,
    pub state: DeliveryState,
    pub listed_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub attempts: Vec<Attempt>,
}

/// One entry of a subscription's changes feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub cursor: Cursor,
    pub delivery: DeliveryId,
    pub kind: EventKind,
    pub item_id: ItemId,
    pub seq: i64,
}

/// A page of a changes feed, oldest first; `next` is where the next poll continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesPage {
    pub changes: Vec<Change>,
    pub next: Cursor,
}

/// What a viewer gets when asking for one version of an item.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionRead {
    Visible(StoredVersion, Right),
    /// The item was killed; this is its kill notice (whatever version was asked for).
    Killed(StoredVersion),
    NotFound,
}

/// A glossary entry (stored in `glossary_terms`): a term in the source language and how it must
/// read in the target language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlossaryTerm {
    pub source: String,
    pub target: String,
}

/// A member's glossary for one language pair (stored in `glossary_terms`, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glossary {
    pub member: MemberId,
    pub source_language: String,
    pub target_language: String,
    pub terms: Vec<GlossaryTerm>,
    pub updated_at: Timestamp,
}

/// The part of an item a translation job translates and a stored translation holds (stored in
/// `translation_jobs.part` and `translations.part`, as `head` or `body`): every version gets a job for
/// each, and the short head is claimed before any body, so headlines never wait behind long bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TranslationPart {
    /// Headlines and descriptions.
    Head,
    /// Bodies.
    Body,
}

impl TranslationPart {
    pub const ALL: [TranslationPart; 2] = [TranslationPart::Head, TranslationPart::Body];

    pub fn as_str(self) -> &'static str {
        match self {
            TranslationPart::Head => "head",
            TranslationPart::Body => "body",
        }
    }

    pub fn parse(text: &str) -> Option<TranslationPart> {
        TranslationPart::ALL.into_iter().find(|part| part.as_str() == text)
    }

    /// The ninjs 3.1 text fields of the part.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            TranslationPart::Head => &["headlines", "descriptions"],
            TranslationPart::Body => &["bodies"],
        }
    }

    /// The part a ninjs text field belongs to.
    pub fn of_field(field: &str) -> Option<TranslationPart> {
        TranslationPart::ALL.into_iter().find(|part| part.fields().contains(&field))
    }
}

/// A translation job claimed by a worker (stored in `translation_jobs`), with the version to translate.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationJob {
    pub id: i64,
    pub part: TranslationPart,
    pub language: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub version: StoredVersion,
    /// Whether the version is still its item's current one (a superseded version need not be translated).
    pub current: bool,
    /// Whether a reader is waiting for it ([`TranslationStore::prioritize_translation`]): translated
    /// even when superseded (a delayed reader may still see that version).
    pub wanted: bool,
}

/// How many jobs of each part a claim takes at most: a claim takes body jobs only when it has taken
/// every due head job, so the worker translates the heads of a batch before its bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    pub heads: u32,
    pub bodies: u32,
}

impl ClaimLimits {
    /// Up to `n` jobs of each part.
    pub fn each(n: u32) -> ClaimLimits {
        ClaimLimits { heads: n, bodies: n }
    }
}

/// A machine translation of an item version (stored in `translations`, one row per part). `variant`
/// tells glossary renderings apart: empty for none, else a digest of the glossary terms applied.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTranslation {
    pub seq: i64,
    pub language: String,
    pub variant: String,
    pub source_language: String,
    pub model: String,
    /// The translated text fields (`headlines`, `descriptions`, `bodies`), as ninjs 3.1 has them.
    pub fields: Map<String, Value>,
    pub created_at: Timestamp,
    /// The parts it holds, in order. Written: each part's fields are stored as a row of their own (a
    /// head stored later never loses the body, nor the other way round; a field of a part not listed is
    /// refused). Read: the parts stored so far, merged into one translation.
    pub parts: Vec<TranslationPart>,
}

impl StoredTranslation {
    /// Whether it holds the translation of `part`.
    pub fn has(&self, part: TranslationPart) -> bool {
        self.parts.contains(&part)
    }
}

/// How a translation job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done: the translations made (none when there was nothing to translate).
    Done(Vec<StoredTranslation>),
    /// Failed this time; tried again at `retry_at`.
    Retry { error: String, retry_at: Timestamp },
    /// Failed for good.
    Failed { error: String },
}

/// The state of a translation job (stored in `translation_jobs.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// Where one translation job stands, as a reader waiting for it may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    pub state: JobState,
    /// A reader is waiting for it.
    pub wanted: bool,
    /// Running: when it was claimed.
    pub started_at: Option<Timestamp>,
    /// Queued and due: the due jobs a claim takes before it. Jobs of other members' items under
    /// embargo are left out (the count must not tell of them).
    pub ahead: Option<JobsAhead>,
}

/// Due jobs before one in the queue, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobsAhead {
    pub heads: u64,
    pub bodies: u64,
}

/// The jobs of one version and language, by part (`None`: no such job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslationProgress {
    pub head: Option<JobProgress>,
    pub body: Option<JobProgress>,
}

/// How many translation jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
}

impl QueueCounts {
    fn add(self, other: QueueCounts) -> QueueCounts {
        QueueCounts {
            queued: self.queued + other.queued,
            running: self.running + other.running,
            done: self.done + other.done,
            failed: self.failed + other.failed,
        }
    }
}

/// How many translation jobs of each part are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartCounts {
    pub head: QueueCounts,
    pub body: QueueCounts,
}

impl PartCounts {
    /// Both parts together.
    pub fn total(&self) -> QueueCounts {
        self.head.add(self.body)
    }
}

/// Items and what background work derives from them: publishing, reading under the visibility rule, the scan of current versions, set-aside records and release instants.
pub trait ItemStore: Send + Sync {
    fn publish(&self, version: NewVersion) -> Result<PublishOutcome>;
    /// Publishes several versions in order, all or none: one failure leaves nothing written.
    fn publish_all(&self, versions: Vec<NewVersion>) -> Result<Vec<PublishOutcome>>;
    fn item(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<ItemRead>;
    /// All versions the viewer may see, oldest first; `None` when the item is not visible at all.
    fn versions(&self, viewer: &MemberId, id: &ItemId, now: Timestamp) -> Result<Option<Vec<StoredVersion>>>;
    fn list(&self, viewer: &MemberId, query: &ListQuery, now: Timestamp) -> Result<ListPage>;
    /// One version of an item as `viewer` may see it: the version if visible, the kill notice if the item
    /// was killed since, or nothing.
    fn version_for(&self, viewer: &MemberId, id: &ItemId, seq: i64, now: Timestamp) -> Result<VersionRead>;
    /// The earliest instant after `after` at which a current version becomes visible to more members
    /// without a write: an embargo ends, or an agreement's delay passes for one of its grantor's items.
    fn next_release(&self, after: Timestamp) -> Result<Option<Timestamp>>;
    /// For derived data (the search index), not for readers: the current versions of the items whose
    /// current version has a sequence number above `after`, in sequence order, at most `limit` rows
    /// scanned. A row that cannot be read is set aside (work `read`) and skipped, never an error for
    /// the whole scan.
    fn current_versions_after(&self, after: i64, limit: u32) -> Result<VersionsAfter>;
    /// The current versions of these items' current sequence numbers that were marked for retry by
    /// an operator for `work` (each then read again, or set aside again).
    fn set_aside_to_retry(&self, work: &str) -> Result<Vec<StoredVersion>>;
    /// Sets a version aside for `work` with the error (again, if it was marked for retry).
    fn set_aside(&self, work: &str, seq: i64, item_id: &str, owner: Option<&MemberId>, error: &str) -> Result<()>;
    /// Forgets a set-aside record (the work succeeded on a retry).
    fn clear_set_aside(&self, work: &str, seq: i64) -> Result<()>;
    /// What is set aside: every member's (`None`, for the operator) or one owner's.
    fn set_aside_list(&self, owner: Option<&MemberId>) -> Result<Vec<SetAside>>;
    /// Marks set-aside records for retry (`seq` None: every record of the work); how many.
    fn retry_set_aside(&self, work: &str, seq: Option<i64>) -> Result<usize>;
}

/// Members, their API keys and the sharing agreements between them.
pub trait AccessStore: Send + Sync {
    fn add_member(&self, member: NewMember) -> Result<Member>;
    fn members(&self) -> Result<Vec<Member>>;
    fn member(&self, id: &MemberId) -> Result<Option<Member>>;
    /// Creates a key and returns it: the only time the secret is seen.
    fn create_key(&self, member: &MemberId, role: Role, label: Option<String>) -> Result<(KeyInfo, ApiKey)>;
    fn keys(&self, member: &MemberId) -> Result<Vec<KeyInfo>>;
    /// Revokes one of the member's keys; false when the member has no such live key.
    fn revoke_key(&self, member: &MemberId, key: &KeyId) -> Result<bool>;
    /// The principal of a live key, if any.
    fn authenticate(&self, key: &KeyHash) -> Result<Option<Principal>>;
    fn add_agreement(&self, agreement: NewAgreement) -> Result<Agreement>;
    /// Live agreements the member granted or was granted (directly or as one of everyone).
    fn agreements_of(&self, member: &MemberId) -> Result<Vec<Agreement>>;
    fn revoke_agreement(&self, grantor: &MemberId, id: &AgreementId) -> Result<bool>;
    /// Every live agreement, for the fan-out.
    fn live_agreements(&self) -> Result<Vec<Agreement>>;
}

/// People who sign in to the newsroom, their sessions, and failed sign-ins.
pub trait UserStore: Send + Sync {
    /// Creates a user; an email already taken is a `Conflict`.
    fn add_user(&self, user: NewUser) -> Result<User>;
    fn users(&self, member: &MemberId) -> Result<Vec<User>>;
    fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Changes a user's password hash, UI language or disabled state; false when the member has no
    /// such user.
    fn update_user(
        &self,
        member: &MemberId,
        id: &UserId,
        password_hash: Option<String>,
        locale: Option<Option<String>>,
        disabled: Option<bool>,
    ) -> Result<bool>;
    /// Sets or clears a user's time zone (an IANA name, checked by the caller); false when the member
    /// has no such user.
    fn set_user_time_zone(&self, member: &MemberId, id: &UserId, time_zone: Option<String>) -> Result<bool>;
    /// Starts a session; `token_hash` is the SHA-256 of the session cookie.
    fn create_session(&self, user: &UserId, token_hash: [u8; 32], csrf: &str, expires_at: Timestamp) -> Result<()>;
    /// The live session of a cookie: not expired, its user not disabled.
    fn session(&self, token_hash: [u8; 32], now: Timestamp) -> Result<Option<Session>>;
    fn end_session(&self, token_hash: [u8; 32]) -> Result<()>;
    /// The failed sign-ins counted under each of `keys` whose last failure is at or after `since`
    /// (keys without any are absent).
    fn login_failures(&self, keys: &[String], since: Timestamp) -> Result<Vec<LoginFailures>>;
    /// Counts one failed sign-in under each of `keys` at `at`; counts whose last failure is before
    /// `forget_before` start again (and are pruned).
    fn record_login_failure(&self, keys: Vec<String>, at: Timestamp, forget_before: Timestamp) -> Result<()>;
    /// Forgets the failures under `keys` (after a successful sign-in).
    fn clear_login_failures(&self, keys: Vec<String>) -> Result<()>;
}

/// Members' named searches.
pub trait SavedSearchStore: Send + Sync {
    /// Saves a named search; a name is unique per member (`Conflict` otherwise).
    fn add_saved_search(&self, member: &MemberId, name: &str, query: Vec<(String, String)>) -> Result<SavedSearch>;
    fn saved_searches(&self, member: &MemberId) -> Result<Vec<SavedSearch>>;
    fn saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<Option<SavedSearch>>;
    fn delete_saved_search(&self, member: &MemberId, id: &SavedSearchId) -> Result<bool>;
}

/// Subscriptions, the outbox, deliveries claimed by lease, their attempts and the changes feeds.
pub trait DistributionStore: Send + Sync {
    /// Creates a subscription; `feed_token_hash` is the SHA-256 of its feed token. Names are unique per
    /// member (`Conflict`).
    fn add_subscription(
        &self,
        member: &MemberId,
        spec: SubscriptionSpec,
        feed_token_hash: [u8; 32],
    ) -> Result<Subscription>;
    fn subscriptions(&self, member: &MemberId) -> Result<Vec<Subscription>>;
    fn subscription(&self, member: &MemberId, id: &SubscriptionId) -> Result<Option<Subscription>>;
    /// Replaces what a subscription asks for; its id, feed token and deliveries stay.
    fn update_subscription(&self, member: &MemberId, id: &SubscriptionId, spec: SubscriptionSpec) -> Result<bool>;
    /// Deletes a subscription with its deliveries.
    fn delete_subscription(&self, member: &MemberId, id: &SubscriptionId) -> Result<bool>;
    /// Replaces a subscription's feed token.
    fn set_feed_token(&self, member: &MemberId, id: &SubscriptionId, feed_token_hash: [u8; 32]) -> Result<bool>;
    /// The subscription a feed token opens.
    fn subscription_by_feed_token(&self, feed_token_hash: [u8; 32]) -> Result<Option<Subscription>>;
    /// Every subscription of every member, for the fan-out.
    fn all_subscriptions(&self) -> Result<Vec<Subscription>>;
    /// How far the fan-out has gone through the outbox.
    fn outbox_position(&self) -> Result<i64>;
    /// The id of the newest outbox event a reader can see (0 when there is none): without a
    /// subscription the fan-out moves its position here without reading any version.
    fn outbox_head(&self) -> Result<i64>;
    /// Outbox events after `after`, in order, at most `limit`.
    fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>>;
    /// Registers a reader of the outbox besides the fan-out (cluster mode's stream relay), unless it is
    /// registered already, starting where the fan-out stands; its position. From then on the outbox
    /// keeps every event until every reader has passed it, as long as the reader's lease (named like
    /// it) is held or lapsed less than [`OUTBOX_READER_GRACE_MICROS`] ago: a reader that stopped for
    /// good does not make the outbox grow for ever (when it comes back, it goes on from the events still
    /// there).
    fn open_outbox_reader(&self, name: &str) -> Result<i64>;
    /// Moves a registered reader's position to `through` (never back) if `holder` holds the named
    /// lease `name` (else `Conflict` `lease_lost`, nothing written). The fan-out alone deletes events
    /// (those every reader has passed, at its next batch): one deleter, no deadlock between them.
    fn record_outbox_reader(&self, name: &str, holder: &str, through: i64) -> Result<()>;
    /// Outbox events after `after`, in order, at most `limit`: what they are about, not the versions.
    fn outbox_entries_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEntry>>;
    /// The (subscription, item) pairs among these items that already have a delivery.
    fn delivered_items(&self, items: &[ItemId]) -> Result<Vec<(SubscriptionId, ItemId)>>;
    /// Stores the deliveries of a fan-out and moves the outbox position to `through`, atomically, if
    /// `holder` holds the [`FANOUT_LEASE`] (else `Conflict` `lease_lost`, nothing written). A delivery
    /// for a (subscription, event) pair that exists already is skipped.
    fn record_fanout(&self, holder: &str, through: i64, deliveries: Vec<NewDelivery>) -> Result<usize>;
    /// Claims up to `limit` pending webhook deliveries due at `now` for `holder` until `lease_until`,
    /// oldest first: those no one holds, or whose lease has ended (a holder that died). A subscription
    /// never has more than `per_subscription` deliveries held at once, whoever holds them.
    /// Contract: two holders never hold one delivery at the same instant.
    fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        per_subscription: u32,
    ) -> Result<Vec<DueDelivery>>;
    /// Hands back every delivery `holder` holds unfinished (at shutdown); how many.
    fn release_deliveries(&self, holder: &str) -> Result<usize>;
    /// Pending webhook deliveries due at `now`, oldest first, leaving out the given subscriptions and
    /// deliveries; a read that claims nothing (the pusher claims with [`DistributionStore::claim_deliveries`]).
    fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        skip_subscriptions: &[SubscriptionId],
        skip_deliveries: &[i64],
    ) -> Result<Vec<DueDelivery>>;
    /// When the next pending delivery falls due, if any is pending.
    fn next_due(&self) -> Result<Option<Timestamp>>;
    /// Records attempts and their outcomes in one transaction, ending their leases; an attempt on a
    /// delivery another holder has claimed since (`holder`'s lease ran out) is not recorded. How many
    /// were.
    fn record_attempts(&self, holder: &str, attempts: Vec<AttemptRecord>) -> Result<usize>;
    /// A subscription's deliveries that have been listed by `now`, newest first, before `before` (n).
    fn deliveries(
        &self,
        subscription: &SubscriptionId,
        now: Timestamp,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>>;
    /// A subscription's changes feed: deliveries listed after `since` (the newest edge when `None`), up
    /// to the writer's horizon, oldest first.
    fn changes(
        &self,
        subscription: &SubscriptionId,
        since: Option<Cursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<ChangesPage>;
    /// A subscription's latest changes, newest first (for its Atom feed).
    fn recent_changes(&self, subscription: &SubscriptionId, limit: u32, now: Timestamp) -> Result<Vec<Change>>;
}

/// Feed ingest providers, claimed by lease for polling, and the entries they have seen.
pub trait FeedStore: Send + Sync {
    /// Registers a feed provider, due at once; a URL the member already polls is a `Conflict`.
    fn add_feed(&self, member: &MemberId, spec: FeedSpec) -> Result<FeedProvider>;
    /// A member's feed providers, oldest first.
    fn feeds(&self, member: &MemberId) -> Result<Vec<FeedProvider>>;
    fn feed(&self, member: &MemberId, id: &FeedId) -> Result<Option<FeedProvider>>;
    /// Changes a provider's spec (a new URL forgets the validators); `NotFound` if it is not the member's.
    fn update_feed(&self, member: &MemberId, id: &FeedId, spec: FeedSpec) -> Result<FeedProvider>;
    fn delete_feed(&self, member: &MemberId, id: &FeedId) -> Result<bool>;
    /// Pauses or resumes a provider; resuming clears the failure count and makes it due at `now`.
    fn set_feed_paused(&self, member: &MemberId, id: &FeedId, paused: bool, now: Timestamp) -> Result<FeedProvider>;
    /// Claims up to `limit` active providers due at `now` for `holder` until `lease_until`, most
    /// overdue first: those no one is polling, or whose poller's lease has ended.
    /// Contract: two holders never hold one provider at the same instant.
    fn claim_feeds(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<FeedProvider>>;
    /// Hands back every provider `holder` holds (at shutdown); how many.
    fn release_feeds(&self, holder: &str) -> Result<usize>;
    /// When the next active provider falls due (a provider being polled: when its lease ends).
    fn next_feed_due(&self) -> Result<Option<Timestamp>>;
    /// The entries a provider has seen whose key is in `keys` or whose hash is in `hashes`.
    fn seen_entries(&self, id: &FeedId, keys: &[String], hashes: &[String]) -> Result<Vec<SeenEntry>>;
    /// Records a poll's outcome and health, ending `holder`'s lease on it; `Conflict` `lease_lost` (and
    /// nothing recorded) when another holder has claimed the provider since.
    fn record_feed_poll(&self, holder: &str, id: &FeedId, at: Timestamp, record: PollRecord) -> Result<()>;
}

/// Coordination between engine instances sharing the store: named leases and configuration generations.
pub trait LeaseStore: Send + Sync {
    /// Takes or extends the named lease for `holder` until `until`: granted when no one holds it, its
    /// lease has ended at `now`, or `holder` holds it already. Whether it was granted.
    /// Contract: at any instant at most one holder holds a named lease.
    fn acquire_lease(&self, name: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<bool>;
    /// Gives a named lease up, if `holder` holds it.
    fn release_lease(&self, name: &str, holder: &str) -> Result<bool>;
    /// Who holds a named lease, and until when (possibly in the past).
    fn lease(&self, name: &str) -> Result<Option<(String, Timestamp)>>;
    /// The generation of a kind of configuration ([`SUBSCRIPTIONS_GENERATION`]): it grows with every
    /// change, whoever makes it, so that an engine caching it knows when to read it again.
    fn generation(&self, name: &str) -> Result<i64>;
}

/// The lease the story engine holds while it places items into stories.
pub const STORY_LEASE: &str = "stories";

/// What one round of the story engine decided, recorded at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoryRound {
    /// Stories it started, with when.
    pub created: Vec<(StoryId, Timestamp)>,
    /// Items it placed (an item placed before leaves its story for the new one).
    pub placed: Vec<Placement>,
    /// Items that left their story (killed).
    pub removed: Vec<ItemId>,
    /// Stories merged: the first one's items move to the second, which it redirects to from then on.
    pub merged: Vec<(StoryId, StoryId)>,
    /// Items already placed whose centrality changed.
    pub centrality: Vec<(ItemId, f32)>,
}

/// An item placed in a story.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub item: ItemId,
    pub story: StoryId,
    /// The version that was placed.
    pub seq: i64,
    /// The item's time on the wire (`versionCreated`).
    pub at: Timestamp,
    /// How close it is to its story's centre (the title is the most central item's headline).
    pub centrality: f32,
}

/// One item of a story, as stored (whether a reader may see it is the item's visibility).
#[derive(Debug, Clone, PartialEq)]
pub struct StoryMember {
    pub item: ItemId,
    /// The version that was placed.
    pub seq: i64,
    pub at: Timestamp,
    pub centrality: f32,
}

/// A story as stored: its id, when it started, its items.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStory {
    pub id: StoryId,
    pub created_at: Timestamp,
    pub members: Vec<StoryMember>,
}

/// What a story id names.
#[derive(Debug, Clone, PartialEq)]
pub enum StoryLookup {
    Found(StoredStory),
    /// Merged into another story (through every merge since): its id redirects there.
    Merged(StoryId),
    NotFound,
}

/// Stories: what the story engine decided (it alone writes, holding [`STORY_LEASE`]) and its reads.
/// Visibility is not here: a story is shown to a reader only through the items the reader may see,
/// read with the visibility rule ([`ListQuery::items`]).
pub trait StoryStore: Send + Sync {
    /// How far the story engine has taken the store's versions (a sequence number; 0 at first).
    fn story_position(&self) -> Result<i64>;
    /// Records a round of the story engine and moves its position to `through` (never back), at once,
    /// if `holder` holds [`STORY_LEASE`] (else `Conflict` `lease_lost`, nothing written). Merges are
    /// applied after the placements: a merged story's items, and the stories that redirected to it,
    /// go to the story it was merged into.
    fn record_stories(&self, holder: &str, through: i64, round: StoryRound) -> Result<()>;
    /// A story's items, newest first, or where it was merged to.
    fn story(&self, id: &StoryId) -> Result<StoryLookup>;
    /// The stories these items are in (those placed), in no particular order.
    fn stories_of(&self, items: &[ItemId]) -> Result<Vec<(ItemId, StoryId)>>;
    /// Stories with an item at or after `since`, with their items: the story engine's pool when it
    /// starts. At most `limit` stories, those with the newest items first.
    fn stories_active_since(&self, since: Timestamp, limit: u32) -> Result<Vec<StoredStory>>;
}

/// Machine translation: read languages, glossaries, the job queue claimed by lease, translations and the segment cache.
pub trait TranslationStore: Send + Sync {
    // Machine translation.
    /// The languages a member wants to read (items in other languages are translated into them).
    fn read_languages(&self, member: &MemberId) -> Result<Vec<String>>;
    /// Replaces the languages a member wants to read.
    fn set_read_languages(&self, member: &MemberId, languages: Vec<String>) -> Result<()>;
    /// A member's glossaries, one per language pair.
    fn glossaries(&self, member: &MemberId) -> Result<Vec<Glossary>>;
    /// Replaces a member's glossary for one pair; no terms deletes it.
    fn set_glossary(&self, member: &MemberId, source: &str, target: &str, terms: Vec<GlossaryTerm>)
    -> Result<Glossary>;
    /// For translation workers: every member's glossaries into `target`.
    fn glossaries_into(&self, target: &str) -> Result<Vec<Glossary>>;
    /// For translation workers: claims jobs due at `now` (queued, or running with an expired lease
    /// after a crash) for `holder`, leasing each until `lease_until`: up to `limits.heads` head jobs,
    /// then, only when no due head job is left, up to `limits.bodies` body jobs. Both parts are taken
    /// in one order: jobs a reader waits for ([`TranslationStore::prioritize_translation`]) first, then
    /// by the item's urgency (1 first, none last), then oldest first. Heads come before bodies in the
    /// answer. Contract: two holders never hold one job at the same instant.
    fn claim_translation_jobs(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limits: ClaimLimits,
    ) -> Result<Vec<TranslationJob>>;
    /// Records how a claimed job ended; its translations are stored in the same transaction.
    /// `Conflict` `lease_lost` (nothing stored) when another holder has claimed the job since.
    fn finish_translation_job(&self, holder: &str, id: i64, outcome: JobOutcome) -> Result<()>;
    /// Queues again every job `holder` holds unfinished (at shutdown); how many.
    fn release_translation_jobs(&self, holder: &str) -> Result<usize>;
    /// Queues the jobs (head and body) for a version and language unless they exist (e.g. after a
    /// member adds a language); whether any was made.
    fn enqueue_translation(&self, seq: i64, language: &str) -> Result<bool>;
    /// A reader waits for the body of version `seq` in `language`: its body job is marked wanted, so
    /// that it is claimed before every body job no one waits for. A done job is queued again (the
    /// reader's rendering is missing, e.g. its glossary changed since); a failed one stays failed.
    /// Whether a body job is now queued or running.
    fn prioritize_translation(&self, seq: i64, language: &str) -> Result<bool>;
    /// Where the jobs of version `seq` in `language` stand, for `viewer` (a reader who passed the
    /// visibility rule for that version): their states and, when queued, the due jobs before them,
    /// not counting other members' items under embargo.
    fn translation_progress(
        &self,
        viewer: &MemberId,
        seq: i64,
        language: &str,
        now: Timestamp,
    ) -> Result<TranslationProgress>;
    /// How many jobs of `owner`'s items are in each state, by part (never another member's: their
    /// counts would tell of embargoed items).
    fn translation_queue(&self, owner: &MemberId) -> Result<PartCounts>;
    /// Stores a translation made outside a job (on demand), replacing the parts it holds.
    fn put_translation(&self, translation: StoredTranslation) -> Result<()>;
    /// For readers who passed the visibility rule, and for the index: the translations of versions,
    /// one per version, language and variant, with every part stored so far merged.
    fn translations(&self, seqs: &[i64]) -> Result<Vec<StoredTranslation>>;
    /// Cached translated segments by key; absent keys are missing from the answer.
    fn cached_segments(&self, keys: &[[u8; 32]]) -> Result<Vec<([u8; 32], String)>>;
    /// Adds translated segments to the cache.
    fn cache_segments(&self, entries: Vec<([u8; 32], String)>) -> Result<()>;
}

/// The storage backend: every part a backend implements, and how the store is doing. Methods block;
/// async callers run them on a blocking pool. Every backend passes the conformance suite
/// (`karavan-store-suite`), which checks each contract stated in these traits' docs. Callers bring the
/// parts into scope with `use karavan_store::prelude::*`.
///
/// Ordering contract, for every backend: sequence numbers (`seq`) grow with every stored version and
/// are never reused; a list's `horizon` and a changes feed's `next` never pass a write that is not yet
/// visible to readers, so cursors neither skip nor repeat; a publish is acknowledged only once durable.
pub trait Store:
    ItemStore
    + AccessStore
    + UserStore
    + SavedSearchStore
    + DistributionStore
    + FeedStore
    + LeaseStore
    + TranslationStore
    + StoryStore
    + Send
    + Sync
    + 'static
{
    /// A name for this store, the same for every instance that opens it and kept for its life: what the
    /// nodes of one cluster recognise each other by (their event stream is named after it).
    fn identity(&self) -> Result<String>;
    /// How the store is doing. While writes are failing for lack of space, this checks (cheaply,
    /// writing a small file beside the data) whether space has come back, and says so.
    fn health(&self) -> StoreHealth;
    /// Exchange-wide counts for the operator's metrics (`GET /metrics`).
    fn stats(&self) -> Result<StoreStats>;
    /// The cheap part of [`Store::stats`], for `/healthz`: the head sequence and the outbox events
    /// the fan-out has not reached.
    fn head_positions(&self) -> Result<(i64, u64)>;
    /// The work waiting for the engines that take it by lease, for `/healthz`: deliveries pending
    /// (due now or retrying later) and translation jobs queued, each counted up to
    /// [`QUEUE_DEPTH_CAP`] so that the check stays cheap however long a queue grows.
    fn queue_depths(&self) -> Result<QueueDepths>;
}

/// The most [`Store::queue_depths`] counts in one queue (a larger queue reads as this).
pub const QUEUE_DEPTH_CAP: u64 = 100_000;

/// Work waiting in the store's queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub deliveries_pending: u64,
    pub translation_jobs_queued: u64,
}

/// The store's traits, to bring their methods into scope.
pub mod prelude {
    pub use crate::{
        AccessStore, DistributionStore, FeedStore, ItemStore, LeaseStore, SavedSearchStore, Store, StoryStore,
        TranslationStore, UserStore,
    };
}
