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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use karavan_domain::{EventKind, ItemAccess, ItemId, MemberId, SubscriptionId, Timestamp, visible_from};
use karavan_search::{Matcher, SearchIndex};
use karavan_store::{
    AttemptOutcome, AttemptRecord, DueDelivery, NewDelivery, OutboxEvent, Store, StoreError, StoredVersion,
    Subscription, VersionRead,
};
use tokio::sync::mpsc;

use crate::bus::{ConfigChange, Event};

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

/// Distribution's settings and its outbound client. Its engines coordinate only through the store
/// (leases, the fan-out position, the subscriptions' generation) and are woken by the event bus.
pub struct Distribution {
    config: DistributionConfig,
    client: OutboundClient,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Distribution {
    pub fn new(config: DistributionConfig) -> Result<Distribution, String> {
        let client = OutboundClient::new(config.outbound.clone())?;
        Ok(Distribution { config, client })
    }

    /// The one outbound HTTP client (webhooks and feeds), with its URL safety rules.
    pub fn client(&self) -> &OutboundClient {
        &self.client
    }

    pub fn config(&self) -> &DistributionConfig {
        &self.config
    }
}

/// How long the fan-out's lease lasts; it is renewed on every pass, so a second instance takes over
/// this long after the first stops.
const FANOUT_LEASE_TIME: Duration = Duration::from_secs(15);

/// Starts distribution's engines under the state's supervisor: the fan-out, and the pusher with its
/// recorder (one engine: they share the channel of finished attempts).
pub fn start(state: &crate::AppState) {
    let engines = state.engines();
    let fanout_state = state.clone();
    engines.start("fanout", crate::engine::factory(move |context| run_fanout(fanout_state.clone(), context)));
    let pusher_state = state.clone();
    engines.start(
        "pusher",
        crate::engine::factory(move |context| {
            let (records, recorded) = mpsc::unbounded_channel();
            let state = pusher_state.clone();
            let holder = state.holder("pusher");
            let in_flight = Arc::new(AtomicUsize::new(0));
            let (freed, woken) = mpsc::unbounded_channel();
            let recorder = run_recorder(state.clone(), holder.clone(), recorded, Arc::clone(&in_flight), freed);
            let pusher = run_pusher(state, holder, records, in_flight, woken, context);
            async move {
                tokio::join!(recorder, pusher);
            }
        }),
    );
}

// ---------------------------------------------------------------------------------------------------
// Fan-out

/// The fan-out's deterministic step, with what it keeps between batches: the engine runs it on the
/// blocking pool after each wake-up; tests call it directly.
pub struct FanoutStep {
    holder: String,
    cache: FanoutCache,
}

impl FanoutStep {
    /// The step of this process's fan-out (its lease holder name).
    pub fn new(state: &crate::AppState) -> FanoutStep {
        FanoutStep { holder: state.holder("fanout"), cache: FanoutCache::default() }
    }

    /// One batch under the fan-out lease (blocking): the new outbox position, the events read and the
    /// deliveries written; `None` when another instance holds the lease.
    pub fn step(&mut self, state: &crate::AppState) -> Result<Option<(i64, usize, usize)>, StoreError> {
        fanout_once(state.store().as_ref(), state.search(), state.language(), &self.holder, &mut self.cache)
    }

    /// Forgets that this instance held the lease (it was taken over).
    fn lease_lost(&mut self) {
        self.cache.lease_until = None;
    }
}

/// What the fan-out keeps between batches.
#[derive(Default)]
struct FanoutCache {
    /// The subscriptions' generation in the store when they were read.
    subscriptions_generation: i64,
    /// Until when this instance holds the fan-out lease, as last granted (`None`: not known to hold it).
    lease_until: Option<Timestamp>,
    subscriptions: Vec<Subscription>,
    /// Compiled queries by subscription, with the `updated_at` they were compiled for; `None` when the
    /// stored query no longer compiles (logged, matches nothing).
    matchers: HashMap<SubscriptionId, (Timestamp, Option<Matcher>)>,
    countries: HashMap<MemberId, Option<String>>,
}

/// The least time between the starts of two fan-out rounds that were not full (a few milliseconds
/// of publish → webhook latency at most, for one percolation and one transaction per batch).
const FANOUT_ROUND_GAP: Duration = Duration::from_millis(20);

/// The least time between two claims of the pusher that were not full.
const PUSH_ROUND_GAP: Duration = Duration::from_millis(5);

/// The most outbox events fanned out in one transaction.
const FANOUT_BATCH: u32 = 500;

async fn run_fanout(state: crate::AppState, mut context: crate::engine::EngineContext) {
    let holder = state.holder("fanout");
    let mut events = state.bus().subscribe();
    let mut fanout = Some(FanoutStep::new(&state));
    loop {
        if context.stopping() {
            let store = Arc::clone(state.store());
            let holder = holder.clone();
            let _ =
                tokio::task::spawn_blocking(move || store.release_lease(karavan_store::FANOUT_LEASE, &holder)).await;
            return;
        }
        events.drain();
        let started = tokio::time::Instant::now();
        let mut taken = fanout.take().unwrap_or_else(|| FanoutStep::new(&state));
        let state_ = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = taken.step(&state_);
            (result, taken)
        })
        .await;
        let result = match outcome {
            Ok((result, returned)) => {
                fanout = Some(returned);
                result
            }
            Err(error) => {
                tracing::error!(%error, "fan-out task failed");
                Err(StoreError::Closed)
            }
        };
        match result {
            Ok(Some((_, read, written))) => {
                if written > 0 {
                    state.bus().publish(Event::Deliveries);
                }
                if read as u32 >= FANOUT_BATCH {
                    continue;
                }
            }
            // Another instance holds the fan-out: wait, and take over when its lease ends.
            Ok(None) => {}
            Err(StoreError::Closed) => return,
            Err(StoreError::Conflict { code: "lease_lost", .. }) => {
                tracing::warn!("the fan-out lease went to another instance");
                if let Some(fanout) = fanout.as_mut() {
                    fanout.lease_lost();
                }
            }
            Err(error) => {
                tracing::error!(%error, "fan-out failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        // Wait for an item or subscription event, or look again soon (another process may write);
        // rounds at most every FANOUT_ROUND_GAP, so that a busy wire is fanned out in batches.
        tokio::select! {
            _ = events.wait_for_from(started + FANOUT_ROUND_GAP, Duration::from_secs(1), |event| {
                matches!(event, Event::Item { .. } | Event::Config(ConfigChange::Subscriptions | ConfigChange::Agreements))
            }) => {}
            _ = context.stopped() => {}
        }
    }
}

/// One fan-out batch under the fan-out lease: returns the new outbox position, the events read and
/// the deliveries written; `None` when another instance holds the lease.
fn fanout_once(
    store: &dyn Store,
    search: &SearchIndex,
    models: &crate::language::LanguageModels,
    holder: &str,
    cache: &mut FanoutCache,
) -> Result<Option<(i64, usize, usize)>, StoreError> {
    // The lease is renewed once half of it has run, not on every batch (one write fewer per batch on
    // the writer); `record_fanout` checks it in its own transaction all the same.
    let now = now();
    let half = FANOUT_LEASE_TIME.as_micros() as i64 / 2;
    if cache.lease_until.is_none_or(|until| until.micros() - now.micros() < half) {
        let until = Timestamp(now.micros() + FANOUT_LEASE_TIME.as_micros() as i64);
        cache.lease_until = None;
        if !store.acquire_lease(karavan_store::FANOUT_LEASE, holder, now, until)? {
            return Ok(None);
        }
        cache.lease_until = Some(until);
    }
    // The position is read under the lease every time: another instance may have moved it.
    let position = store.outbox_position()?;
    // The head before the subscriptions: an event past it may be for a subscription made since.
    let head = store.outbox_head()?;
    if head <= position {
        return Ok(Some((position, 0, 0)));
    }
    let generation = store.generation(karavan_store::SUBSCRIPTIONS_GENERATION)?;
    if generation != cache.subscriptions_generation || cache.subscriptions_generation == 0 {
        cache.subscriptions = store.all_subscriptions()?;
        cache.subscriptions_generation = generation;
        let live: HashSet<&SubscriptionId> = cache.subscriptions.iter().map(|s| &s.id).collect();
        cache.matchers.retain(|id, _| live.contains(id));
    }
    if cache.subscriptions.is_empty() {
        // Nobody to deliver to: move past the events up to the head without reading a version, a
        // bounded stretch per transaction (a large import must not hold the writer).
        let through = head.min(position.saturating_add(i64::from(FANOUT_BATCH) * 20));
        store.record_fanout(holder, through, Vec::new())?;
        return Ok(Some((through, usize::try_from(through - position).unwrap_or(usize::MAX), 0)));
    }
    // Only events up to the head read before the subscriptions: a later one may be for a subscription
    // made after they were read, and is fanned out in the next round, against the list it needs.
    let mut events = store.outbox_after(position, FANOUT_BATCH)?;
    events.retain(|event| event.id <= head);
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(Some((position, 0, 0)));
    };
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
    let written = store.record_fanout(holder, last, deliveries)?;
    Ok(Some((last, events.len(), written)))
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

/// An attempt's record, to be stored by the recorder.
struct Finished {
    record: AttemptRecord,
}

/// How long a claimed delivery is this instance's: longer than one attempt can take (the outbound
/// timeout) with room to record it; a delivery whose holder died is sent by another after this.
fn delivery_lease(config: &DistributionConfig) -> Duration {
    config.outbound.timeout.saturating_mul(2) + Duration::from_secs(30)
}

async fn run_pusher(
    state: crate::AppState,
    holder: String,
    records: mpsc::UnboundedSender<Finished>,
    in_flight: Arc<AtomicUsize>,
    mut freed: mpsc::UnboundedReceiver<()>,
    mut context: crate::engine::EngineContext,
) {
    let distribution = Arc::clone(state.distribution());
    let config = distribution.config.clone();
    let mut events = state.bus().subscribe();
    // What an earlier run of this engine held (it panicked) is free again at once.
    let (store, releasing) = (Arc::clone(state.store()), holder.clone());
    let _ = tokio::task::spawn_blocking(move || store.release_deliveries(&releasing)).await;
    loop {
        if context.stopping() {
            break;
        }
        events.drain();
        while freed.try_recv().is_ok() {}
        let round = tokio::time::Instant::now();
        let free = config.max_in_flight.saturating_sub(in_flight.load(Ordering::SeqCst));
        let mut wait = Duration::from_secs(1);
        if free > 0 {
            let (store, config, claimant) = (Arc::clone(state.store()), config.clone(), holder.clone());
            let limit = free.min(1000) as u32;
            let due = tokio::task::spawn_blocking(move || {
                let (due, now) = claim_due(store.as_ref(), &config, &claimant, limit)?;
                let next = if due.is_empty() { store.next_due()? } else { None };
                Ok::<_, StoreError>((due, next, now))
            })
            .await;
            match due {
                Ok(Ok((due, next, now))) => {
                    // A full claim may leave more due: claim again at once. A short one means the
                    // rest is held or its subscriptions are at their limit: claim again when a slot
                    // frees or a delivery is listed, not in a loop (each claim is a write).
                    let full = due.len() >= limit as usize;
                    in_flight.fetch_add(due.len(), Ordering::SeqCst);
                    let groups = group_by_version(due);
                    let started = full && !groups.is_empty();
                    for (_, group) in groups {
                        tokio::spawn(push_group(
                            Arc::clone(state.store()),
                            Arc::clone(&distribution),
                            group,
                            records.clone(),
                        ));
                    }
                    if started {
                        wait = Duration::ZERO;
                    } else if let Some(next) = next.filter(|next| *next > now) {
                        // Nothing due now but something later; what is due already is in hand (here
                        // or elsewhere), and its end wakes this loop.
                        let until = Duration::from_micros(next.micros().saturating_sub(now.micros()) as u64);
                        wait = wait.min(until);
                    }
                }
                Ok(Err(StoreError::Closed)) => return,
                Ok(Err(error)) => tracing::error!(%error, "could not claim due deliveries"),
                Err(error) => tracing::error!(%error, "pusher task failed"),
            }
        }
        if wait.is_zero() {
            tokio::task::yield_now().await;
            continue;
        }
        // At most one claim per PUSH_ROUND_GAP while the wire is busy (what frees meanwhile is
        // claimed together).
        tokio::select! {
            _ = tokio::time::sleep_until(round + PUSH_ROUND_GAP) => {}
            _ = context.stopped() => {}
        }
        tokio::select! {
            _ = events.wait_for(wait, |event| {
                matches!(event, Event::Deliveries | Event::Item { change: crate::bus::ItemChange::Released, .. })
            }) => {}
            _ = freed.recv() => {}
            _ = context.stopped() => {}
        }
    }
    // Stopping: take nothing more; give what is in flight a moment to finish and be recorded, then
    // hand back what is still held, so that the next instance sends it at once (a send cut short may
    // reach its receiver twice, under one delivery id).
    drop(records);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while in_flight.load(Ordering::SeqCst) > 0 {
        if !matches!(tokio::time::timeout_at(deadline, freed.recv()).await, Ok(Some(()))) {
            break;
        }
    }
    let store = Arc::clone(state.store());
    match tokio::task::spawn_blocking(move || store.release_deliveries(&holder)).await {
        Ok(Ok(released)) if released > 0 => tracing::info!(released, "handed back deliveries not sent"),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not hand back deliveries; they come back when their leases end")
        }
        Err(error) => tracing::warn!(%error, "pusher task failed"),
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

/// The pusher's deterministic step: claims what is due now (at most `limit`, within each
/// subscription's in-flight limit), sends it, and records every attempt before it returns; how many
/// deliveries were attempted. The engine runs the same pieces (claim, [`push_group`], record) without
/// waiting for one batch before claiming the next; tests drive this instead.
pub async fn push_step(state: &crate::AppState, holder: &str, limit: u32) -> Result<usize, StoreError> {
    let (store, config, claimant) =
        (Arc::clone(state.store()), state.distribution().config.clone(), holder.to_string());
    let (due, _) = tokio::task::spawn_blocking(move || claim_due(store.as_ref(), &config, &claimant, limit))
        .await
        .map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))??;
    let count = due.len();
    let (records, mut recorded) = mpsc::unbounded_channel();
    for group in group_by_version(due).into_values() {
        push_group(Arc::clone(state.store()), Arc::clone(state.distribution()), group, records.clone()).await;
    }
    drop(records);
    let mut attempts = Vec::with_capacity(count);
    while let Some(finished) = recorded.recv().await {
        attempts.push(finished.record);
    }
    let (store, recording) = (Arc::clone(state.store()), holder.to_string());
    tokio::task::spawn_blocking(move || store.record_attempts(&recording, attempts))
        .await
        .map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))??;
    if count > 0 {
        state.bus().publish(Event::Deliveries);
    }
    Ok(count)
}

/// Claims for `holder` what is due now (blocking): at most `limit`, within each subscription's
/// in-flight limit, under a lease long enough for one attempt. Returns the claim and its instant.
fn claim_due(
    store: &dyn Store,
    config: &DistributionConfig,
    holder: &str,
    limit: u32,
) -> Result<(Vec<DueDelivery>, Timestamp), StoreError> {
    let now = now();
    let until = Timestamp(now.micros() + delivery_lease(config).as_micros() as i64);
    let per_subscription = u32::try_from(config.per_subscription).unwrap_or(u32::MAX);
    Ok((store.claim_deliveries(holder, now, until, limit, per_subscription)?, now))
}

/// Deliveries of one version to one member share one visibility check and one body.
fn group_by_version(due: Vec<DueDelivery>) -> HashMap<(MemberId, i64, EventKind), Vec<DueDelivery>> {
    let mut groups: HashMap<(MemberId, i64, EventKind), Vec<DueDelivery>> = HashMap::new();
    for delivery in due {
        groups.entry((delivery.member.clone(), delivery.seq, delivery.kind)).or_default().push(delivery);
    }
    groups
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
        let _ = records.send(Finished { record });
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
            let _ = records.send(Finished { record });
        });
    }
}

/// The headers of a webhook POST: its content type, the signature of `body` at `at`, and the
/// delivery's id, event and subscription (`ids`, in that order) and attempt.
fn signed_headers(
    secret: &str,
    at: karavan_domain::Timestamp,
    body: &[u8],
    content_type: String,
    [delivery, event, subscription]: [String; 3],
    attempt: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", content_type),
        (SIGNATURE_HEADER, signature_header(secret, at.micros() / 1_000_000, body)),
        (DELIVERY_HEADER, delivery),
        (EVENT_HEADER, event),
        (SUBSCRIPTION_HEADER, subscription),
        (ATTEMPT_HEADER, attempt.to_string()),
    ]
}

/// One signed POST, and what became of it.
async fn send(distribution: &Distribution, delivery: &DueDelivery, parts: &BodyParts) -> AttemptRecord {
    let config = &distribution.config;
    let attempt = delivery.attempts + 1;
    let started_at = now();
    let (body, content_type) = parts.payload(delivery);
    let headers = signed_headers(
        &delivery.webhook.secret,
        started_at,
        &body,
        content_type,
        [delivery.id.to_string(), delivery.kind.as_str().to_string(), delivery.subscription.to_string()],
        attempt,
    );
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

/// What a test delivery came to: the receiver's status (if it answered), how long it took, and what
/// went wrong (none: a 2xx).
#[derive(Debug, Clone, PartialEq)]
pub struct TestDelivery {
    pub status: Option<u16>,
    pub latency_micros: i64,
    pub error: Option<String>,
}

impl TestDelivery {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// One signed POST of a `test` event to a subscription's webhook, now, outside the delivery queue
/// (nothing is stored): the receiver checks its endpoint and its signature check. Headers as a real
/// delivery's, the event `test`, the attempt 1.
pub async fn send_test(
    distribution: &Distribution,
    subscription: &karavan_store::Subscription,
    webhook: &karavan_store::Webhook,
) -> TestDelivery {
    let started_at = now();
    let body = serde_json::json!({
        "event": "test",
        "subscription": subscription.id.as_str(),
        "sentAt": started_at.to_rfc3339(),
    })
    .to_string()
    .into_bytes();
    let ids = [format!("test-{}", started_at.micros()), "test".to_string(), subscription.id.to_string()];
    let headers = signed_headers(&webhook.secret, started_at, &body, "application/json".to_string(), ids, 1);
    let clock = Instant::now();
    let answer = distribution.client.post(&webhook.url, headers, body).await;
    let latency_micros = i64::try_from(clock.elapsed().as_micros()).unwrap_or(i64::MAX);
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => {
            TestDelivery { status: Some(answer.status), latency_micros, error: None }
        }
        Ok(answer) => {
            let excerpt: String = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
            let error = Some(format!("HTTP {}: {}", answer.status, excerpt.trim()));
            TestDelivery { status: Some(answer.status), latency_micros, error }
        }
        Err(error) => TestDelivery { status: None, latency_micros, error: Some(error) },
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
    state: crate::AppState,
    holder: String,
    mut recorded: mpsc::UnboundedReceiver<Finished>,
    in_flight: Arc<AtomicUsize>,
    freed: mpsc::UnboundedSender<()>,
) {
    while let Some(first) = recorded.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match recorded.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let records: Vec<AttemptRecord> = batch.into_iter().map(|f| f.record).collect();
        let (store, recording) = (Arc::clone(state.store()), holder.clone());
        match tokio::task::spawn_blocking(move || store.record_attempts(&recording, records)).await {
            Ok(Ok(stored)) if stored < count => {
                tracing::warn!(
                    lost = count - stored,
                    "attempts not recorded: their deliveries went to another instance"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "could not record delivery attempts; they will be retried"),
            Err(error) => tracing::error!(%error, "recorder task failed"),
        }
        in_flight.fetch_sub(count, Ordering::SeqCst);
        let _ = freed.send(());
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
