//! Stories in SQLite (migration 16): which story each item is in, stories merged into others (their
//! ids redirect), and how far the story engine has read the store. Only the engine holding the
//! stories lease writes here; readers see stories through the items they may see.

use karavan_domain::{ItemId, StoryId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, corrupt, now_micros};
use crate::{Result, StoredStory, StoryLookup, StoryMember, StoryRound};

/// The story a merged story's id leads to, following merges (at most a few hops; a cycle, which the
/// engine never writes, ends the walk).
fn final_story(connection: &Connection, id: &str) -> Result<Option<(String, bool)>> {
    let mut current = id.to_string();
    let mut moved = false;
    for _ in 0..32 {
        let merged: Option<Option<String>> = connection
            .prepare_cached("SELECT merged_into FROM stories WHERE id = ?1")?
            .query_row([&current], |row| row.get(0))
            .optional()?;
        match merged {
            None => return Ok(None),
            Some(None) => return Ok(Some((current, moved))),
            Some(Some(next)) => {
                current = next;
                moved = true;
            }
        }
    }
    Ok(None)
}

fn members(connection: &Connection, story: &str) -> Result<Vec<StoryMember>> {
    let mut statement = connection.prepare_cached(
        "SELECT item_id, at, centrality, seq FROM story_items WHERE story_id = ?1 ORDER BY at DESC, item_id DESC",
    )?;
    let rows = statement.query_map([story], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, f64>(2)?, row.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (item, at, centrality, seq) = row?;
        out.push(StoryMember {
            item: ItemId::parse(&item).map_err(|e| corrupt("story item", e))?,
            seq,
            at: Timestamp(at),
            centrality: centrality as f32,
        });
    }
    Ok(out)
}

fn stored(connection: &Connection, id: &str) -> Result<Option<StoredStory>> {
    let created: Option<i64> = connection
        .prepare_cached("SELECT created_at FROM stories WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    let Some(created) = created else { return Ok(None) };
    Ok(Some(StoredStory {
        id: StoryId::parse(id).map_err(|e| corrupt("story id", e))?,
        created_at: Timestamp(created),
        members: members(connection, id)?,
    }))
}

impl SqliteStore {
    pub(super) fn story_position_in(&self) -> Result<i64> {
        self.read(|connection| {
            Ok(connection
                .query_row("SELECT seq FROM story_position WHERE id = 1", [], |row| row.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    pub(super) fn record_stories_in(&self, holder: &str, through: i64, round: StoryRound) -> Result<()> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            let now = now_micros();
            if !super::leases::holds(connection, crate::STORY_LEASE, &holder, now)? {
                return Err(crate::common::lost("the stories"));
            }
            for (id, at) in &round.created {
                connection
                    .prepare_cached("INSERT INTO stories (id, created_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")?
                    .execute(params![id.as_str(), at.micros()])?;
            }
            for item in &round.removed {
                connection.prepare_cached("DELETE FROM story_items WHERE item_id = ?1")?.execute([item.as_str()])?;
            }
            for placement in &round.placed {
                connection
                    .prepare_cached(
                        "INSERT INTO story_items (item_id, story_id, seq, at, centrality, placed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (item_id) DO UPDATE SET story_id = excluded.story_id, seq = excluded.seq,
                            at = excluded.at, centrality = excluded.centrality, placed_at = excluded.placed_at",
                    )?
                    .execute(params![
                        placement.item.as_str(),
                        placement.story.as_str(),
                        placement.seq,
                        placement.at.micros(),
                        f64::from(placement.centrality),
                        now,
                    ])?;
            }
            for (item, centrality) in &round.centrality {
                connection
                    .prepare_cached("UPDATE story_items SET centrality = ?2 WHERE item_id = ?1")?
                    .execute(params![item.as_str(), f64::from(*centrality)])?;
            }
            for (from, into) in &round.merged {
                if from == into {
                    continue;
                }
                connection
                    .prepare_cached("UPDATE story_items SET story_id = ?2 WHERE story_id = ?1")?
                    .execute(params![from.as_str(), into.as_str()])?;
                connection
                    .prepare_cached("UPDATE stories SET merged_into = ?2 WHERE id = ?1 OR merged_into = ?1")?
                    .execute(params![from.as_str(), into.as_str()])?;
            }
            connection
                .prepare_cached(
                    "INSERT INTO story_position (id, seq) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                )?
                .execute([through])?;
            Ok(())
        })
    }

    pub(super) fn story_in(&self, id: &StoryId) -> Result<StoryLookup> {
        let id = id.to_string();
        self.read(move |connection| {
            Ok(match final_story(connection, &id)? {
                None => StoryLookup::NotFound,
                Some((found, true)) => StoryLookup::Merged(StoryId::parse(&found).map_err(|e| corrupt("story id", e))?),
                Some((found, false)) => match stored(connection, &found)? {
                    Some(story) => StoryLookup::Found(story),
                    None => StoryLookup::NotFound,
                },
            })
        })
    }

    pub(super) fn stories_of_in(&self, items: &[ItemId]) -> Result<Vec<(ItemId, StoryId)>> {
        let items = items.to_vec();
        self.read(move |connection| {
            let mut statement = connection.prepare_cached("SELECT story_id FROM story_items WHERE item_id = ?1")?;
            let mut out = Vec::new();
            for item in items {
                let story: Option<String> = statement.query_row([item.as_str()], |row| row.get(0)).optional()?;
                if let Some(story) = story {
                    out.push((item, StoryId::parse(&story).map_err(|e| corrupt("story id", e))?));
                }
            }
            Ok(out)
        })
    }

    pub(super) fn stories_active_since_in(&self, since: Timestamp, limit: u32) -> Result<Vec<StoredStory>> {
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT story_id, MAX(at) AS last FROM story_items WHERE at >= ?1
                 GROUP BY story_id ORDER BY last DESC LIMIT ?2",
            )?;
            let ids: Vec<String> = statement
                .query_map(params![since.micros(), i64::from(limit)], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(story) = stored(connection, &id)? {
                    out.push(story);
                }
            }
            Ok(out)
        })
    }
}
