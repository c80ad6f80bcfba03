//! Distribution: the fan-out of item events to subscriptions, and the pusher that delivers them to
//! webhooks with retries.
//!
//! The store's outbox holds one event per stored version, written in the publish's own transaction.
//! The fan-out reads it in order, tests each batch of events against every subscription's query at
//! once (`SearchIndex::percolate`, the same analysis and semantics as a search), applies agreements and
//! embargo (a delivery falls due when the subscriber may first see the version), and writes the
//! deliveries in one transaction with its new outbox position. The pusher sends due deliveries with a
//! limit per subscription and overall, so a slow receiver only ever holds its own slots; a recorder
//! writes the attempts in batches.
//!
//! Architecture invariant: nothing here runs on the publish path; a publish only writes its outbox row
//! and wakes the fan-out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use karavan_domain::{EventKind, ItemAccess, ItemId, MemberId, SubscriptionId, Timestamp, visible_from};
use karavan_search::{Matcher, SearchIndex};
use karavan_store::{
    AttemptOutcome, AttemptRecord, DueDelivery, NewDelivery, OutboxEvent, Store, StoreError, StoredVersion,
    Subscription, VersionRead,
};
use tokio::sync::{Notify, mpsc, watch};

use crate::outbound::{OutboundClient, OutboundConfig, signature_header};
use crate::params::Params;
use crate::{now, wire};

/// Header names of a webhook delivery.
pub const SIGNATURE_HEADER: &str = "karavan-signature";
pub const DELIVERY_HEADER: &str = "karavan-delivery";
pub const EVENT_HEADER: &str = "karavan-event";
pub const SUBSCRIPTION_HEADER: &str = "karavan-subscription";
pub const ATTEMPT_HEADER: &str = "karavan-attempt";

/// How deliveries are pushed.
#[derive(Debug, Clone)]
pub struct DistributionConfig {
    /// The delay before the first retry; each retry doubles it (with jitter), up to `retry_max_delay`.
    pub retry_base: Duration,
    pub retry_max_delay: Duration,
    /// Attempts before a delivery is declared dead.
    pub max_attempts: u32,
    /// Deliveries in flight to one subscription at most.
    pub per_subscription: usize,
    /// Deliveries in flight overall at most.
    pub max_in_flight: usize,
    pub outbound: OutboundConfig,
    /// Feed providers: failures in a row before one is paused, the largest feed read, the shortest
    /// interval between polls a member may ask for, and polls in flight at most.
    pub feed_pause_after: u32,
    pub feed_max_bytes: usize,
    pub feed_min_interval: Duration,
    pub feed_concurrency: usize,
}

impl Default for DistributionConfig {
    fn default() -> DistributionConfig {
        // 10 s, 20 s, 40 s … capped at an hour: 15 attempts span about five to eight hours.
        DistributionConfig {
            retry_base: Duration::from_secs(10),
            retry_max_delay: Duration::from_secs(3600),
            max_attempts: 15,
            per_subscription: 4,
            max_in_flight: 512,
            outbound: OutboundConfig::default(),
            feed_pause_after: 10,
            feed_max_bytes: 8 * 1024 * 1024,
            feed_min_interval: Duration::from_secs(60),
            feed_concurrency: 4,
        }
    }
}

/// The shared state of distribution: its settings, its client, and the signals between the publish
/// path, the fan-out, the pusher and the readers that wait (long-polls, live wire).
pub struct Distribution {
    config: DistributionConfig,
    client: OutboundClient,
    /// Something was published in this process.
    published: Notify,
    /// Counts publishes, for live-wire streams waiting for news.
    wire: watch::Sender<u64>,
    /// Counts fan-outs that wrote deliveries, for changes feeds waiting for news.
    fanned: watch::Sender<u64>,
    /// Deliveries became due, or slots became free.
    pusher: Notify,
    /// Bumped when a subscription is created, changed or deleted.
    subscriptions_version: AtomicU64,
    /// A feed provider was added, resumed or asked to poll now.
    pub(crate) feeds: Notify,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Distribution {
    pub fn new(config: DistributionConfig) -> Result<Distribution, String> {
        let client = OutboundClient::new(config.outbound.clone())?;
        Ok(Distribution {
            config,
            client,
            published: Notify::new(),
            wire: watch::channel(0).0,
            fanned: watch::channel(0).0,
            pusher: Notify::new(),
            subscriptions_version: AtomicU64::new(1),
            feeds: Notify::new(),
        })
    }

    /// The one outbound HTTP client (webhooks and feeds), with its URL safety rules.
    pub fn client(&self) -> &OutboundClient {
        &self.client
    }

    pub fn config(&self) -> &DistributionConfig {
        &self.config
    }

    /// Called after every publish that stored something.
    pub fn item_published(&self) {
        self.published.notify_one();
        self.wire.send_modify(|n| *n += 1);
    }

    pub fn subscriptions_changed(&self) {
        self.subscriptions_version.fetch_add(1, Ordering::SeqCst);
        self.published.notify_one();
    }

    pub fn wire_watch(&self) -> watch::Receiver<u64> {
        self.wire.subscribe()
    }

    pub fn fanned_watch(&self) -> watch::Receiver<u64> {
        self.fanned.subscribe()
    }
}

/// Starts distribution's engines under `engines`: the fan-out, and the pusher with its recorder (one
/// engine: they share a channel and the list of deliveries in flight, which a restart makes afresh).
pub fn start(
    engines: &crate::engine::Supervisor,
    store: Arc<dyn Store>,
    search: Arc<SearchIndex>,
    distribution: Arc<Distribution>,
    models: Arc<crate::language::LanguageModels>,
) {
    let (store_, distribution_) = (Arc::clone(&store), Arc::clone(&distribution));
    engines.start(
        "fanout",
        crate::engine::factory(move |_| {
            run_fanout(Arc::clone(&store_), Arc::clone(&search), Arc::clone(&distribution_), Arc::clone(&models))
        }),
    );
    engines.start(
        "pusher",
        crate::engine::factory(move |_| {
            let (records, recorded) = mpsc::unbounded_channel();
            let in_flight = Arc::new(Mutex::new(InFlight::default()));
            let recorder =
                run_recorder(Arc::clone(&store), Arc::clone(&distribution), recorded, Arc::clone(&in_flight));
            let pusher = run_pusher(Arc::clone(&store), Arc::clone(&distribution), records, in_flight);
            async move {
                tokio::join!(recorder, pusher);
            }
        }),
    );
}

// ---------------------------------------------------------------------------------------------------
// Fan-out

/// What the fan-out keeps between batches.
#[derive(Default)]
struct FanoutCache {
    subscriptions_version: u64,
    subscriptions: Vec<Subscription>,
    /// Compiled queries by subscription, with the `updated_at` they were compiled for; `None` when the
    /// stored query no longer compiles (logged, matches nothing).
    matchers: HashMap<SubscriptionId, (Timestamp, Option<Matcher>)>,
    countries: HashMap<MemberId, Option<String>>,
}

/// The most outbox events fanned out in one transaction.
const FANOUT_BATCH: u32 = 500;

async fn run_fanout(
    store: Arc<dyn Store>,
    search: Arc<SearchIndex>,
    distribution: Arc<Distribution>,
    models: Arc<crate::language::LanguageModels>,
) {
    let mut position: Option<i64> = None;
    let mut cache = Some(FanoutCache::default());
    loop {
        let (store_, search_, distribution_) = (Arc::clone(&store), Arc::clone(&search), Arc::clone(&distribution));
        let models_ = Arc::clone(&models);
        let mut taken = cache.take().unwrap_or_default();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = fanout_once(store_.as_ref(), &search_, &models_, &distribution_, &mut taken, position);
            (result, taken)
        })
        .await;
        let (result, returned) = match outcome {
            Ok(done) => done,
            Err(error) => {
                tracing::error!(%error, "fan-out task failed");
                (Err(StoreError::Closed), FanoutCache::default())
            }
        };
        cache = Some(returned);
        match result {
            Ok((through, events, written)) => {
                position = Some(through);
                if written > 0 {
                    distribution.fanned.send_modify(|n| *n += 1);
                    distribution.pusher.notify_one();
                }
                if events as u32 >= FANOUT_BATCH {
                    continue;
                }
            }
            Err(StoreError::Closed) => return,
            Err(error) => {
                tracing::error!(%error, "fan-out failed; retrying");
                position = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        // Wait for a publish in this process, or look again soon (the CLI may write too).
        let _ = tokio::time::timeout(Duration::from_secs(1), distribution.published.notified()).await;
    }
}

/// One fan-out batch: returns the new outbox position, the events read and the deliveries written.
fn fanout_once(
    store: &dyn Store,
    search: &SearchIndex,
    models: &crate::language::LanguageModels,
    distribution: &Distribution,
    cache: &mut FanoutCache,
    position: Option<i64>,
) -> Result<(i64, usize, usize), StoreError> {
    let position = match position {
        Some(position) => position,
        None => store.outbox_position()?,
    };
    let events = store.outbox_after(position, FANOUT_BATCH)?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok((position, 0, 0));
    };
    let version = distribution.subscriptions_version.load(Ordering::SeqCst);
    if version != cache.subscriptions_version {
        cache.subscriptions = store.all_subscriptions()?;
        cache.subscriptions_version = version;
        let live: HashSet<&SubscriptionId> = cache.subscriptions.iter().map(|s| &s.id).collect();
        cache.matchers.retain(|id, _| live.contains(id));
    }
    if cache.subscriptions.is_empty() {
        store.record_fanout(last, Vec::new())?;
        return Ok((last, events.len(), 0));
    }
    for subscription in &cache.subscriptions {
        let stale = cache.matchers.get(&subscription.id).is_none_or(|(at, _)| *at != subscription.updated_at);
        if stale {
            let matcher = compile(search, subscription);
            cache.matchers.insert(subscription.id.clone(), (subscription.updated_at, matcher));
        }
    }
    let mut docs = Vec::with_capacity(events.len());
    for event in &events {
        let owner = &event.version.owner;
        if !cache.countries.contains_key(owner) {
            let country = store.member(owner)?.map(|m| m.country.as_str().to_string());
            cache.countries.insert(owner.clone(), country);
        }
        docs.push(crate::search::index_doc(&event.version, cache.countries[owner].clone(), models, Vec::new()));
    }
    // Each subscription whose query compiled, with its matcher; percolation answers in this order.
    let compiled: Vec<(&SubscriptionId, &Matcher)> = cache
        .subscriptions
        .iter()
        .filter_map(|s| cache.matchers.get(&s.id).and_then(|(_, m)| m.as_ref()).map(|m| (&s.id, m)))
        .collect();
    let matchers: Vec<&Matcher> = compiled.iter().map(|(_, matcher)| *matcher).collect();
    let found = search.percolate(&docs, &matchers).map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    let matched: HashMap<&SubscriptionId, &[usize]> =
        compiled.iter().map(|(id, _)| *id).zip(found.iter().map(Vec::as_slice)).collect();
    // Corrections and kills also reach every subscription that received the item before.
    let followed: Vec<ItemId> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Correction | EventKind::Kill))
        .map(|e| e.version.item_id.clone())
        .collect();
    let mut received: HashMap<ItemId, HashSet<SubscriptionId>> = HashMap::new();
    for (subscription, item) in store.delivered_items(&followed)? {
        received.entry(item).or_default().insert(subscription);
    }
    let received_before = |subscription: &SubscriptionId, item: &ItemId| {
        received.get(item).is_some_and(|subscriptions| subscriptions.contains(subscription))
    };
    let agreements = store.live_agreements()?;

    let mut deliveries = Vec::new();
    for subscription in &cache.subscriptions {
        let positions = matched.get(&subscription.id).copied().unwrap_or_default();
        for (index, event) in events.iter().enumerate() {
            if !subscription.spec.events.contains(&event.kind) {
                continue;
            }
            let hit = positions.binary_search(&index).is_ok();
            let wanted = match event.kind {
                EventKind::Publish | EventKind::EmbargoRelease => hit,
                EventKind::Correction => hit || received_before(&subscription.id, &event.version.item_id),
                EventKind::Kill => received_before(&subscription.id, &event.version.item_id),
            };
            if !wanted {
                continue;
            }
            if let Some(due_at) = due_for(&subscription.member, event, &agreements) {
                deliveries.push(NewDelivery {
                    subscription: subscription.id.clone(),
                    event_id: event.id,
                    seq: event.version.seq,
                    item_id: event.version.item_id.clone(),
                    kind: event.kind,
                    due_at,
                });
            }
        }
    }
    let written = store.record_fanout(last, deliveries)?;
    Ok((last, events.len(), written))
}

/// When the subscriber's member may first see the event's version; `None` if it may not.
fn due_for(member: &MemberId, event: &OutboxEvent, agreements: &[karavan_domain::Agreement]) -> Option<Timestamp> {
    let version = &event.version;
    let access = ItemAccess {
        owner: &version.owner,
        pub_status: version.pub_status,
        committed_at: version.committed_at,
        embargoed_until: event.embargoed_until,
        subjects: &event.subjects,
    };
    visible_from(member, &access, agreements).map(|(since, _)| since)
}

/// A subscription's stored query as a matcher.
fn compile(search: &SearchIndex, subscription: &Subscription) -> Option<Matcher> {
    let mut params = Params::from_pairs(subscription.spec.query.clone());
    let compiled = crate::search::parse_search_query(&mut params)
        .map_err(|e| e.message)
        .and_then(|request| search.matcher(&request).map_err(|e| e.to_string()));
    match compiled {
        Ok(matcher) => Some(matcher),
        Err(error) => {
            tracing::error!(subscription = %subscription.id, %error, "a subscription's query does not compile");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Pusher

#[derive(Default)]
struct InFlight {
    deliveries: HashSet<i64>,
    per_subscription: HashMap<SubscriptionId, usize>,
}

impl InFlight {
    fn take(&mut self, delivery: &DueDelivery) {
        self.deliveries.insert(delivery.n);
        *self.per_subscription.entry(delivery.subscription.clone()).or_default() += 1;
    }

    fn release(&mut self, n: i64, subscription: &SubscriptionId) {
        if self.deliveries.remove(&n)
            && let Some(count) = self.per_subscription.get_mut(subscription)
        {
            *count -= 1;
            if *count == 0 {
                self.per_subscription.remove(subscription);
            }
        }
    }
}

/// An attempt's record, with what the in-flight bookkeeping needs once it is stored.
struct Finished {
    record: AttemptRecord,
    subscription: SubscriptionId,
}

async fn run_pusher(
    store: Arc<dyn Store>,
    distribution: Arc<Distribution>,
    records: mpsc::UnboundedSender<Finished>,
    in_flight: Arc<Mutex<InFlight>>,
) {
    let config = distribution.config.clone();
    loop {
        let (free, busy, flying) = {
            let Ok(state) = in_flight.lock() else { return };
            let busy: Vec<SubscriptionId> = state
                .per_subscription
                .iter()
                .filter(|(_, count)| **count >= config.per_subscription)
                .map(|(id, _)| id.clone())
                .collect();
            (
                config.max_in_flight.saturating_sub(state.deliveries.len()),
                busy,
                state.deliveries.iter().copied().collect::<Vec<i64>>(),
            )
        };
        let mut wait = Duration::from_secs(1);
        if free > 0 {
            let store_ = Arc::clone(&store);
            let limit = free.min(1000) as u32;
            let due = tokio::task::spawn_blocking(move || {
                let now = now();
                let due = store_.due_deliveries(now, limit, &busy, &flying)?;
                let next = if due.is_empty() { store_.next_due()? } else { None };
                Ok::<_, StoreError>((due, next, now))
            })
            .await;
            match due {
                Ok(Ok((due, next, now))) => {
                    // Deliveries of one version to one member share one visibility check and one body.
                    let mut groups: HashMap<(MemberId, i64, EventKind), Vec<DueDelivery>> = HashMap::new();
                    if let Ok(mut state) = in_flight.lock() {
                        for delivery in due {
                            let count = state.per_subscription.get(&delivery.subscription).copied().unwrap_or(0);
                            if count >= config.per_subscription {
                                continue;
                            }
                            state.take(&delivery);
                            groups
                                .entry((delivery.member.clone(), delivery.seq, delivery.kind))
                                .or_default()
                                .push(delivery);
                        }
                    }
                    let started = !groups.is_empty();
                    for (_, group) in groups {
                        tokio::spawn(push_group(Arc::clone(&store), Arc::clone(&distribution), group, records.clone()));
                    }
                    if started {
                        wait = Duration::ZERO;
                    } else if let Some(next) = next.filter(|next| *next > now) {
                        // Nothing due now but something later; what is due already is in flight or
                        // busy, and its end wakes this loop.
                        let until = Duration::from_micros(next.micros().saturating_sub(now.micros()) as u64);
                        wait = wait.min(until);
                    }
                }
                Ok(Err(StoreError::Closed)) => return,
                Ok(Err(error)) => tracing::error!(%error, "could not read due deliveries"),
                Err(error) => tracing::error!(%error, "pusher task failed"),
            }
        }
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, distribution.pusher.notified()).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// The subscription format that delivers NewsML-G2.
pub const NEWSML: &str = "newsml";

/// The work name under which items whose deliveries could not be rendered are set aside.
pub const DELIVERY_WORK: &str = "delivery";

/// The parts of a delivery body shared by every delivery of one version: its meta and item as JSON, and
/// its NewsML-G2 form when some subscription wants that.
pub struct BodyParts {
    meta: String,
    item: String,
    /// The NewsML-G2 body and its content type.
    newsml: Option<(Vec<u8>, String)>,
}

impl BodyParts {
    /// `provider` (the owner's name) is given when a NewsML-G2 body is wanted.
    pub fn of(version: &StoredVersion, provider: Option<&str>) -> BodyParts {
        BodyParts {
            meta: wire::meta(version).to_string(),
            item: wire::ninjs(version).to_string(),
            newsml: provider.map(|name| {
                let (xml, media_type) = wire::newsml(version, name);
                (xml.into_bytes(), format!("{media_type}; charset=utf-8"))
            }),
        }
    }

    /// The body and its content type for a delivery: NewsML-G2 for subscriptions in that format (the
    /// event and ids travel in the Karavan-* headers), else the JSON envelope.
    pub fn payload(&self, delivery: &DueDelivery) -> (Vec<u8>, String) {
        match (&self.newsml, delivery.format.as_str()) {
            (Some((xml, content_type)), NEWSML) => (xml.clone(), content_type.clone()),
            _ => (self.body(delivery), "application/json".to_string()),
        }
    }

    /// The JSON body of a delivery: the event, ids, and the item as ninjs 3.1 (the kill notice for
    /// kills). Ids, event names and times need no escaping.
    pub fn body(&self, delivery: &DueDelivery) -> Vec<u8> {
        format!(
            r#"{{"event":"{}","delivery":"{}","subscription":"{}","occurredAt":"{}","meta":{},"item":{}}}"#,
            delivery.kind.as_str(),
            delivery.id,
            delivery.subscription,
            delivery.listed_at.to_rfc3339(),
            self.meta,
            self.item
        )
        .into_bytes()
    }
}

/// Sends deliveries of one version to one member (or withdraws them if the member may no longer see
/// it) and hands the attempts to the recorder.
async fn push_group(
    store: Arc<dyn Store>,
    distribution: Arc<Distribution>,
    group: Vec<DueDelivery>,
    records: mpsc::UnboundedSender<Finished>,
) {
    let Some(first) = group.first() else { return };
    let config = &distribution.config;
    let lookup = (Arc::clone(&store), first.member.clone(), first.item_id.clone(), first.seq);
    let wants_newsml = group.iter().any(|d| d.format == NEWSML);
    let read = tokio::task::spawn_blocking(move || {
        let read = lookup.0.version_for(&lookup.1, &lookup.2, lookup.3, now())?;
        // The provider's name, for NewsML-G2 bodies.
        let provider = match (&read, wants_newsml) {
            (VersionRead::Visible(version, _), true) | (VersionRead::Killed(version), true) => {
                Some(wire::provider_name(lookup.0.as_ref(), &version.owner)?)
            }
            _ => None,
        };
        Ok::<_, karavan_store::StoreError>((read, provider))
    })
    .await;
    let (read, provider) = match read {
        Ok(Ok((read, provider))) => (Ok(Ok(read)), provider),
        Ok(Err(error)) => (Ok(Err(error)), None),
        Err(error) => (Err(error), None),
    };
    let kind = first.kind;
    let finish = |delivery: &DueDelivery, status, latency: Duration, error, outcome| {
        let record = AttemptRecord {
            n: delivery.n,
            attempt: delivery.attempts + 1,
            at: now(),
            status,
            latency_micros: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
            error,
            outcome,
        };
        let _ = records.send(Finished { record, subscription: delivery.subscription.clone() });
    };
    let version = match (kind, read) {
        (EventKind::Kill, Ok(Ok(VersionRead::Killed(notice)))) => Some(notice),
        (EventKind::Kill, Ok(Ok(_))) => None,
        (_, Ok(Ok(VersionRead::Visible(version, _)))) => Some(version),
        (_, Ok(Ok(_))) => None,
        (_, Ok(Err(error))) => {
            tracing::error!(%error, item = %first.item_id, "could not load a delivery's item; retrying");
            for delivery in &group {
                let retry = AttemptOutcome::RetryAt(retry_at(config, delivery.attempts + 1, now()));
                finish(delivery, None, Duration::ZERO, Some(format!("store: {error}")), retry);
            }
            return;
        }
        (_, Err(error)) => {
            tracing::error!(%error, "delivery lookup task failed");
            for delivery in &group {
                let retry = AttemptOutcome::RetryAt(retry_at(config, delivery.attempts + 1, now()));
                finish(delivery, None, Duration::ZERO, Some("internal error".to_string()), retry);
            }
            return;
        }
    };
    let Some(version) = version else {
        for delivery in &group {
            finish(delivery, None, Duration::ZERO, None, AttemptOutcome::Withdrawn);
        }
        return;
    };
    // Rendering (NewsML-G2 above all) is CPU work off the async threads; an item it fails on is set
    // aside and its deliveries given up, never retried for ever.
    let render_store = Arc::clone(&store);
    let rendered = tokio::task::spawn_blocking(move || {
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| BodyParts::of(&version, provider.as_deref())));
        built.map_err(|panic| {
            let message = format!("rendering the delivery panicked: {}", crate::panic_message(panic.as_ref()));
            tracing::error!(seq = version.seq, item = %version.item_id, %message, "delivery set aside");
            let recorded = render_store.set_aside(
                DELIVERY_WORK,
                version.seq,
                version.item_id.as_str(),
                Some(&version.owner),
                &message,
            );
            if let Err(error) = recorded {
                tracing::error!(%error, "could not record a set-aside delivery");
            }
            message
        })
    })
    .await;
    let parts = match rendered {
        Ok(Ok(parts)) => Arc::new(parts),
        Ok(Err(message)) => {
            for delivery in &group {
                finish(delivery, None, Duration::ZERO, Some(message.clone()), AttemptOutcome::Dead);
            }
            return;
        }
        Err(error) => {
            tracing::error!(%error, "rendering task failed");
            for delivery in &group {
                let retry = AttemptOutcome::RetryAt(retry_at(config, delivery.attempts + 1, now()));
                finish(delivery, None, Duration::ZERO, Some("internal error".to_string()), retry);
            }
            return;
        }
    };
    for delivery in group {
        let (distribution, parts, records) = (Arc::clone(&distribution), Arc::clone(&parts), records.clone());
        tokio::spawn(async move {
            let record = send(&distribution, &delivery, &parts).await;
            let _ = records.send(Finished { record, subscription: delivery.subscription.clone() });
        });
    }
}

/// One signed POST, and what became of it.
async fn send(distribution: &Distribution, delivery: &DueDelivery, parts: &BodyParts) -> AttemptRecord {
    let config = &distribution.config;
    let attempt = delivery.attempts + 1;
    let started_at = now();
    let (body, content_type) = parts.payload(delivery);
    let headers = vec![
        ("content-type", content_type),
        (SIGNATURE_HEADER, signature_header(&delivery.webhook.secret, started_at.micros() / 1_000_000, &body)),
        (DELIVERY_HEADER, delivery.id.to_string()),
        (EVENT_HEADER, delivery.kind.as_str().to_string()),
        (SUBSCRIPTION_HEADER, delivery.subscription.to_string()),
        (ATTEMPT_HEADER, attempt.to_string()),
    ];
    let clock = Instant::now();
    let answer = distribution.client.post(&delivery.webhook.url, headers, body).await;
    let latency = clock.elapsed();
    let record = |status: Option<u16>, error: Option<String>, outcome: AttemptOutcome| AttemptRecord {
        n: delivery.n,
        attempt,
        at: started_at,
        status,
        latency_micros: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
        error,
        outcome,
    };
    let failed = |status: Option<u16>, error: String| {
        let outcome = if attempt >= config.max_attempts {
            AttemptOutcome::Dead
        } else {
            AttemptOutcome::RetryAt(retry_at(config, attempt, now()))
        };
        record(status, Some(error), outcome)
    };
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => {
            record(Some(answer.status), None, AttemptOutcome::Delivered)
        }
        Ok(answer) => {
            let excerpt: String = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
            failed(Some(answer.status), format!("HTTP {}: {}", answer.status, excerpt.trim()))
        }
        Err(error) => failed(None, error),
    }
}

/// When to try again after `attempt` failed: exponential backoff from `retry_base`, capped, with
/// jitter (a random point in the upper half of the interval).
pub fn retry_at(config: &DistributionConfig, attempt: u32, now: Timestamp) -> Timestamp {
    let exponent = attempt.saturating_sub(1).min(30);
    let delay = config.retry_base.saturating_mul(1u32 << exponent).min(config.retry_max_delay);
    let micros = i64::try_from(delay.as_micros()).unwrap_or(i64::MAX);
    let mut random = [0u8; 8];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => (u64::from_le_bytes(random) % 1_000_000) as i64,
        Err(_) => 500_000,
    };
    let jittered = micros / 2 + (micros / 2).saturating_mul(fraction) / 1_000_000;
    Timestamp(now.micros().saturating_add(jittered.max(1)))
}

/// Writes finished attempts in batches, then frees their slots.
async fn run_recorder(
    store: Arc<dyn Store>,
    distribution: Arc<Distribution>,
    mut recorded: mpsc::UnboundedReceiver<Finished>,
    in_flight: Arc<Mutex<InFlight>>,
) {
    while let Some(first) = recorded.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match recorded.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let records: Vec<AttemptRecord> = batch.iter().map(|f| f.record.clone()).collect();
        let store_ = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || store_.record_attempts(records)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "could not record delivery attempts; they will be retried"),
            Err(error) => tracing::error!(%error, "recorder task failed"),
        }
        if let Ok(mut state) = in_flight.lock() {
            for finished in &batch {
                state.release(finished.record.n, &finished.subscription);
            }
        }
        distribution.pusher.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        let config = DistributionConfig::default();
        let start = Timestamp(0);
        for attempt in 1..=20 {
            let delay = retry_at(&config, attempt, start).micros();
            let full = (10_000_000i64 << (attempt - 1).min(30)).min(3_600_000_000);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay} not in [{}, {full}]", full / 2);
        }
        // Across the default 15 attempts, retrying lasts hours.
        let total: i64 = (1..config.max_attempts).map(|a| (10_000_000i64 << (a - 1)).min(3_600_000_000)).sum();
        assert!(total / 2 > 3 * 3_600_000_000, "retries span at least three hours");
    }
}
