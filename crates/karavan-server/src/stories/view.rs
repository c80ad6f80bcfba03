//! A story as one reader sees it: only the items the reader may see (read through the store's
//! visibility rule, by the story's item ids), so that nothing about a story (that it exists, its size,
//! languages, agencies, timeline, title, whether it is breaking) tells of an item the reader may not
//! see: an embargoed item counts for nobody but its owner until it is released. A story with no item
//! the reader may see does not exist for them.
//!
//! Lists: newest activity walks the reader's own wire newest first and takes each story the first time
//! one of its items comes up (a story's place is its newest visible item, so pages follow from a wire
//! cursor without repeats); size and growth count the reader's visible items of a time window.

use std::collections::{BTreeSet, HashMap, HashSet};

use karavan_domain::{ItemId, MemberId, StoryId, Timestamp};
use karavan_store::{Cursor, ListQuery, Page, Store, StoredStory, StoredVersion, StoryLookup};

use crate::language::LanguageModels;

/// The most items of a story shown (the newest).
pub const MAX_ITEMS: u32 = 1000;
/// How many of the reader's newest items a list by size or growth counts at most.
const MAX_COUNTED: usize = 20_000;
/// Items read per step of a list's walk through the reader's wire.
const WALK_PAGE: u32 = 200;

/// Counts by key, largest first.
pub type Counts = Vec<(String, usize)>;

/// One item of a story as the reader sees it.
#[derive(Debug, Clone)]
pub struct StoryItem {
    pub version: StoredVersion,
    /// When the reader could first see it (its place on the reader's wire).
    pub cursor: Cursor,
    /// `versionCreated` (µs).
    pub at: i64,
    pub language: String,
    pub headline: String,
    pub centrality: f32,
}

/// A story as one reader sees it.
#[derive(Debug, Clone)]
pub struct StoryView {
    pub id: StoryId,
    /// Newest first.
    pub items: Vec<StoryItem>,
    /// The most central visible item (its headline is the story's title).
    pub central: usize,
    pub breaking: bool,
}

impl StoryView {
    pub fn title(&self) -> &StoryItem {
        &self.items[self.central]
    }

    pub fn first_at(&self) -> i64 {
        self.items.iter().map(|i| i.at).min().unwrap_or_default()
    }

    pub fn last_at(&self) -> i64 {
        self.items.iter().map(|i| i.at).max().unwrap_or_default()
    }

    /// The story's place on the reader's wire: its newest visible item's.
    pub fn newest(&self) -> Cursor {
        self.items.iter().map(|i| i.cursor).max().unwrap_or(Cursor { at: Timestamp(0), seq: 0 })
    }

    /// The agencies that reported it, in the order they first did.
    pub fn members(&self) -> Vec<MemberId> {
        let mut seen = HashSet::new();
        let mut oldest_first: Vec<&StoryItem> = self.items.iter().collect();
        oldest_first.sort_by_key(|i| (i.at, i.version.seq));
        oldest_first.iter().filter(|i| seen.insert(i.version.owner.clone())).map(|i| i.version.owner.clone()).collect()
    }

    pub fn languages(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| i.language.clone())
            .filter(|l| !l.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Items per agency and per language: (key, count), largest first.
    pub fn coverage(&self) -> (Counts, Counts) {
        let count = |keys: Vec<String>| {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for key in keys {
                *counts.entry(key).or_default() += 1;
            }
            let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
            counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            counts
        };
        (
            count(self.items.iter().map(|i| i.version.owner.to_string()).collect()),
            count(self.items.iter().map(|i| i.language.clone()).collect()),
        )
    }
}

/// Whether a story's visible items say it is breaking: at least three items in the last hour, from at
/// least two agencies, at least three times the story's own hourly rate over the day before.
pub fn is_breaking(items: &[StoryItem], now: Timestamp) -> bool {
    const HOUR: i64 = 3_600_000_000;
    let recent: Vec<&StoryItem> = items.iter().filter(|i| i.cursor.at.micros() > now.micros() - HOUR).collect();
    let earlier = items
        .iter()
        .filter(|i| {
            let at = i.cursor.at.micros();
            at <= now.micros() - HOUR && at > now.micros() - 24 * HOUR
        })
        .count();
    let agencies: HashSet<&MemberId> = recent.iter().map(|i| &i.version.owner).collect();
    let before_per_hour = earlier as f64 / 23.0;
    recent.len() >= 3 && agencies.len() >= 2 && recent.len() as f64 >= 3.0 * (before_per_hour + 0.5)
}

/// A stored story as `viewer` sees it; `None` when they may see none of its items.
pub fn view(
    store: &dyn Store,
    viewer: &MemberId,
    story: &StoredStory,
    now: Timestamp,
) -> karavan_store::Result<Option<StoryView>> {
    let centrality: HashMap<&ItemId, f32> = story.members.iter().map(|m| (&m.item, m.centrality)).collect();
    let mut query = ListQuery::newest(MAX_ITEMS);
    query.items = Some(story.members.iter().take(MAX_ITEMS as usize).map(|m| m.item.clone()).collect());
    let listed = store.list(viewer, &query, now)?;
    if listed.entries.is_empty() {
        return Ok(None);
    }
    let mut items: Vec<StoryItem> = listed
        .entries
        .into_iter()
        .map(|entry| {
            let text = super::item_text(&entry.version);
            let centrality = centrality.get(&entry.version.item_id).copied().unwrap_or_default();
            StoryItem {
                cursor: entry.cursor,
                at: text.at,
                language: text.language.unwrap_or_default(),
                headline: text.headline,
                centrality,
                version: entry.version,
            }
        })
        .collect();
    items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.version.seq.cmp(&a.version.seq)));
    // The most central; on a tie, the earliest report.
    let central = (0..items.len())
        .max_by(|&a, &b| {
            items[a].centrality.total_cmp(&items[b].centrality).then_with(|| items[b].at.cmp(&items[a].at))
        })
        .unwrap_or(0);
    let breaking = is_breaking(&items, now);
    Ok(Some(StoryView { id: story.id.clone(), items, central, breaking }))
}

/// What a story id is for a reader.
#[derive(Debug)]
pub enum Found {
    Story(Box<StoryView>),
    /// Merged into another story the reader may see.
    Moved(StoryId),
    NotFound,
}

/// A story by id as `viewer` sees it. A merged story's id leads to the story it joined, if the reader
/// may see that one (otherwise it is not found, like any story without visible items).
pub fn story(store: &dyn Store, viewer: &MemberId, id: &StoryId, now: Timestamp) -> karavan_store::Result<Found> {
    match store.story(id)? {
        StoryLookup::NotFound => Ok(Found::NotFound),
        StoryLookup::Merged(into) => match store.story(&into)? {
            StoryLookup::Found(stored) if view(store, viewer, &stored, now)?.is_some() => Ok(Found::Moved(into)),
            _ => Ok(Found::NotFound),
        },
        StoryLookup::Found(stored) => Ok(match view(store, viewer, &stored, now)? {
            Some(view) => Found::Story(Box::new(view)),
            None => Found::NotFound,
        }),
    }
}

/// The story of an item `viewer` may see; `Ok(None)` while it is not placed yet (or the item is not
/// one the reader may see: the caller checks the item first).
pub fn story_of_item(
    store: &dyn Store,
    viewer: &MemberId,
    item: &ItemId,
    now: Timestamp,
) -> karavan_store::Result<Option<StoryView>> {
    let Some((_, id)) = store.stories_of(std::slice::from_ref(item))?.into_iter().next() else { return Ok(None) };
    match store.story(&id)? {
        StoryLookup::Found(stored) => view(store, viewer, &stored, now),
        _ => Ok(None),
    }
}

/// How a list of stories is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest visible item first.
    Activity,
    /// Most visible items in the window first.
    Size,
    /// Most visible items in the window's last day, against the day before, first.
    Growth,
}

/// A list of stories: filters as the wire's (a story is listed when one of its visible items
/// matches), the order, the page.
#[derive(Debug, Clone)]
pub struct StoryListQuery {
    pub limit: u32,
    /// A token from a previous page's `next`.
    pub cursor: Option<String>,
    pub languages: Vec<String>,
    pub member: Option<MemberId>,
    pub subjects: Vec<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub sort: Sort,
}

/// A page of stories and the token of the next, if any.
#[derive(Debug)]
pub struct StoryPage {
    pub stories: Vec<StoryView>,
    pub next: Option<String>,
}

fn wire_query(query: &StoryListQuery, limit: u32) -> ListQuery {
    let mut list = ListQuery::newest(limit);
    list.languages = query.languages.clone();
    list.owner = query.member.clone();
    list.subjects = query.subjects.clone();
    list.from = query.from;
    list.to = query.to;
    list
}

/// The stories of a page of the reader's wire, by item.
fn stories_of_page(
    store: &dyn Store,
    listed: &karavan_store::ListPage,
) -> karavan_store::Result<HashMap<ItemId, StoryId>> {
    let ids: Vec<ItemId> = listed.entries.iter().map(|e| e.version.item_id.clone()).collect();
    Ok(store.stories_of(&ids)?.into_iter().collect())
}

/// Stories for `viewer`, as asked.
pub fn list(
    store: &dyn Store,
    viewer: &MemberId,
    query: &StoryListQuery,
    now: Timestamp,
) -> Result<StoryPage, crate::error::ApiError> {
    let limit = query.limit.clamp(1, 100) as usize;
    match query.sort {
        Sort::Activity => list_by_activity(store, viewer, query, limit, now),
        Sort::Size | Sort::Growth => list_by_count(store, viewer, query, limit, now),
    }
}

fn list_by_activity(
    store: &dyn Store,
    viewer: &MemberId,
    query: &StoryListQuery,
    limit: usize,
    now: Timestamp,
) -> Result<StoryPage, crate::error::ApiError> {
    let after = match &query.cursor {
        Some(token) => Some(Cursor::parse_token(token).ok_or_else(|| {
            crate::error::ApiError::invalid("cursor: not a cursor of this list (use the `next` it gave)")
        })?),
        None => None,
    };
    let mut wire = wire_query(query, WALK_PAGE);
    wire.page = Page::NewestFirst(after);
    let mut seen: HashSet<StoryId> = HashSet::new();
    let mut stories = Vec::new();
    // Bounded: at most this many of the reader's items are walked for one page.
    for _ in 0..50 {
        let listed = store.list(viewer, &wire, now)?;
        let placed = stories_of_page(store, &listed)?;
        for entry in &listed.entries {
            let Some(id) = placed.get(&entry.version.item_id) else { continue };
            if !seen.insert(id.clone()) {
                continue;
            }
            let StoryLookup::Found(stored) = store.story(id)? else { continue };
            let Some(view) = view(store, viewer, &stored, now)? else { continue };
            // Listed on an earlier page: its newest item is newer than where this page starts.
            if after.is_some_and(|after| view.newest() >= after) {
                continue;
            }
            stories.push(view);
            if stories.len() == limit {
                let next = stories.last().map(|s| s.newest().to_token());
                return Ok(StoryPage { stories, next });
            }
        }
        match listed.next {
            Some(next) => wire.page = Page::NewestFirst(Some(next)),
            None => break,
        }
    }
    Ok(StoryPage { stories, next: None })
}

fn list_by_count(
    store: &dyn Store,
    viewer: &MemberId,
    query: &StoryListQuery,
    limit: usize,
    now: Timestamp,
) -> Result<StoryPage, crate::error::ApiError> {
    const DAY: i64 = 24 * 3_600_000_000;
    let offset: usize = match &query.cursor {
        Some(token) => token.strip_prefix("o").and_then(|n| n.parse().ok()).ok_or_else(|| {
            crate::error::ApiError::invalid("cursor: not a cursor of this list (use the `next` it gave)")
        })?,
        None => 0,
    };
    // The window: as asked, else the last seven days.
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(Timestamp(to.micros() - 7 * DAY));
    let mut windowed = query.clone();
    windowed.from = Some(from);
    windowed.to = Some(to);
    let mut wire = wire_query(&windowed, 1000);
    let mut counts: HashMap<StoryId, (usize, i64, i64)> = HashMap::new();
    let mut counted = 0;
    loop {
        let listed = store.list(viewer, &wire, now)?;
        let placed = stories_of_page(store, &listed)?;
        for entry in &listed.entries {
            let Some(id) = placed.get(&entry.version.item_id) else { continue };
            let at = entry.cursor.at.micros();
            let slot = counts.entry(id.clone()).or_default();
            slot.0 += 1;
            if at > to.micros() - DAY {
                slot.1 += 1;
            } else if at > to.micros() - 2 * DAY {
                slot.2 += 1;
            }
        }
        counted += listed.entries.len();
        match listed.next {
            Some(next) if counted < MAX_COUNTED => wire.page = Page::NewestFirst(Some(next)),
            _ => break,
        }
    }
    let mut ranked: Vec<(StoryId, (usize, i64, i64))> = counts.into_iter().collect();
    match query.sort {
        Sort::Growth => ranked.sort_by(|a, b| {
            (b.1.1 - b.1.2).cmp(&(a.1.1 - a.1.2)).then(b.1.0.cmp(&a.1.0)).then_with(|| a.0.as_str().cmp(b.0.as_str()))
        }),
        _ => ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.as_str().cmp(b.0.as_str()))),
    }
    let mut stories = Vec::new();
    for (id, _) in ranked.iter().skip(offset).take(limit) {
        if let StoryLookup::Found(stored) = store.story(id)?
            && let Some(view) = view(store, viewer, &stored, now)?
        {
            stories.push(view);
        }
    }
    let next = (ranked.len() > offset + limit).then(|| format!("o{}", offset + limit));
    Ok(StoryPage { stories, next })
}

/// The stored translations of the stories' titles into `language` (by version seq: headline, model).
pub fn translated_titles(
    store: &dyn Store,
    models: &LanguageModels,
    viewer: &MemberId,
    stories: &[&StoryView],
    language: &str,
) -> karavan_store::Result<HashMap<i64, (String, String)>> {
    let versions: Vec<&StoredVersion> = stories.iter().map(|s| &s.title().version).collect();
    crate::translation::listed_headlines(store, models, viewer, &versions, language)
}
