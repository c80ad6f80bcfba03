//! The event bus: what happened, told to whoever waits for it (the engines, long-polls, live wire
//! streams). Implemented in-process ([`LocalBus`]); another implementation (cluster mode) carries the
//! same events between processes.
//!
//! Architecture invariant: events only wake up. The store stays the source of truth, and every
//! reader of events reads the store after waking (and looks again after a timeout in any case), so a
//! lost or late event costs latency, never data. Nothing coordinates through memory shared between
//! engines: a `Notify`, `watch` or counter would not reach a second process.

use std::time::Duration;

use tokio::sync::broadcast;

/// What happened to an item version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemChange {
    /// A new item was stored.
    Stored,
    /// A new version of an item was stored.
    Corrected,
    /// An item was killed.
    Killed,
    /// An embargo ended or an agreement's delay passed: a version became visible to more members.
    Released,
}

/// Configuration the engines cache or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    Subscriptions,
    Feeds,
    Agreements,
    Glossaries,
    /// The languages a member reads (translation jobs to queue).
    ReadLanguages,
    /// A member agency was added (no engine listens yet; caches of members would).
    Members,
}

/// An event on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An item version changed; `seq` is its store sequence number (for `Released`, the highest
    /// sequence number released, or 0 when the release is not about one version).
    Item { change: ItemChange, seq: i64 },
    /// Configuration changed.
    Config(ConfigChange),
    /// Deliveries were listed (the fan-out wrote some) or finished: changes feeds and the pusher look
    /// again.
    Deliveries,
    /// A translation job of version `seq` ended (its translation stored, or failed for good): pages
    /// waiting for it look again.
    Translated { seq: i64 },
    /// A reader waits for a translation (a body job was queued or moved to the front): the translation
    /// workers look again.
    TranslationWanted,
    /// This reader fell behind and events were dropped: look at the store again.
    Lagged,
}

/// The bus every edge and engine talks to.
pub trait EventBus: Send + Sync + 'static {
    /// Tells every subscriber (never blocks; with no subscriber the event is dropped).
    fn publish(&self, event: Event);
    /// Starts listening: every event published after this call reaches the subscriber (or a
    /// [`Event::Lagged`] in place of those it fell too far behind on).
    fn subscribe(&self) -> Subscriber;
}

/// One listener's end of the bus.
pub struct Subscriber {
    receiver: broadcast::Receiver<Event>,
}

impl Subscriber {
    /// Wraps a broadcast receiver (for implementations that forward into a local channel).
    pub fn new(receiver: broadcast::Receiver<Event>) -> Subscriber {
        Subscriber { receiver }
    }

    /// The next event; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Event> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Event::Lagged),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Waits up to `timeout` for an event `wanted` accepts (a [`Event::Lagged`] always counts: it may
    /// have hidden one). Whether one came; events already waiting count too.
    pub async fn wait_for(&mut self, timeout: Duration, wanted: impl Fn(&Event) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(event)) if event == Event::Lagged || wanted(&event) => return true,
                Ok(Some(_)) => continue,
                // The bus is gone (shutting down): behave like a timeout, without spinning.
                Ok(None) => {
                    tokio::time::sleep_until(deadline).await;
                    return false;
                }
                Err(_) => return false,
            }
        }
    }

    /// Like [`Subscriber::wait_for`], but returns no earlier than `earliest` (unless `timeout` ends
    /// first): an engine that tails the store passes the start of its last round plus a gap, so that
    /// a busy wire's publishes are taken in rounds of many instead of one round, and one wake-up, per
    /// publish. Events that arrive meanwhile are waiting when it looks, so it answers at once.
    pub async fn wait_for_from(
        &mut self,
        earliest: tokio::time::Instant,
        timeout: Duration,
        wanted: impl Fn(&Event) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::time::sleep_until(earliest.min(deadline)).await;
        self.wait_for(deadline.saturating_duration_since(tokio::time::Instant::now()), wanted).await
    }

    /// Forgets events already waiting (the caller is about to read the store anyway).
    pub fn drain(&mut self) {
        while self.receiver.try_recv().is_ok() {}
    }
}

/// The in-process bus.
pub struct LocalBus {
    sender: broadcast::Sender<Event>,
}

/// Events a slow subscriber may fall behind by before it sees [`Event::Lagged`].
const CAPACITY: usize = 4096;

impl LocalBus {
    pub fn new() -> LocalBus {
        LocalBus { sender: broadcast::channel(CAPACITY).0 }
    }
}

impl Default for LocalBus {
    fn default() -> LocalBus {
        LocalBus::new()
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> Subscriber {
        Subscriber::new(self.sender.subscribe())
    }
}

/// Whether an event tells of item versions (stored, corrected, killed, released).
pub fn is_item(event: &Event) -> bool {
    matches!(event, Event::Item { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_what_is_published_after_they_subscribe() {
        let bus = LocalBus::new();
        bus.publish(Event::Deliveries);
        let mut subscriber = bus.subscribe();
        bus.publish(Event::Config(ConfigChange::Feeds));
        bus.publish(Event::Item { change: ItemChange::Stored, seq: 7 });
        assert_eq!(subscriber.next().await, Some(Event::Config(ConfigChange::Feeds)));
        assert!(subscriber.wait_for(Duration::from_millis(10), is_item).await);
        assert!(!subscriber.wait_for(Duration::from_millis(10), is_item).await, "nothing more");
        // Waiting from a later instant: an event sent before it is found when the wait looks.
        let earliest = tokio::time::Instant::now() + Duration::from_millis(30);
        bus.publish(Event::Item { change: ItemChange::Stored, seq: 8 });
        assert!(subscriber.wait_for_from(earliest, Duration::from_secs(5), is_item).await);
        assert!(tokio::time::Instant::now() >= earliest, "not before the instant asked for");
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_look_again() {
        let bus = LocalBus::new();
        let mut subscriber = bus.subscribe();
        for seq in 0..(CAPACITY as i64 + 10) {
            bus.publish(Event::Item { change: ItemChange::Stored, seq });
        }
        assert_eq!(subscriber.next().await, Some(Event::Lagged));
        // A lag wakes whatever the caller waits for.
        let mut other = bus.subscribe();
        for _ in 0..(CAPACITY + 1) {
            bus.publish(Event::Deliveries);
        }
        assert!(other.wait_for(Duration::from_millis(10), |e| *e == Event::Config(ConfigChange::Feeds)).await);
    }
}
