//! The release engine: at the instant an embargo ends or an agreement's delay passes, a version
//! becomes visible to more members without anything being written. This engine finds those instants in
//! the store and tells the bus (`Item { change: Released }`), so that live wires, changes long-polls
//! and the pusher look at once instead of at their next timeout.

use std::sync::Arc;
use std::time::Duration;

use karavan_domain::Timestamp;
use karavan_store::{Store, StoreError};

use crate::bus::{ConfigChange, Event, ItemChange};
use crate::{AppState, now};

/// The longest the engine sleeps without looking at the store again (a release written by another
/// process is seen within this).
const LOOK_AGAIN: Duration = Duration::from_secs(30);

/// The least time between two looks prompted by new items.
const RELEASE_ROUND_GAP: Duration = Duration::from_millis(100);

/// One step: the releases due by `now` since `last` (reported as one event), and the next instant to
/// wake at. Deterministic: tests drive it with their own clock.
pub fn step(store: &dyn Store, last: Timestamp, now: Timestamp) -> Result<(bool, Option<Timestamp>), StoreError> {
    let released = store.next_release(last)?.is_some_and(|at| at <= now);
    let next = store.next_release(now.max(last))?;
    Ok((released, next))
}

pub async fn run(state: AppState, mut context: crate::engine::EngineContext) {
    let mut events = state.bus().subscribe();
    let mut last = now();
    while !context.stopping() {
        events.drain();
        let started = tokio::time::Instant::now();
        let store = Arc::clone(state.store());
        let at = now();
        let stepped = tokio::task::spawn_blocking(move || step(store.as_ref(), last, at)).await;
        let mut wait = LOOK_AGAIN;
        match stepped {
            Ok(Ok((released, next))) => {
                if released {
                    state.bus().publish(Event::Item { change: ItemChange::Released, seq: 0 });
                }
                last = at;
                if let Some(next) = next {
                    let until = Duration::from_micros(u64::try_from(next.micros() - at.micros()).unwrap_or(0));
                    wait = wait.min(until.max(Duration::from_millis(1)));
                }
            }
            Ok(Err(StoreError::Closed)) => return,
            Ok(Err(error)) => tracing::error!(%error, "could not look for releases"),
            Err(error) => tracing::error!(%error, "release task failed"),
        }
        // A new embargoed item or a changed agreement may bring the next release closer.
        let sooner = |event: &Event| {
            matches!(event, Event::Item { change: ItemChange::Stored | ItemChange::Corrected, .. })
                || *event == Event::Config(ConfigChange::Agreements)
        };
        tokio::select! {
            // A new item is looked at RELEASE_ROUND_GAP after the last look at most (a busy wire
            // would otherwise cost a query per publish); a known release is never waited past.
            _ = events.wait_for_from(started + RELEASE_ROUND_GAP, wait, sooner) => {}
            _ = context.stopped() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use karavan_domain::{CountryCode, LanguageTag, MemberName, PubStatus};
    use karavan_store::prelude::*;
    use karavan_store::{NewMember, NewVersion, SqliteConfig, SqliteStore};
    use serde_json::{Map, json};

    #[test]
    fn a_step_reports_the_releases_due_and_the_next_instant() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path())).unwrap();
        let owner = store
            .add_member(NewMember {
                name: MemberName::parse("Owner").unwrap(),
                country: CountryCode::parse("UZ").unwrap(),
                languages: vec![LanguageTag::parse("uz").unwrap()],
                contact: None,
            })
            .unwrap()
            .id;
        let t0 = now();
        let end = Timestamp(t0.micros() + 60_000_000);
        let mut document = Map::new();
        document.insert("uri".into(), json!("urn:release:step"));
        document.insert("headlines".into(), json!([{ "value": "Embargoed" }]));
        store
            .publish(NewVersion {
                owner,
                uri: "urn:release:step".into(),
                version: None,
                original: serde_json::Value::Object(document.clone()).to_string(),
                document,
                extensions: Map::new(),
                source_format: "ninjs 3.1".into(),
                pub_status: PubStatus::Usable,
                embargoed_until: Some(end),
                urgency: None,
                language: Some("uz".into()),
                item_type: Some("text".into()),
                version_created: None,
                subjects: Vec::new(),
            })
            .unwrap();
        // Before the end: nothing released, wake at the end.
        assert_eq!(step(&store, t0, Timestamp(t0.micros() + 1)).unwrap(), (false, Some(end)));
        // Past it: released once, nothing next; the step after releases nothing again.
        let after = Timestamp(end.micros() + 1);
        assert_eq!(step(&store, t0, after).unwrap(), (true, None));
        assert_eq!(step(&store, after, Timestamp(after.micros() + 1)).unwrap(), (false, None));
    }
}
