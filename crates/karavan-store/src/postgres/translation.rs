//! Machine translation in PostgreSQL: the languages members read, their glossaries, the durable job
//! queue, the translations made and the segment cache.
//!
//! Jobs are written in the publish's own transaction (`enqueue_for_version`), two per version and
//! target language, a head and a body (`UNIQUE (seq, language, part)`, migration 2), so none is lost
//! and none is made twice. A worker claims a job by leasing it (`state = 'running'`, `due_at` = the
//! lease's end); a worker that dies leaves the lease to run out and the job is claimed again.
//! Translations are stored one row per part and merged when read.

use karavan_domain::{MemberId, PubStatus, Timestamp};
use postgres::Row;

use super::db::{Db, Params};
use super::{PostgresStore, current_seq, load_version, require_member};
use crate::common::{
    Claimed, JOB_ORDER, OrderKey, TRANSLATION_COLUMNS, build_translation, corrupt, lost, merge_translations,
    now_micros, part_counts, record_progress, translation_rows,
};
use crate::{
    ClaimLimits, Glossary, GlossaryTerm, JobOutcome, PartCounts, Result, StoreError, StoredTranslation, TranslationJob,
    TranslationPart, TranslationProgress,
};

/// Queues translation jobs for a version just stored (in its transaction): a head and a body job per
/// language read by a member who may ever see it (its owner, and members the owner shares with) and
/// not already the item's language. Kills are not translated.
pub(super) fn enqueue_for_version(
    db: &mut Db<'_, '_>,
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
    let rows = db.query(
        "SELECT DISTINCT language FROM member_read_languages
         WHERE member_id = $1
            OR member_id IN (SELECT grantee FROM agreements WHERE grantor = $1 AND revoked_at IS NULL)
            OR EXISTS (SELECT 1 FROM agreements WHERE grantor = $1 AND grantee = '*' AND revoked_at IS NULL)",
        &[&owner.as_str()],
    )?;
    let languages = rows.iter().map(|row| row.try_get::<_, String>(0)).collect::<std::result::Result<Vec<_>, _>>()?;
    for target in languages {
        if language.is_some_and(|l| karavan_domain::same_language(l, &target)) {
            continue;
        }
        for part in TranslationPart::ALL {
            db.execute(
                "INSERT INTO translation_jobs (seq, language, part, state, due_at, created_at, urgency)
                 VALUES ($1, $2, $3, 'queued', $4, $4, $5)
                 ON CONFLICT (seq, language, part) DO NOTHING",
                &[&seq, &target, &part.as_str(), &now, &urgency],
            )?;
        }
    }
    Ok(())
}

fn glossary_rows(db: &mut Db<'_, '_>, filter: &str, values: &Params<'_>) -> Result<Vec<Glossary>> {
    let rows = db.query(
        &format!(
            "SELECT member_id, source_language, target_language, source, target, updated_at FROM glossary_terms
             {filter} ORDER BY member_id, source_language, target_language, position"
        ),
        values,
    )?;
    let mut out: Vec<Glossary> = Vec::new();
    for row in &rows {
        let (member, source_language, target_language, source, target, updated_at): (
            String,
            String,
            String,
            String,
            String,
            i64,
        ) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?);
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

fn translation_of(row: &Row) -> Result<StoredTranslation> {
    build_translation((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
    ))
}

fn insert_translation(db: &mut Db<'_, '_>, translation: &StoredTranslation) -> Result<()> {
    for (part, fields) in translation_rows(translation)? {
        db.execute(
            "INSERT INTO translations (seq, language, variant, part, source_language, model, fields, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (seq, language, variant, part) DO UPDATE SET source_language = excluded.source_language,
                model = excluded.model, fields = excluded.fields, created_at = excluded.created_at",
            &[
                &translation.seq,
                &translation.language,
                &translation.variant,
                &part.as_str(),
                &translation.source_language,
                &translation.model,
                &fields,
                &translation.created_at.micros(),
            ],
        )?;
    }
    Ok(())
}

/// Claims up to `limit` due jobs of one part, in the claim order. Two nodes may claim at once: the
/// picking select skips jobs another claim has locked, and the update checks the job is still due
/// against the latest committed row, so no job is claimed twice. The pick is materialised so that it
/// runs once (a `WHERE id IN (… LIMIT)` may be evaluated again and claim too many).
fn claim_part(
    db: &mut Db<'_, '_>,
    part: TranslationPart,
    holder: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = db.query(
        &format!(
            "WITH picked AS MATERIALIZED (
                SELECT id FROM translation_jobs WHERE part = $5 AND state IN ('queued', 'running') AND due_at <= $1
                    ORDER BY {JOB_ORDER} LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE translation_jobs j SET state = 'running', attempts = j.attempts + 1, due_at = $2,
                lease_holder = $4, started_at = $1
             FROM picked WHERE j.id = picked.id AND j.state IN ('queued', 'running') AND j.due_at <= $1
             RETURNING j.id, j.seq, j.language, j.attempts, j.wanted_at IS NULL, COALESCE(j.urgency, 10), j.created_at"
        ),
        &[&now, &lease_until, &i64::from(limit), &holder, &part.as_str()],
    )?;
    let mut claimed = rows
        .iter()
        .map(|row| -> Result<Claimed> {
            let id: i64 = row.try_get(0)?;
            Ok((
                id,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                (row.try_get(4)?, row.try_get(5)?, row.try_get(6)?, id),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // `RETURNING` has no order.
    claimed.sort_by_key(|claimed| claimed.4);
    Ok(claimed)
}

/// Whether a job of `part` is due at `now` and not held.
fn any_due(db: &mut Db<'_, '_>, part: TranslationPart, now: i64) -> Result<bool> {
    let row = db.query_opt(
        "SELECT EXISTS (SELECT 1 FROM translation_jobs WHERE part = $1 AND state IN ('queued', 'running')
            AND due_at <= $2)",
        &[&part.as_str(), &now],
    )?;
    Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(false))
}

/// Due queued jobs of `part` that a claim takes before the job whose order key is `before` (every one
/// for [`LAST`]), leaving out other members' items under embargo.
fn count_ahead(
    db: &mut Db<'_, '_>,
    part: TranslationPart,
    before: OrderKey,
    viewer: &MemberId,
    now: i64,
) -> Result<u64> {
    let row = db.query_opt(
        "SELECT COUNT(*) FROM translation_jobs j JOIN versions v ON v.seq = j.seq JOIN items i ON i.id = v.item_id
         WHERE j.part = $1 AND j.state = 'queued' AND j.due_at <= $2
           AND ((j.wanted_at IS NULL), COALESCE(j.urgency, 10), j.created_at, j.id)
               < ($4::boolean, $5::bigint, $6::bigint, $7::bigint)
           AND (i.owner = $3 OR v.embargoed_until IS NULL OR v.embargoed_until <= $2)",
        &[&part.as_str(), &now, &viewer.as_str(), &before.0, &before.1, &before.2, &before.3],
    )?;
    let count: i64 = row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

impl PostgresStore {
    pub(super) fn read_languages_in(&self, member: &MemberId) -> Result<Vec<String>> {
        let member = member.clone();
        self.read(move |db| {
            let rows = db.query(
                "SELECT language FROM member_read_languages WHERE member_id = $1 ORDER BY language",
                &[&member.as_str()],
            )?;
            rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
        })
    }

    pub(super) fn set_read_languages_in(&self, member: &MemberId, languages: Vec<String>) -> Result<()> {
        let member = member.clone();
        self.writer.run(move |db| {
            require_member(db, &member, "")?;
            db.execute("DELETE FROM member_read_languages WHERE member_id = $1", &[&member.as_str()])?;
            for language in &languages {
                db.execute(
                    "INSERT INTO member_read_languages (member_id, language) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&member.as_str(), language],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn glossaries_in(&self, member: &MemberId) -> Result<Vec<Glossary>> {
        let member = member.clone();
        self.read(move |db| glossary_rows(db, "WHERE member_id = $1", &[&member.as_str()]))
    }

    pub(super) fn glossaries_into_in(&self, target: &str) -> Result<Vec<Glossary>> {
        let target = target.to_string();
        self.read(move |db| glossary_rows(db, "WHERE target_language = $1", &[&target]))
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
        self.writer.run(move |db| {
            require_member(db, &member, "")?;
            db.execute(
                "DELETE FROM glossary_terms WHERE member_id = $1 AND source_language = $2 AND target_language = $3",
                &[&member.as_str(), &source, &target],
            )?;
            for (position, term) in terms.iter().enumerate() {
                db.execute(
                    "INSERT INTO glossary_terms (member_id, source_language, target_language, position, source, target,
                        updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&member.as_str(), &source, &target, &(position as i64), &term.source, &term.target, &now],
                )?;
            }
            Ok(Glossary {
                member: member.clone(),
                source_language: source.clone(),
                target_language: target.clone(),
                terms: terms.clone(),
                updated_at: Timestamp(now),
            })
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
        self.writer.run(move |db| {
            // A running job's `due_at` is the end of its lease. Heads first; bodies only once no due
            // head is left unclaimed.
            let (now, until) = (now.micros(), lease_until.micros());
            let heads = claim_part(db, TranslationPart::Head, &holder, now, until, limits.heads)?;
            let bodies = if (heads.len() as u64) < u64::from(limits.heads) || !any_due(db, TranslationPart::Head, now)?
            {
                claim_part(db, TranslationPart::Body, &holder, now, until, limits.bodies)?
            } else {
                Vec::new()
            };
            let mut jobs = Vec::with_capacity(heads.len() + bodies.len());
            let claimed = heads
                .into_iter()
                .map(|c| (TranslationPart::Head, c))
                .chain(bodies.into_iter().map(|c| (TranslationPart::Body, c)));
            for (part, (id, seq, language, attempts, (not_wanted, ..))) in claimed {
                let version = load_version(db, seq)?;
                let current = current_seq(db, &version.item_id)? == Some(seq);
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
        self.writer.run(move |db| {
            // Only the job's lease holder (or anyone, if no one holds it) ends it. The row is locked
            // until the transaction ends, so no claim takes the job between the check and the update.
            let held = db.query_opt("SELECT lease_holder FROM translation_jobs WHERE id = $1 FOR UPDATE", &[&id])?;
            let held: Option<Option<String>> = held.map(|row| row.try_get(0)).transpose()?;
            match held {
                None => return Err(StoreError::NotFound(format!("no translation job {id}"))),
                Some(Some(by)) if by != holder => return Err(lost("the translation job")),
                Some(_) => {}
            }
            db.execute("UPDATE translation_jobs SET lease_holder = NULL WHERE id = $1", &[&id])?;
            let changed = match &outcome {
                JobOutcome::Done(translations) => {
                    for translation in translations {
                        insert_translation(db, translation)?;
                    }
                    db.execute(
                        "UPDATE translation_jobs SET state = 'done', finished_at = $2, last_error = NULL,
                            wanted_at = NULL WHERE id = $1",
                        &[&id, &now],
                    )?
                }
                JobOutcome::Retry { error, retry_at } => db.execute(
                    "UPDATE translation_jobs SET state = 'queued', due_at = $2, last_error = $3 WHERE id = $1",
                    &[&id, &retry_at.micros(), error],
                )?,
                JobOutcome::Failed { error } => db.execute(
                    "UPDATE translation_jobs SET state = 'failed', finished_at = $2, last_error = $3, wanted_at = NULL
                     WHERE id = $1",
                    &[&id, &now, error],
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
        self.writer.run(move |db| {
            // Handed back unfinished: queued again at once, the claim not counted as an attempt.
            db.execute(
                "UPDATE translation_jobs SET state = 'queued', due_at = $2, lease_holder = NULL,
                    attempts = GREATEST(attempts - 1, 0)
                 WHERE lease_holder = $1 AND state = 'running'",
                &[&holder, &now],
            )
        })
    }

    pub(super) fn enqueue_translation_in(&self, seq: i64, language: &str) -> Result<bool> {
        let language = language.to_string();
        let now = now_micros();
        self.writer.run(move |db| {
            let mut inserted = 0;
            for part in TranslationPart::ALL {
                inserted += db.execute(
                    "INSERT INTO translation_jobs (seq, language, part, state, due_at, created_at, urgency)
                     SELECT v.seq, $2::text, $3::text, 'queued', $4::bigint, $4::bigint, i.urgency
                     FROM versions v JOIN items i ON i.id = v.item_id WHERE v.seq = $1::bigint
                     ON CONFLICT (seq, language, part) DO NOTHING",
                    &[&seq, &language, &part.as_str(), &now],
                )?;
            }
            Ok(inserted > 0)
        })
    }

    pub(super) fn prioritize_translation_in(&self, seq: i64, language: &str) -> Result<bool> {
        let language = language.to_string();
        let now = now_micros();
        self.writer.run(move |db| {
            let waiting = db.execute(
                "UPDATE translation_jobs SET wanted_at = COALESCE(wanted_at, $3)
                 WHERE seq = $1 AND language = $2 AND part = 'body' AND state IN ('queued', 'running')",
                &[&seq, &language, &now],
            )?;
            if waiting > 0 {
                return Ok(true);
            }
            // Done, yet the reader's rendering is missing: made again, first.
            let again = db.execute(
                "UPDATE translation_jobs SET state = 'queued', due_at = $3, wanted_at = $3, attempts = 0,
                    finished_at = NULL, last_error = NULL, lease_holder = NULL
                 WHERE seq = $1 AND language = $2 AND part = 'body' AND state = 'done'",
                &[&seq, &language, &now],
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
        self.read(move |db| {
            let mut progress = TranslationProgress::default();
            for part in TranslationPart::ALL {
                let row = db.query_opt(
                    "SELECT state, wanted_at IS NOT NULL, started_at, due_at, wanted_at IS NULL,
                        COALESCE(urgency, 10), created_at, id
                     FROM translation_jobs WHERE seq = $1 AND language = $2 AND part = $3",
                    &[&seq, &language, &part.as_str()],
                )?;
                let Some(row) = row else { continue };
                let (state, wanted, started_at, due_at): (String, bool, Option<i64>, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                let key: OrderKey = (row.try_get(4)?, row.try_get(5)?, row.try_get(6)?, row.try_get(7)?);
                record_progress(&mut progress, part, &state, wanted, started_at, due_at, key, now, |part, key| {
                    count_ahead(db, part, key, &viewer, now)
                })?;
            }
            Ok(progress)
        })
    }

    pub(super) fn translation_queue_in(&self, owner: &MemberId) -> Result<PartCounts> {
        let owner = owner.clone();
        self.read(move |db| {
            let rows = db.query(
                "SELECT j.part, j.state, COUNT(*) FROM translation_jobs j
                 JOIN versions v ON v.seq = j.seq JOIN items i ON i.id = v.item_id
                 WHERE i.owner = $1 GROUP BY j.part, j.state",
                &[&owner.as_str()],
            )?;
            let rows = rows
                .iter()
                .map(|row| -> Result<(String, String, i64)> { Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)) })
                .collect::<Result<Vec<_>>>()?;
            part_counts(rows.into_iter().map(|(part, state, count)| (part, state, u64::try_from(count).unwrap_or(0))))
        })
    }

    pub(super) fn put_translation_in(&self, translation: StoredTranslation) -> Result<()> {
        self.writer.run(move |db| insert_translation(db, &translation))
    }

    pub(super) fn translations_in(&self, seqs: &[i64]) -> Result<Vec<StoredTranslation>> {
        let seqs = seqs.to_vec();
        self.read(move |db| {
            let mut out = Vec::new();
            for seq in seqs {
                let rows = db.query(
                    &format!(
                        "SELECT {TRANSLATION_COLUMNS} FROM translations WHERE seq = $1 ORDER BY language, variant, part"
                    ),
                    &[&seq],
                )?;
                for row in &rows {
                    out.push(translation_of(row)?);
                }
            }
            Ok(merge_translations(out))
        })
    }

    pub(super) fn cached_segments_in(&self, keys: &[[u8; 32]]) -> Result<Vec<([u8; 32], String)>> {
        let keys = keys.to_vec();
        self.read(move |db| {
            let mut out = Vec::new();
            for key in keys {
                let bytes: &[u8] = &key;
                if let Some(row) = db.query_opt("SELECT text FROM translation_cache WHERE key = $1", &[&bytes])? {
                    out.push((key, row.try_get(0)?));
                }
            }
            Ok(out)
        })
    }

    pub(super) fn cache_segments_in(&self, entries: Vec<([u8; 32], String)>) -> Result<()> {
        let now = now_micros();
        self.writer.run(move |db| {
            for (key, text) in &entries {
                let bytes: &[u8] = key;
                db.execute(
                    "INSERT INTO translation_cache (key, text, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET text = excluded.text",
                    &[&bytes, text, &now],
                )?;
            }
            Ok(())
        })
    }
}
