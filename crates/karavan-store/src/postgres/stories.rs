//! Stories in PostgreSQL (migration 6; SQLite's 16): which story each item is in, stories merged into
//! others (their ids redirect), and how far the story engine has read the store. Only the engine
//! holding the stories lease writes here; readers see stories through the items they may see.

use karavan_domain::{ItemId, StoryId, Timestamp};

use super::PostgresStore;
use super::db::Db;
use crate::common::{corrupt, now_micros};
use crate::{Result, StoredStory, StoryLookup, StoryMember, StoryRound};

/// The story a merged story's id leads to, following merges (a cycle, never written, ends the walk).
fn final_story(db: &mut Db<'_, '_>, id: &str) -> Result<Option<(String, bool)>> {
    let mut current = id.to_string();
    let mut moved = false;
    for _ in 0..32 {
        let row = db.query_opt("SELECT merged_into FROM stories WHERE id = $1", &[&current])?;
        let Some(row) = row else { return Ok(None) };
        match row.try_get::<_, Option<String>>(0)? {
            None => return Ok(Some((current, moved))),
            Some(next) => {
                current = next;
                moved = true;
            }
        }
    }
    Ok(None)
}

fn stored(db: &mut Db<'_, '_>, id: &str) -> Result<Option<StoredStory>> {
    let Some(row) = db.query_opt("SELECT created_at FROM stories WHERE id = $1", &[&id])? else { return Ok(None) };
    let created: i64 = row.try_get(0)?;
    let rows = db.query(
        "SELECT item_id, at, centrality, seq FROM story_items WHERE story_id = $1 ORDER BY at DESC, item_id DESC",
        &[&id],
    )?;
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        let item: String = row.try_get(0)?;
        members.push(StoryMember {
            item: ItemId::parse(&item).map_err(|e| corrupt("story item", e))?,
            seq: row.try_get(3)?,
            at: Timestamp(row.try_get(1)?),
            centrality: row.try_get::<_, f64>(2)? as f32,
        });
    }
    Ok(Some(StoredStory {
        id: StoryId::parse(id).map_err(|e| corrupt("story id", e))?,
        created_at: Timestamp(created),
        members,
    }))
}

impl PostgresStore {
    pub(super) fn story_position_in(&self) -> Result<i64> {
        self.read(|db| {
            let row = db.query_opt("SELECT seq FROM story_position WHERE id = 1", &[])?;
            Ok(match row {
                Some(row) => row.try_get(0)?,
                None => 0,
            })
        })
    }

    pub(super) fn record_stories_in(&self, holder: &str, through: i64, round: StoryRound) -> Result<()> {
        let holder = holder.to_string();
        self.writer.run(move |db| {
            let now = now_micros();
            if !super::leases::holds(db, crate::STORY_LEASE, &holder, now)? {
                return Err(crate::common::lost("the stories"));
            }
            for (id, at) in &round.created {
                db.execute(
                    "INSERT INTO stories (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                    &[&id.as_str(), &at.micros()],
                )?;
            }
            for item in &round.removed {
                db.execute("DELETE FROM story_items WHERE item_id = $1", &[&item.as_str()])?;
            }
            for placement in &round.placed {
                db.execute(
                    "INSERT INTO story_items (item_id, story_id, seq, at, centrality, placed_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (item_id) DO UPDATE SET story_id = excluded.story_id, seq = excluded.seq,
                        at = excluded.at, centrality = excluded.centrality, placed_at = excluded.placed_at",
                    &[
                        &placement.item.as_str(),
                        &placement.story.as_str(),
                        &placement.seq,
                        &placement.at.micros(),
                        &f64::from(placement.centrality),
                        &now,
                    ],
                )?;
            }
            for (item, centrality) in &round.centrality {
                db.execute(
                    "UPDATE story_items SET centrality = $2 WHERE item_id = $1",
                    &[&item.as_str(), &f64::from(*centrality)],
                )?;
            }
            for (from, into) in &round.merged {
                if from == into {
                    continue;
                }
                db.execute(
                    "UPDATE story_items SET story_id = $2 WHERE story_id = $1",
                    &[&from.as_str(), &into.as_str()],
                )?;
                db.execute(
                    "UPDATE stories SET merged_into = $2 WHERE id = $1 OR merged_into = $1",
                    &[&from.as_str(), &into.as_str()],
                )?;
            }
            db.execute(
                "INSERT INTO story_position (id, seq) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET seq = GREATEST(story_position.seq, excluded.seq)",
                &[&through],
            )?;
            Ok(())
        })
    }

    pub(super) fn story_in(&self, id: &StoryId) -> Result<StoryLookup> {
        let id = id.to_string();
        self.read(move |db| {
            Ok(match final_story(db, &id)? {
                None => StoryLookup::NotFound,
                Some((found, true)) => StoryLookup::Merged(StoryId::parse(&found).map_err(|e| corrupt("story id", e))?),
                Some((found, false)) => match stored(db, &found)? {
                    Some(story) => StoryLookup::Found(story),
                    None => StoryLookup::NotFound,
                },
            })
        })
    }

    pub(super) fn stories_of_in(&self, items: &[ItemId]) -> Result<Vec<(ItemId, StoryId)>> {
        let ids: Vec<String> = items.iter().map(ToString::to_string).collect();
        self.read(move |db| {
            let rows =
                db.query("SELECT item_id, story_id FROM story_items WHERE item_id = ANY($1::text[])", &[&ids])?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (item, story): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                out.push((
                    ItemId::parse(&item).map_err(|e| corrupt("story item", e))?,
                    StoryId::parse(&story).map_err(|e| corrupt("story id", e))?,
                ));
            }
            Ok(out)
        })
    }

    pub(super) fn stories_active_since_in(&self, since: Timestamp, limit: u32) -> Result<Vec<StoredStory>> {
        self.read(move |db| {
            let rows = db.query(
                "SELECT story_id, MAX(at) AS last FROM story_items WHERE at >= $1
                 GROUP BY story_id ORDER BY last DESC LIMIT $2",
                &[&since.micros(), &i64::from(limit)],
            )?;
            let ids: Vec<String> = rows.iter().map(|row| row.try_get(0)).collect::<std::result::Result<_, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(story) = stored(db, &id)? {
                    out.push(story);
                }
            }
            Ok(out)
        })
    }
}
