//! Cluster mode's event bus against the real NATS JetStream server (127.0.0.1:4222, or
//! `KARAVAN_TEST_NATS`): two nodes of one cluster hear each other's events, item events reach every
//! node through the stream, and a re-sent outbox event is dropped as a duplicate.

use std::time::Duration;

use karavan_domain::EventKind;
use karavan_server::bus::{ConfigChange, Event, EventBus, ItemChange};
use karavan_server::cluster::NatsBus;
use karavan_store::OutboxEntry;

fn nats() -> String {
    std::env::var("KARAVAN_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A cluster name of its own, so that concurrent test runs do not hear each other.
fn identity() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test{:x}{:x}", nanos, std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_hear_each_other_and_the_stream_drops_resent_events() {
    let identity = identity();
    let a = NatsBus::connect(&nats(), &identity, "node-a").await.expect("NATS with JetStream answers");
    let b = NatsBus::connect(&nats(), &identity, "node-b").await.unwrap();
    let other = NatsBus::connect(&nats(), &format!("{identity}x"), "node-c").await.unwrap();
    let mut heard_by_b = b.subscribe();
    let mut heard_by_a = a.subscribe();
    let mut heard_elsewhere = other.subscribe();

    // A configuration change on A wakes B's engines; A hears its own at once, and only once.
    a.publish(Event::Config(ConfigChange::Subscriptions));
    assert!(heard_by_b.wait_for(Duration::from_secs(5), |e| *e == Event::Config(ConfigChange::Subscriptions)).await);
    assert_eq!(heard_by_a.next().await, Some(Event::Config(ConfigChange::Subscriptions)));

    // Outbox events relayed by A reach B through the stream (and the nudge), in order.
    let entries: Vec<OutboxEntry> =
        (1..=3).map(|n| OutboxEntry { id: n, seq: 100 + n, kind: EventKind::Publish }).collect();
    assert_eq!(a.relay(&entries).await.unwrap(), 3, "three new messages");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 3 && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Event::Item { change: ItemChange::Stored, seq })) =
            tokio::time::timeout_at(deadline, heard_by_b.next()).await
        {
            seen.push(seq);
        }
    }
    assert_eq!(seen, vec![101, 102, 103]);
    // Sent again (a relay that crashed before recording its position): JetStream drops them.
    assert_eq!(a.relay(&entries).await.unwrap(), 0, "re-sent events are duplicates");
    assert_eq!(b.relay(&entries[..1]).await.unwrap(), 0, "whichever node re-sends them");
    assert!(
        !heard_by_b.wait_for(Duration::from_millis(500), |e| matches!(e, Event::Item { .. })).await,
        "nothing delivered twice"
    );
    assert_eq!(b.stats().newest_seq.load(std::sync::atomic::Ordering::Relaxed), 103);

    // Another cluster (another store) heard none of it.
    assert!(!heard_elsewhere.wait_for(Duration::from_millis(200), |_| true).await);
    a.delete_stream().await.unwrap();
    other.delete_stream().await.unwrap();
}
