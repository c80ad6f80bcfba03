//! Stories: every stored item placed, within seconds, into the story of its event across agencies and
//! languages (`cluster.rs` decides; this engine feeds it the store in order and records what it
//! decides), and the reads that show a story to a reader through only the items that reader may see
//! (`view.rs`).
//!
//! The engine holds the store lease [`karavan_store::STORY_LEASE`]: one instance places items at a
//! time. It keeps the pool of active stories in memory and rebuilds it from the store when it starts
//! or finds that another instance has moved the position. An item is placed once the embedder has
//! embedded it, or after [`EMBEDDING_WAIT`] without its embedding (words, names and numbers then),
//! so that a busy embedder slows stories down but never stops them.

pub mod analytics;
pub mod cluster;
pub mod http;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use karavan_domain::{ItemId, PubStatus, StoryId, Timestamp};
use karavan_store::{Placement, STORY_LEASE, Store, StoreError, StoredVersion, StoryRound};

use crate::{AppState, now};
use cluster::{Clusterer, ItemInput, Params};

/// How long the lease is taken for; renewed once half of it has run.
const LEASE_TIME: Duration = Duration::from_secs(15);
/// Versions read per round.
const BATCH: u32 = 200;
/// How long an item waits for its embedding before it is placed without one.
pub const EMBEDDING_WAIT: Duration = Duration::from_secs(10);
/// The pool at start-up: stories with an item in this time before the newest story item.
const POOL_SPAN_MICROS: i64 = 2 * 72 * 3_600_000_000;
/// The most stories the pool is rebuilt with.
const POOL_STORIES: u32 = 20_000;
/// Stories up to this size have every item's centrality brought up to date when they change.
const RECENTRE_UP_TO: usize = 50;
/// The least time between two rounds that were not full.
const ROUND_GAP: Duration = Duration::from_millis(100);

/// What the clusterer is told about a stored version: its language, headline, other text and time.
pub struct ItemText {
    pub language: Option<String>,
    pub headline: String,
    pub text: String,
    pub at: i64,
}

impl ItemText {
    /// What the clusterer is told about the version this text is of.
    pub fn input<'a>(&'a self, version: &'a StoredVersion, dense: Option<&'a [f32]>) -> ItemInput<'a> {
        ItemInput {
            item: version.item_id.as_str(),
            language: self.language.as_deref(),
            headline: &self.headline,
            text: &self.text,
            at: self.at,
            dense,
        }
    }
}

/// An item's text as the clusterer reads it.
pub fn item_text(version: &StoredVersion) -> ItemText {
    let document = &version.document;
    let headline = crate::search::texts(document, "headlines").join("\n");
    let mut rest = crate::search::texts(document, "descriptions");
    rest.extend(crate::search::texts(document, "bodies"));
    let at = document
        .get("versionCreated")
        .and_then(serde_json::Value::as_str)
        .and_then(|text| Timestamp::parse_rfc3339("versionCreated", text).ok())
        .unwrap_or(version.committed_at)
        .micros();
    let language = document.get("language").and_then(serde_json::Value::as_str).map(str::to_string);
    ItemText { language, headline, text: rest.join("\n"), at }
}

/// The story engine's deterministic step and what it keeps between rounds.
pub struct StoryStep {
    holder: String,
    lease_until: Option<Timestamp>,
    clusterer: Option<Clusterer>,
    /// The position the pool reflects.
    position: i64,
}

impl StoryStep {
    pub fn new(state: &AppState) -> StoryStep {
        StoryStep { holder: state.holder("stories"), lease_until: None, clusterer: None, position: 0 }
    }

    /// One round under the lease (blocking): how many versions it took (0: caught up or waiting for
    /// embeddings); `None` when another instance holds the lease.
    pub fn step(&mut self, state: &AppState) -> Result<Option<usize>, StoreError> {
        let store = state.store().as_ref();
        let now = now();
        let half = LEASE_TIME.as_micros() as i64 / 2;
        if self.lease_until.is_none_or(|until| until.micros() - now.micros() < half) {
            let until = Timestamp(now.micros() + LEASE_TIME.as_micros() as i64);
            self.lease_until = None;
            if !store.acquire_lease(STORY_LEASE, &self.holder, now, until)? {
                self.clusterer = None;
                return Ok(None);
            }
            self.lease_until = Some(until);
        }
        let position = store.story_position()?;
        if self.clusterer.is_none() || position != self.position {
            self.clusterer = Some(rebuild(store, state.vectors(), position)?);
            self.position = position;
        }
        let clusterer = self.clusterer.as_mut().expect("the pool was just built");
        let page = store.current_versions_after(position, BATCH)?;
        let Some(scanned_to) = page.scanned_to else { return Ok(Some(0)) };
        // Embeddings: an item waits for the embedder while it is catching up, up to EMBEDDING_WAIT.
        let embedded_to = state.vectors().status().map(|(_, seq)| seq);
        let wait = EMBEDDING_WAIT.as_micros() as i64;
        let mut round = StoryRound::default();
        let mut through = position;
        let mut touched: Vec<String> = Vec::new();
        let (mut poisoned, mut skipped) = (false, 0);
        for version in &page.versions {
            if version.pub_status == PubStatus::Canceled {
                if let Some(story) = clusterer.remove(version.item_id.as_str()) {
                    touched.push(story);
                }
                round.removed.push(version.item_id.clone());
                through = version.seq;
                continue;
            }
            let dense = state.vectors().vector_of(version.item_id.as_str());
            let behind = embedded_to.is_some_and(|seq| seq < version.seq);
            if dense.is_none() && behind && now.micros() - version.committed_at.micros() < wait {
                // Not embedded yet: this round stops here and the next one takes it.
                break;
            }
            let text = item_text(version);
            let input = text.input(version, dense.as_deref());
            let mut created = None;
            let placed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                clusterer.assign(&input, || {
                    let id = new_story_id();
                    created = Some(id.clone());
                    id
                })
            }));
            let assignment = match placed {
                Ok(assignment) => assignment,
                Err(panic) => {
                    // An item the clusterer cannot take is set aside, not retried for ever; the pool
                    // is rebuilt from the store after this round.
                    let error = format!("story clustering panicked: {}", crate::panic_message(panic.as_ref()));
                    store.set_aside(STORY_WORK, version.seq, version.item_id.as_str(), Some(&version.owner), &error)?;
                    poisoned = true;
                    through = version.seq;
                    skipped += 1;
                    continue;
                }
            };
            if created.is_some() {
                round.created.push((parse_story(&assignment.story)?, Timestamp(text.at)));
            }
            for merged in &assignment.merged {
                round.merged.push((parse_story(merged)?, parse_story(&assignment.story)?));
            }
            round.placed.push(Placement {
                item: version.item_id.clone(),
                story: parse_story(&assignment.story)?,
                seq: version.seq,
                at: Timestamp(text.at),
                centrality: assignment.centrality,
            });
            touched.push(assignment.story);
            through = version.seq;
        }
        // The whole page was read (versions skipped as unreadable included) unless it stopped early.
        let taken = round.placed.len() + round.removed.len() + skipped;
        if taken == page.versions.len() {
            through = through.max(scanned_to);
        }
        if through == position {
            return Ok(Some(0));
        }
        touched.sort();
        touched.dedup();
        for story in touched {
            let items = clusterer.items_of(&story);
            if items.len() <= RECENTRE_UP_TO {
                for (item, centrality) in clusterer.centralities(&story) {
                    if let Ok(item) = ItemId::parse(&item) {
                        round.centrality.push((item, centrality));
                    }
                }
            }
        }
        let recorded = store.record_stories(&self.holder, through, round);
        if poisoned {
            self.clusterer = None;
        }
        if let Err(error) = recorded {
            // Taken over, or the write failed: the pool no longer matches the store.
            self.clusterer = None;
            self.lease_until = None;
            return Err(error);
        }
        self.position = through;
        Ok(Some(taken.max(1)))
    }
}

/// The work name under which versions the story engine could not place are set aside.
pub const STORY_WORK: &str = "stories";

/// A new story id (a ULID of now and fresh randomness).
fn new_story_id() -> String {
    let mut random = [0u8; 10];
    if getrandom::fill(&mut random).is_err() {
        // Without the system's randomness the clock's nanoseconds keep ids apart within a millisecond.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        random.copy_from_slice(&nanos.to_le_bytes()[..10]);
    }
    let millis = (now().micros() / 1000).max(0) as u64;
    StoryId::new(karavan_domain::Ulid::from_parts(millis, random)).to_string()
}

fn parse_story(id: &str) -> Result<StoryId, StoreError> {
    StoryId::parse(id).map_err(|e| StoreError::Corrupt(format!("story id {id:?}: {e}")))
}

/// The pool as the store says it was: the stories with recent items, their items placed back in the
/// order they were stored (their current versions, read again from the store up to `position`).
fn rebuild(store: &dyn Store, vectors: &crate::semantic::Vectors, position: i64) -> Result<Clusterer, StoreError> {
    let mut clusterer = Clusterer::new(Params::default());
    if position == 0 {
        return Ok(clusterer);
    }
    // The newest story item's time, from the newest stories.
    let newest = store.stories_active_since(Timestamp(i64::MIN / 2), 1)?;
    let Some(latest) = newest.first().and_then(|s| s.members.iter().map(|m| m.at.micros()).max()) else {
        return Ok(clusterer);
    };
    let stories = store.stories_active_since(Timestamp(latest - POOL_SPAN_MICROS), POOL_STORIES)?;
    let mut story_of: HashMap<String, String> = HashMap::new();
    let mut lowest = i64::MAX;
    for story in &stories {
        for member in &story.members {
            story_of.insert(member.item.to_string(), story.id.to_string());
            lowest = lowest.min(member.seq);
        }
    }
    if story_of.is_empty() {
        return Ok(clusterer);
    }
    let mut after = lowest - 1;
    while after < position {
        let page = store.current_versions_after(after, 1000)?;
        let Some(scanned_to) = page.scanned_to else { break };
        for version in page.versions.iter().filter(|v| v.seq <= position) {
            let Some(story) = story_of.get(version.item_id.as_str()) else { continue };
            if version.pub_status == PubStatus::Canceled {
                continue;
            }
            let text = item_text(version);
            let dense = vectors.vector_of(version.item_id.as_str());
            let input = text.input(version, dense.as_deref());
            clusterer.restore(&input, story);
        }
        after = scanned_to;
    }
    Ok(clusterer)
}

/// The story engine: places new items while the server runs, woken by publishes.
pub async fn run(state: AppState, mut context: crate::engine::EngineContext) {
    let holder = state.holder("stories");
    let mut events = state.bus().subscribe();
    let mut step = Some(StoryStep::new(&state));
    loop {
        if context.stopping() {
            let store = Arc::clone(state.store());
            let holder = holder.clone();
            let _ = tokio::task::spawn_blocking(move || store.release_lease(STORY_LEASE, &holder)).await;
            return;
        }
        events.drain();
        let started = tokio::time::Instant::now();
        let mut taken = step.take().unwrap_or_else(|| StoryStep::new(&state));
        let state_ = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = taken.step(&state_);
            (result, taken)
        })
        .await;
        let busy = match outcome {
            Ok((result, returned)) => {
                step = Some(returned);
                match result {
                    Ok(Some(n)) => n > 0,
                    Ok(None) => false,
                    Err(error) => {
                        tracing::error!(%error, "placing items into stories failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                            _ = context.stopped() => {}
                        }
                        false
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "the story step panicked; starting it again");
                false
            }
        };
        if !busy {
            // Woken by a publish, or every second (items waiting for their embedding, another
            // instance's lease running out).
            tokio::select! {
                _ = events.wait_for_from(started + ROUND_GAP, Duration::from_secs(1), crate::bus::is_item) => {}
                _ = context.stopped() => {}
            }
        }
    }
}
