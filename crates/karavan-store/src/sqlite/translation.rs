//! Machine translation in SQLite (migrations 7 and 13): the languages members read, their glossaries,
//! the durable job queue, the translations made and the segment cache.
//!
//! Jobs are written in the publish's own transaction (`enqueue_for_version`), two per version and
//! target language, a head and a body (`UNIQUE (seq, language, part)`), so none is lost and none is
//! made twice. A worker claims a job by leasing it (`state = 'running'`, `due_at` = the lease's end); a
//! worker that dies leaves the lease to run out and the job is claimed again. Translations are stored
//! one row per part and merged when read.

use crate::common::*;
use crate::common::{JOB_ORDER, RawTranslation};
use karavan_domain::{MemberId, PubStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, corrupt, load_version, now_micros};
use crate::{
    ClaimLimits, Glossary, GlossaryTerm, JobOutcome, PartCounts, Result, StoreError, StoredTranslation, TranslationJob,
    TranslationPart, TranslationProgress,
};

/// Queues translation jobs for a version just stored (in its transaction): a head and a body job per
/// language read by a member who may ever see it (its owner, and members the owner shares with) and
/// not already the item's language. Kills are not translated.
pub(super) fn enqueue_for_version(
    connection: &Connection,
    seq: i64,
    owner: &MemberId,
    language: Option<&str>,
    pub_status: PubStatus,
    urgency: Option<i64>,
    now: i64,
) -> Result<()> {
    if pub_status == PubStatus::Canceled {
        return Ok(());
    }
    let languages: Vec<String> = connection
        .prepare_cached(
            "SELECT DISTINCT language FROM member_read_languages
             WHERE member_id = ?1
                OR member_id IN (SELECT grantee FROM agreements WHERE grantor = ?1 AND revoked_at IS NULL)
                OR EXISTS (SELECT 1 FROM agreements WHERE grantor = ?1 AND grantee = '*' AND revoked_at IS NULL)",
        )?
        .query_map([owner.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO translation_jobs (seq, language, part, state, due_at, created_at, urgency)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?5)
         ON CONFLICT (seq, language, part) DO NOTHING",
    )?;
    for target in languages {
        if language.is_some_and(|l| karavan_domain::same_language(l, &target)) {
            continue;
        }
        for part in TranslationPart::ALL {
            insert.execute(params![seq, target, part.as_str(), now, urgency])?;
        }
    }
    Ok(())
}

fn glossary_rows(connection: &Connection, filter: &str, values: &[&dyn rusqlite::ToSql]) -> Result<Vec<Glossary>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT member_id, source_language, target_language, source, target, updated_at FROM glossary_terms
         {filter} ORDER BY member_id, source_language, target_language, position"
    ))?;
    let rows = statement
        .query_map(values, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out: Vec<Glossary> = Vec::new();
    for (member, source_language, target_language, source, target, updated_at) in rows {
        let member = MemberId::parse(&member).map_err(|e| corrupt("glossary member", e))?;
        let term = GlossaryTerm { source, target };
        match out.last_mut() {
            Some(last)
                if last.member == member
                    && last.source_language == source_language
                    && last.target_language == target_language =>
            {
                last.terms.push(term);
            }
            _ => out.push(Glossary {
                member,
                source_language,
                target_language,
                terms: vec![term],
                updated_at: Timestamp(updated_at),
            }),
        }
    }
    Ok(out)
}

fn translation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTranslation> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn insert_translation(connection: &Connection, translation: &StoredTranslation) -> Result<()> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO translations (seq, language, variant, part, source_language, model, fields, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (seq, language, variant, part) DO UPDATE SET source_language = excluded.source_language,
            model = excluded.model, fields = excluded.fields, created_at = excluded.created_at",
    )?;
    for (part, fields) in translation_rows(translation)? {
        insert.execute(params![
            translation.seq,
            translation.language,
            translation.variant,
            part.as_str(),
            translation.source_language,
            translation.model,
            fields,
            translation.created_at.micros(),
        ])?;
    }
    Ok(())
}

/// Claims up to `limit` due jobs of one part, in the claim order.
fn claim_part(
    connection: &Connection,
    part: TranslationPart,
    holder: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut claimed: Vec<Claimed> = connection
        .prepare_cached(&format!(
            "UPDATE translation_jobs SET state = 'running', attempts = attempts + 1, due_at = ?2,
                lease_holder = ?4, started_at = ?1
             WHERE id IN (SELECT id FROM translation_jobs
                          WHERE part = ?5 AND state IN ('queued', 'running') AND due_at <= ?1
                          ORDER BY {JOB_ORDER} LIMIT ?3)
             RETURNING id, seq, language, attempts, wanted_at IS NULL, COALESCE(urgency, 10), created_at"
        ))?
        .query_map(params![now, lease_until, limit, holder, part.as_str()], |row| {
            let id: i64 = row.get(0)?;
            Ok((id, row.get(1)?, row.get(2)?, row.get(3)?, (row.get(4)?, row.get(5)?, row.get(6)?, id)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // `RETURNING` has no order.
    claimed.sort_by_key(|claimed| claimed.4);
    Ok(claimed)
}

/// Whether a job of `part` is due at `now` and not held.
fn any_due(connection: &Connection, part: TranslationPart, now: i64) -> Result<bool> {
    Ok(connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM translation_jobs WHERE part = ?1 AND state IN ('queued', 'running')
                AND due_at <= ?2)",
        )?
        .query_row(params![part.as_str(), now], |row| row.get(0))?)
}

/// Due queued jobs of `part` that a claim takes before the job whose order key is `before` (every one
/// for [`LAST`]), leaving out other members' items under embargo.
fn count_ahead(
    connection: &Connection,
    part: TranslationPart,
    before: OrderKey,
    viewer: &MemberId,
    now: i64,
) -> Result<u64> {
    let count: i64 = connection
        .prepare_cached(
            "SELECT COUNT(*) FROM translation_jobs j JOIN versions v ON v.seq = j.seq JOIN items i ON i.id = v.item_id
             WHERE j.part = ?1 AND j.state = 'queued' AND j.due_at <= ?2
               AND ((j.wanted_at IS NULL), COALESCE(j.urgency, 10), j.created_at, j.id) < (?4, ?5, ?6, ?7)
               AND (i.owner = ?3 OR v.embargoed_until IS NULL OR v.embargoed_until <= ?2)",
        )?
        .query_row(params![part.as_str(), now, viewer.as_str(), before.0, before.1, before.2, before.3], |row| {
            row.get(0)
        })?;
    Ok(u64::try_from(count).unwrap_or(0))
}

impl SqliteStore {
    pub(super) fn read_languages_in(&self, member: &MemberId) -> Result<Vec<String>> {
        let member = member.clone();
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT language FROM member_read_languages WHERE member_id = ?1 ORDER BY language")?;
            let languages =
                statement.query_map([member.as_str()], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(languages)
        })
    }

    pub(super) fn set_read_languages_in(&self, member: &MemberId, languages: Vec<String>) -> Result<()> {
        let member = member.clone();
        self.writer.run(move |connection, _| {
            super::require_member(connection, &member, "")?;
            connection.execute("DELETE FROM member_read_languages WHERE member_id = ?1", [member.as_str()])?;
            let mut insert = connection
                .prepare_cached("INSERT OR IGNORE INTO member_read_languages (member_id, language) VALUES (?1, ?2)")?;
            for language in &languages {
                insert.execute(params![member.as_str(), language])?;
            }
            Ok(())
        })
    }

    pub(super) fn glossaries_in(&self, member: &MemberId) -> Result<Vec<Glossary>> {
        let member = member.clone();
        self.read(move |connection| glossary_rows(connection, "WHERE member_id = ?1", &[&member.as_str()]))
    }

    pub(super) fn glossaries_into_in(&self, target: &str) -> Result<Vec<Glossary>> {
        let target = target.to_string();
        self.read(move |connection| glossary_rows(connection, "WHERE target_language = ?1", &[&target]))
    }

    pub(super) fn set_glossary_in(
        &self,
        member: &MemberId,
        source: &str,
        target: &str,
        terms: Vec<GlossaryTerm>,
    ) -> Result<Glossary> {
        let (member, source, target) = (member.clone(), source.to_string(), target.to_string());
        let now = now_micros();
        self.writer.run(move |connection, _| {
            super::require_member(connection, &member, "")?;
            connection.execute(
                "DELETE FROM glossary_terms WHERE member_id = ?1 AND source_language = ?2 AND target_language = ?3",
                params![member.as_str(), source, target],
            )?;
            let mut insert = connection.prepare_cached(
                "INSERT INTO glossary_terms (member_id, source_language, target_language, position, source, target,
                    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (position, term) in terms.iter().enumerate() {
                insert.execute(params![
                    member.as_str(),
                    source,
                    target,
                    position as i64,
                    term.source,
                    term.target,
                    now
                ])?;
            }
            Ok(Glossary { member, source_language: source, target_language: target, terms, updated_at: Timestamp(now) })
        })
    }

    pub(super) fn claim_translation_jobs_in(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limits: ClaimLimits,
    ) -> Result<Vec<TranslationJob>> {
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            // A running job's `due_at` is the end of its lease. Heads first; bodies only once no due
            // head is left unclaimed.
            let (now, until) = (now.micros(), lease_until.micros());
            let heads = claim_part(connection, TranslationPart::Head, &holder, now, until, limits.heads)?;
            let bodies = if (heads.len() as u64) < u64::from(limits.heads)
                || !any_due(connection, TranslationPart::Head, now)?
            {
                claim_part(connection, TranslationPart::Body, &holder, now, until, limits.bodies)?
            } else {
                Vec::new()
            };
            let mut jobs = Vec::with_capacity(heads.len() + bodies.len());
            let parts = heads.into_iter().map(|c| (TranslationPart::Head, c));
            for (part, (id, seq, language, attempts, (not_wanted, ..))) in
                parts.chain(bodies.into_iter().map(|c| (TranslationPart::Body, c)))
            {
                let version = load_version(connection, seq)?;
                let current = super::current_seq(connection, &version.item_id)? == Some(seq);
                jobs.push(TranslationJob {
                    id,
                    part,
                    language,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    version,
                    current,
                    wanted: !not_wanted,
                });
            }
            Ok(jobs)
        })
    }

    pub(super) fn finish_translation_job_in(&self, holder: &str, id: i64, outcome: JobOutcome) -> Result<()> {
        let now = now_micros();
        let holder = holder.to_string();
        self.writer.run(move |connection, _| {
            // Only the job's lease holder (or anyone, if no one holds it) ends it.
            let held: Option<Option<String>> = connection
                .query_row("SELECT lease_holder FROM translation_jobs WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            match held {
                None => return Err(StoreError::NotFound(format!("no translation job {id}"))),
                Some(Some(by)) if by != holder => return Err(crate::common::lost("the translation job")),
                Some(_) => {}
            }
            connection.execute("UPDATE translation_jobs SET lease_holder = NULL WHERE id = ?1", [id])?;
            let changed = match outcome {
                JobOutcome::Done(translations) => {
                    for translation in &translations {
                        insert_translation(connection, translation)?;
                    }
                    connection.execute(
                        "UPDATE translation_jobs SET state = 'done', finished_at = ?2, last_error = NULL,
                            wanted_at = NULL WHERE id = ?1",
                        params![id, now],
                    )?
                }
                JobOutcome::Retry { error, retry_at } => connection.execute(
                    "UPDATE translation_jobs SET state = 'queued', due_at = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, retry_at.micros(), error],
                )?,
                JobOutcome::Failed { error } => connection.execute(
                    "UPDATE translation_jobs SET state = 'failed', finished_at = ?2, last_error = ?3, wanted_at = NULL
                     WHERE id = ?1",
                    params![id, now, error],
                )?,
            };
            if changed == 0 {
                return Err(StoreError::NotFound(format!("no translation job {id}")));
            }
            Ok(())
        })
    }

    pub(super) fn release_translation_jobs_in(&self, holder: &str) -> Result<usize> {
        let holder = holder.to_string();
        let now = now_micros();
        self.writer.run(move |connection, _| {
            // Handed back unfinished: queued again at once, the claim not counted as an attempt.
            Ok(connection.execute(
                "UPDATE translation_jobs SET state = 'queued', due_at = ?2, lease_holder = NULL,
                    attempts = MAX(attempts - 1, 0)
                 WHERE lease_holder = ?1 AND state = 'running'",
                params![holder, now],
            )?)
        })
    }

    pub(super) fn enqueue_translation_in(&self, seq: i64, language: &str) -> Result<bool> {
        let language = language.to_string();
        let now = now_micros();
        self.writer.run(move |connection, _| {
            let mut inserted = 0;
            for part in TranslationPart::ALL {
                inserted += connection.execute(
                    "INSERT INTO translation_jobs (seq, language, part, state, due_at, created_at, urgency)
                     SELECT v.seq, ?2, ?3, 'queued', ?4, ?4, i.urgency FROM versions v JOIN items i ON i.id = v.item_id
                     WHERE v.seq = ?1
                     ON CONFLICT (seq, language, part) DO NOTHING",
                    params![seq, language, part.as_str(), now],
                )?;
            }
            Ok(inserted > 0)
        })
    }

    pub(super) fn prioritize_translation_in(&self, seq: i64, language: &str) -> Result<bool> {
        let language = language.to_string();
        let now = now_micros();
        self.writer.run(move |connection, _| {
            let waiting = connection.execute(
                "UPDATE translation_jobs SET wanted_at = COALESCE(wanted_at, ?3)
                 WHERE seq = ?1 AND language = ?2 AND part = 'body' AND state IN ('queued', 'running')",
                params![seq, language, now],
            )?;
            if waiting > 0 {
                return Ok(true);
            }
            // Done, yet the reader's rendering is missing: made again, first.
            let again = connection.execute(
                "UPDATE translation_jobs SET state = 'queued', due_at = ?3, wanted_at = ?3, attempts = 0,
                    finished_at = NULL, last_error = NULL, lease_holder = NULL
                 WHERE seq = ?1 AND language = ?2 AND part = 'body' AND state = 'done'",
                params![seq, language, now],
            )?;
            Ok(again > 0)
        })
    }

    pub(super) fn translation_progress_in(
        &self,
        viewer: &MemberId,
        seq: i64,
        language: &str,
        now: Timestamp,
    ) -> Result<TranslationProgress> {
        let (viewer, language, now) = (viewer.clone(), language.to_string(), now.micros());
        self.read(move |connection| {
            let mut progress = TranslationProgress::default();
            for part in TranslationPart::ALL {
                let row = connection
                    .prepare_cached(
                        "SELECT state, wanted_at IS NOT NULL, started_at, due_at, wanted_at IS NULL,
                            COALESCE(urgency, 10), created_at, id
                         FROM translation_jobs WHERE seq = ?1 AND language = ?2 AND part = ?3",
                    )?
                    .query_row(params![seq, language, part.as_str()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, bool>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                            row.get::<_, i64>(3)?,
                            (
                                row.get::<_, bool>(4)?,
                                row.get::<_, i64>(5)?,
                                row.get::<_, i64>(6)?,
                                row.get::<_, i64>(7)?,
                            ),
                        ))
                    })
                    .optional()?;
                let Some((state, wanted, started_at, due_at, key)) = row else { continue };
                record_progress(&mut progress, part, &state, wanted, started_at, due_at, key, now, |part, key| {
                    count_ahead(connection, part, key, &viewer, now)
                })?;
            }
            Ok(progress)
        })
    }

    pub(super) fn translation_queue_in(&self, owner: &MemberId) -> Result<PartCounts> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT j.part, j.state, COUNT(*) FROM translation_jobs j
                 JOIN versions v ON v.seq = j.seq JOIN items i ON i.id = v.item_id
                 WHERE i.owner = ?1 GROUP BY j.part, j.state",
            )?;
            let rows = statement
                .query_map([owner.as_str()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            part_counts(rows.into_iter().map(|(part, state, count)| (part, state, u64::try_from(count).unwrap_or(0))))
        })
    }

    pub(super) fn put_translation_in(&self, translation: StoredTranslation) -> Result<()> {
        self.writer.run(move |connection, _| insert_translation(connection, &translation))
    }

    pub(super) fn translations_in(&self, seqs: &[i64]) -> Result<Vec<StoredTranslation>> {
        let seqs = seqs.to_vec();
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {TRANSLATION_COLUMNS} FROM translations WHERE seq = ?1 ORDER BY language, variant, part"
            ))?;
            let mut rows = Vec::new();
            for seq in seqs {
                for raw in statement.query_map([seq], translation_row)?.collect::<rusqlite::Result<Vec<_>>>()? {
                    rows.push(build_translation(raw)?);
                }
            }
            Ok(merge_translations(rows))
        })
    }

    pub(super) fn cached_segments_in(&self, keys: &[[u8; 32]]) -> Result<Vec<([u8; 32], String)>> {
        let keys = keys.to_vec();
        self.read(move |connection| {
            let mut statement = connection.prepare_cached("SELECT text FROM translation_cache WHERE key = ?1")?;
            let mut out = Vec::new();
            for key in keys {
                let mut rows = statement.query([&key[..]])?;
                if let Some(row) = rows.next()? {
                    out.push((key, row.get(0)?));
                }
            }
            Ok(out)
        })
    }

    pub(super) fn cache_segments_in(&self, entries: Vec<([u8; 32], String)>) -> Result<()> {
        let now = now_micros();
        self.writer.run(move |connection, _| {
            let mut insert = connection.prepare_cached(
                "INSERT INTO translation_cache (key, text, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET text = excluded.text",
            )?;
            for (key, text) in &entries {
                insert.execute(params![&key[..], text, now])?;
            }
            Ok(())
        })
    }
}
