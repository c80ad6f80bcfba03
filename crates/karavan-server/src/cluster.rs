//! Cluster mode's event bus on NATS JetStream, and the relay that feeds it from the store's outbox.
//!
//! Every node subscribes its engines, long-polls and live-wire streams to a local broadcast, as with
//! the in-process bus; what the cluster adds is how events from other nodes reach it:
//!
//! - Item events go through the store. A version's outbox event is written in the publish's own
//!   transaction; the stream relay (one node at a time, by the store lease `stream`) reads the outbox
//!   in order, publishes each event to the JetStream stream with the message id
//!   `{store identity}-outbox-{event id}`, waits for JetStream's acknowledgements and only then moves
//!   its position in the store. So an event is never published for a transaction that rolled back,
//!   never lost (the outbox keeps it until the relay has passed it), and a re-send after a crash or a
//!   take-over is dropped by JetStream's duplicate window. Every node reads the stream with an
//!   ordered consumer and wakes its own engines; the node that stored the version woke its own at
//!   once.
//!   The node that stores a version also tells the others at once by core NATS (a nudge that may be
//!   lost: the stream is the path that is not), so their engines, and the relay, look without
//!   waiting for the relay's next round.
//! - Other events (configuration changed, deliveries listed) only make engines look at the store
//!   sooner: they go by core NATS to the other nodes; one lost costs at most an engine's timeout.
//!
//! The stream is named after the store's identity, so clusters on different stores can share a NATS
//! server. The bus invariant holds: events only wake up; the store stays the truth.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use karavan_domain::Timestamp;
use karavan_store::{OutboxEntry, StoreError};
use serde_json::{Value, json};

use crate::bus::{ConfigChange, Event, EventBus, ItemChange, LocalBus, Subscriber};

/// The store lease (and outbox reader) of the stream relay.
pub const RELAY: &str = "stream";
/// How long the relay's lease lasts; renewed every round.
const RELAY_LEASE_TIME: Duration = Duration::from_secs(15);
/// The most outbox events relayed per round.
const RELAY_BATCH: u32 = 500;
/// How long JetStream drops a message whose id it has seen (a re-send after a crash or take-over).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long the stream keeps events: nodes read only what arrives while they run (each catches up
/// from the store at start), so a day is plenty.
const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// What a node knows of its place in the stream, for `/metrics`.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Messages in the stream not yet delivered to this node (as the server last said).
    pub pending: AtomicU64,
    /// The newest store sequence number this node has seen on the stream.
    pub newest_seq: AtomicI64,
    /// Stream messages this node has received.
    pub received: AtomicU64,
    /// Outbox events this node's relay has published (acknowledged by JetStream).
    pub relayed: AtomicU64,
    /// Whether the connection to NATS is up.
    pub connected: AtomicBool,
}

/// The names a cluster uses on NATS.
#[derive(Debug, Clone)]
struct Names {
    stream: String,
    items: String,
    events: String,
}

impl Names {
    fn of(identity: &str) -> Names {
        // Stream names and subject tokens: letters, digits, '-' and '_' only.
        let clean: String = identity.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        Names {
            stream: format!("KARAVAN_{clean}"),
            items: format!("karavan.{clean}.items"),
            events: format!("karavan.{clean}.events"),
        }
    }
}

/// The event bus of a cluster node.
pub struct NatsBus {
    local: LocalBus,
    node: Arc<str>,
    identity: String,
    names: Names,
    jetstream: jetstream::Context,
    outgoing: tokio::sync::mpsc::UnboundedSender<Event>,
    stats: Arc<StreamStats>,
}

impl NatsBus {
    /// Connects to NATS at `url` (inside a Tokio runtime), makes sure the cluster's stream exists and
    /// starts the node's listeners: the stream of item events and the other nodes' events.
    pub async fn connect(url: &str, identity: &str, node: &str) -> Result<Arc<NatsBus>, String> {
        let stats = Arc::new(StreamStats::default());
        let events_stats = Arc::clone(&stats);
        let client = async_nats::ConnectOptions::new()
            .name(format!("karavan {node}"))
            .event_callback(move |event| {
                let stats = Arc::clone(&events_stats);
                async move {
                    match event {
                        async_nats::Event::Connected => stats.connected.store(true, Ordering::SeqCst),
                        async_nats::Event::Disconnected => {
                            stats.connected.store(false, Ordering::SeqCst);
                            tracing::warn!("disconnected from NATS; reconnecting");
                        }
                        other => tracing::info!(event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|error| format!("connecting to NATS at {url}: {error}"))?;
        stats.connected.store(true, Ordering::SeqCst);
        let names = Names::of(identity);
        let jetstream = jetstream::new(client.clone());
        let stream = jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: names.stream.clone(),
                subjects: vec![names.items.clone()],
                max_age: STREAM_MAX_AGE,
                duplicate_window: DUPLICATE_WINDOW,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|error| format!("creating the JetStream stream {}: {error}", names.stream))?;
        let (outgoing, mut to_send) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let bus = Arc::new(NatsBus {
            local: LocalBus::new(),
            node: node.into(),
            identity: identity.to_string(),
            names: names.clone(),
            jetstream,
            outgoing,
            stats: Arc::clone(&stats),
        });

        // This node's events, told to the others.
        let sender = client.clone();
        let (subject, from) = (names.events.clone(), bus.node.to_string());
        tokio::spawn(async move {
            while let Some(event) = to_send.recv().await {
                if let Some(payload) = encode_event(&from, &event)
                    && let Err(error) = sender.publish(subject.clone(), payload.into()).await
                {
                    tracing::warn!(%error, "could not tell the other nodes of an event");
                }
            }
        });

        // The other nodes' events.
        let mut others =
            client.subscribe(names.events.clone()).await.map_err(|error| format!("subscribing to events: {error}"))?;
        let weak = Arc::downgrade(&bus);
        tokio::spawn(async move {
            while let Some(message) = others.next().await {
                let Some(bus) = weak.upgrade() else { return };
                if let Some((from, event)) = decode_event(&message.payload)
                    && from != *bus.node
                {
                    bus.local.publish(event);
                }
            }
        });

        // Item events from the stream: from now on (a node catches up from the store at start).
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: names.items.clone(),
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|error| format!("reading the stream {}: {error}", names.stream))?;
        let mut messages = consumer.messages().await.map_err(|error| format!("reading the stream: {error}"))?;
        let weak = Arc::downgrade(&bus);
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let Some(bus) = weak.upgrade() else { return };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        // The ordered consumer recreates itself; a gap only costs a wake-up.
                        tracing::warn!(%error, "reading the event stream");
                        bus.local.publish(Event::Lagged);
                        continue;
                    }
                };
                if let Ok(info) = message.info() {
                    bus.stats.pending.store(info.pending, Ordering::Relaxed);
                }
                bus.stats.received.fetch_add(1, Ordering::Relaxed);
                if let Some((change, seq)) = decode_item(&message.payload) {
                    bus.stats.newest_seq.fetch_max(seq, Ordering::Relaxed);
                    bus.local.publish(Event::Item { change, seq });
                }
            }
        });
        tracing::info!(url, stream = %names.stream, node, "cluster event bus on NATS JetStream");
        Ok(bus)
    }

    /// Deletes the cluster's stream (for tests and for decommissioning a cluster; nodes still running
    /// stop hearing each other's item events until one restarts).
    pub async fn delete_stream(&self) -> Result<(), String> {
        self.jetstream.delete_stream(&self.names.stream).await.map(|_| ()).map_err(|error| error.to_string())
    }

    pub fn stats(&self) -> &Arc<StreamStats> {
        &self.stats
    }

    /// Publishes outbox events to the stream, each with its message id, and waits until JetStream has
    /// stored them all (in order); how many were new (the rest were duplicates of earlier sends).
    pub async fn relay(&self, entries: &[OutboxEntry]) -> Result<usize, String> {
        let mut acks = Vec::with_capacity(entries.len());
        for entry in entries {
            let payload = json!({
                "seq": entry.seq,
                "change": change_name(change_of(entry)),
                "outbox": entry.id,
            })
            .to_string();
            let publish = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(format!("{}-outbox-{}", self.identity, entry.id));
            let ack = self
                .jetstream
                .send_publish(self.names.items.clone(), publish)
                .await
                .map_err(|error| format!("publishing to the stream: {error}"))?;
            acks.push(ack);
        }
        let mut fresh = 0;
        for ack in acks {
            let ack = ack.await.map_err(|error| format!("the stream did not acknowledge: {error}"))?;
            if !ack.duplicate {
                fresh += 1;
            }
        }
        self.stats.relayed.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(fresh)
    }
}

impl EventBus for NatsBus {
    fn publish(&self, event: Event) {
        self.local.publish(event);
        // Item events reach the other nodes for certain through the store's outbox and the stream;
        // this is the fast nudge.
        if event != Event::Lagged {
            let _ = self.outgoing.send(event);
        }
    }

    fn subscribe(&self) -> Subscriber {
        self.local.subscribe()
    }
}

fn change_of(entry: &OutboxEntry) -> ItemChange {
    match entry.kind {
        karavan_domain::EventKind::Publish => ItemChange::Stored,
        karavan_domain::EventKind::Correction => ItemChange::Corrected,
        karavan_domain::EventKind::Kill => ItemChange::Killed,
        karavan_domain::EventKind::EmbargoRelease => ItemChange::Released,
    }
}

fn change_name(change: ItemChange) -> &'static str {
    match change {
        ItemChange::Stored => "stored",
        ItemChange::Corrected => "corrected",
        ItemChange::Killed => "killed",
        ItemChange::Released => "released",
    }
}

fn decode_item(payload: &[u8]) -> Option<(ItemChange, i64)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let change = match value.get("change")?.as_str()? {
        "stored" => ItemChange::Stored,
        "corrected" => ItemChange::Corrected,
        "killed" => ItemChange::Killed,
        "released" => ItemChange::Released,
        _ => return None,
    };
    Some((change, value.get("seq")?.as_i64()?))
}

fn config_name(change: ConfigChange) -> &'static str {
    match change {
        ConfigChange::Subscriptions => "subscriptions",
        ConfigChange::Feeds => "feeds",
        ConfigChange::Agreements => "agreements",
        ConfigChange::Glossaries => "glossaries",
        ConfigChange::ReadLanguages => "read-languages",
        ConfigChange::Members => "members",
    }
}

fn encode_event(node: &str, event: &Event) -> Option<String> {
    let kind = match event {
        Event::Config(change) => json!({ "config": config_name(*change) }),
        Event::Deliveries => json!({ "deliveries": true }),
        Event::Translated { seq } => json!({ "translated": seq }),
        Event::TranslationWanted => json!({ "translationWanted": true }),
        Event::Item { change, seq } => json!({ "item": { "change": change_name(*change), "seq": seq } }),
        Event::Lagged => return None,
    };
    Some(json!({ "node": node, "event": kind }).to_string())
}

fn decode_event(payload: &[u8]) -> Option<(String, Event)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let node = value.get("node")?.as_str()?.to_string();
    let event = value.get("event")?;
    if event.get("deliveries").is_some() {
        return Some((node, Event::Deliveries));
    }
    if let Some(seq) = event.get("translated") {
        return Some((node, Event::Translated { seq: seq.as_i64()? }));
    }
    if event.get("translationWanted").is_some() {
        return Some((node, Event::TranslationWanted));
    }
    if let Some(item) = event.get("item") {
        let (change, seq) = decode_item(item.to_string().as_bytes())?;
        return Some((node, Event::Item { change, seq }));
    }
    let name = event.get("config")?.as_str()?;
    let change = [
        ConfigChange::Subscriptions,
        ConfigChange::Feeds,
        ConfigChange::Agreements,
        ConfigChange::Glossaries,
        ConfigChange::ReadLanguages,
        ConfigChange::Members,
    ]
    .into_iter()
    .find(|change| config_name(*change) == name)?;
    Some((node, Event::Config(change)))
}

/// The stream relay engine: on the node holding the `stream` lease, publishes the outbox's events to
/// the stream in order and records how far it has gone; on the others, waits to take over.
pub async fn run_relay(state: crate::AppState, bus: Arc<NatsBus>, mut context: crate::engine::EngineContext) {
    let holder = state.holder("stream-relay");
    let mut events = state.bus().subscribe();
    // The position as this node last knew it while holding the lease; `None` makes the next round read
    // it from the store (at the start, and after the lease was lost: another node may have moved it).
    let mut position: Option<i64> = None;
    loop {
        if context.stopping() {
            let (store, holder) = (Arc::clone(state.store()), holder.clone());
            let _ = tokio::task::spawn_blocking(move || store.release_lease(RELAY, &holder)).await;
            return;
        }
        events.drain();
        let started = tokio::time::Instant::now();
        let full = match relay_round(&state, &bus, &holder, &mut position).await {
            Ok(full) => full,
            Err(StoreError::Closed) => return,
            Err(error) => {
                position = None;
                tracing::warn!(%error, "the stream relay failed a round; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                false
            }
        };
        if full {
            continue;
        }
        // Woken by item events (this node's publishes, other nodes' nudges); every half second in any
        // case.
        tokio::select! {
            _ = events.wait_for_from(started + Duration::from_millis(5), Duration::from_millis(500), crate::bus::is_item) => {}
            _ = context.stopped() => {}
        }
    }
}

/// One round of the relay under its lease: reads the outbox after the position, publishes what it found
/// and records the new position. Whether the batch was full (more waits).
async fn relay_round(
    state: &crate::AppState,
    bus: &NatsBus,
    holder: &str,
    position: &mut Option<i64>,
) -> Result<bool, StoreError> {
    let (store, holder_, known) = (Arc::clone(state.store()), holder.to_string(), *position);
    let read = tokio::task::spawn_blocking(move || -> Result<Option<(i64, Vec<OutboxEntry>)>, StoreError> {
        let now = crate::now();
        let until = Timestamp(now.micros() + RELAY_LEASE_TIME.as_micros() as i64);
        if !store.acquire_lease(RELAY, &holder_, now, until)? {
            return Ok(None);
        }
        let at = match known {
            Some(at) => at,
            None => store.open_outbox_reader(RELAY)?,
        };
        Ok(Some((at, store.outbox_entries_after(at, RELAY_BATCH)?)))
    })
    .await
    .map_err(|error| StoreError::Database(format!("stream relay task: {error}")))??;
    let Some((at, entries)) = read else {
        // Another node relays.
        *position = None;
        return Ok(false);
    };
    *position = Some(at);
    let Some(through) = entries.last().map(|entry| entry.id) else { return Ok(false) };
    // Sent again next round if this fails; JetStream drops what it already has.
    bus.relay(&entries).await.map_err(StoreError::Database)?;
    let (store, holder_) = (Arc::clone(state.store()), holder.to_string());
    match tokio::task::spawn_blocking(move || store.record_outbox_reader(RELAY, &holder_, through)).await {
        Ok(Ok(())) => *position = Some(through),
        Ok(Err(StoreError::Conflict { code: "lease_lost", .. })) => {
            tracing::warn!("the stream relay's lease went to another node");
            *position = None;
        }
        Ok(Err(error)) => return Err(error),
        Err(error) => return Err(StoreError::Database(format!("stream relay task: {error}"))),
    }
    Ok(entries.len() as u32 >= RELAY_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_nodes() {
        for event in [
            Event::Deliveries,
            Event::Translated { seq: 12 },
            Event::TranslationWanted,
            Event::Config(ConfigChange::ReadLanguages),
            Event::Config(ConfigChange::Subscriptions),
            Event::Item { change: ItemChange::Killed, seq: 9 },
        ] {
            let payload = encode_event("node-a", &event).unwrap();
            assert_eq!(decode_event(payload.as_bytes()), Some(("node-a".to_string(), event)));
        }
        assert_eq!(encode_event("node-a", &Event::Lagged), None, "lags are a node's own");
        assert_eq!(decode_item(br#"{"seq":42,"change":"corrected","outbox":7}"#), Some((ItemChange::Corrected, 42)));
        assert_eq!(decode_item(br#"{"seq":"x"}"#), None);
        assert_eq!(Names::of("ab.c* d").stream, "KARAVAN_abcd", "no separators or wildcards in names");
    }
}
