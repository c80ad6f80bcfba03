//! The SQLite schema and its migrations, applied in order and recorded in `PRAGMA user_version`.
//!
//! A migration, once released, is never edited: a change to the schema is a new migration.

use rusqlite::Connection;

use crate::Result;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: members, keys, agreements, items and their versions.
    r#"
    CREATE TABLE members (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        country TEXT NOT NULL,
        languages TEXT NOT NULL DEFAULT '[]',
        contact TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
        hash BLOB NOT NULL UNIQUE,
        label TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX api_keys_member ON api_keys(member_id);
    CREATE TABLE agreements (
        id TEXT PRIMARY KEY,
        grantor TEXT NOT NULL REFERENCES members(id),
        grantee TEXT NOT NULL,
        right TEXT NOT NULL CHECK (right IN ('view', 'republish')),
        subjects TEXT NOT NULL DEFAULT '[]',
        delay_minutes INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX agreements_grantee ON agreements(grantee);
    CREATE INDEX agreements_grantor ON agreements(grantor);
    -- One row per item, describing its current version (denormalised for listing).
    CREATE TABLE items (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES members(id),
        uri TEXT NOT NULL,
        current_seq INTEGER NOT NULL,
        version_count INTEGER NOT NULL,
        pub_status TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        available_at INTEGER NOT NULL,
        language TEXT,
        type TEXT,
        urgency INTEGER,
        dated_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (owner, uri)
    );
    CREATE INDEX items_available ON items(available_at);
    CREATE INDEX items_committed ON items(committed_at);
    CREATE INDEX items_owner ON items(owner, committed_at);
    CREATE TABLE versions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id TEXT NOT NULL REFERENCES items(id),
        version TEXT NOT NULL,
        number INTEGER NOT NULL,
        content_hash BLOB NOT NULL,
        document TEXT NOT NULL,
        extensions TEXT NOT NULL DEFAULT '{}',
        original TEXT NOT NULL,
        source_format TEXT NOT NULL,
        pub_status TEXT NOT NULL,
        embargoed_until INTEGER,
        committed_at INTEGER NOT NULL,
        available_at INTEGER NOT NULL,
        UNIQUE (item_id, version)
    );
    CREATE TABLE version_subjects (
        seq INTEGER NOT NULL REFERENCES versions(seq),
        key TEXT NOT NULL,
        PRIMARY KEY (seq, key)
    ) WITHOUT ROWID;
    "#,
    // 2: saved searches (a member's named queries, reused by subscriptions).
    r#"
    CREATE TABLE saved_searches (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (member_id, name)
    );
    "#,
    // 3: distribution: subscriptions, the outbox of item events (written in the publish's transaction),
    // the deliveries the fan-out makes of them, and every push attempt.
    r#"
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        events TEXT NOT NULL,
        format TEXT NOT NULL,
        webhook_url TEXT,
        webhook_secret TEXT,
        feed_token_hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (member_id, name)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('publish', 'correction', 'kill', 'embargo_release')),
        due_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE outbox_position (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    );
    INSERT INTO outbox_position (name, position) VALUES ('fanout', 0);
    CREATE TABLE deliveries (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        event_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        listed_at INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'withdrawn', 'feed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        delivered_at INTEGER,
        UNIQUE (subscription_id, event_id)
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
    CREATE INDEX deliveries_feed ON deliveries(subscription_id, listed_at, n);
    CREATE INDEX deliveries_item ON deliveries(item_id, subscription_id);
    CREATE TABLE delivery_attempts (
        delivery_n INTEGER NOT NULL REFERENCES deliveries(n) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        at INTEGER NOT NULL,
        status INTEGER,
        latency_us INTEGER NOT NULL,
        error TEXT,
        PRIMARY KEY (delivery_n, attempt)
    ) WITHOUT ROWID;
    "#,
    // 4: people who sign in to the web newsroom, and their sessions.
    r#"
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        email TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
        password_hash TEXT NOT NULL,
        locale TEXT,
        created_at INTEGER NOT NULL,
        disabled_at INTEGER
    );
    CREATE INDEX users_member ON users(member_id);
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_user ON sessions(user_id);
    "#,
    // 5: exchange operators (users who may also add member agencies).
    r#"
    ALTER TABLE users ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
    "#,
    // 6: feed ingest providers (RSS / Atom polled into a member's items) and the entries they have seen.
    r#"
    CREATE TABLE feed_providers (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        language TEXT,
        subjects TEXT NOT NULL,
        interval_seconds INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        etag TEXT,
        last_modified TEXT,
        next_poll_at INTEGER NOT NULL,
        last_polled_at INTEGER,
        last_success_at INTEGER,
        last_error TEXT,
        last_error_at INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        items_published INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        UNIQUE (member_id, url)
    );
    CREATE INDEX feed_providers_due ON feed_providers(paused, next_poll_at);
    CREATE TABLE feed_entries (
        provider_id TEXT NOT NULL REFERENCES feed_providers(id) ON DELETE CASCADE,
        entry_key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        item_id TEXT,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (provider_id, entry_key)
    ) WITHOUT ROWID;
    CREATE INDEX feed_entries_hash ON feed_entries(provider_id, content_hash);
    "#,
    // 7: machine translation: the languages members read, their glossaries, the durable queue of
    // translation jobs (one per item version and target language), the translations made, and the
    // cache of translated segments.
    r#"
    CREATE TABLE member_read_languages (
        member_id TEXT NOT NULL REFERENCES members(id),
        language TEXT NOT NULL,
        PRIMARY KEY (member_id, language)
    ) WITHOUT ROWID;
    CREATE INDEX member_read_languages_language ON member_read_languages(language);
    CREATE TABLE glossary_terms (
        member_id TEXT NOT NULL REFERENCES members(id),
        source_language TEXT NOT NULL,
        target_language TEXT NOT NULL,
        position INTEGER NOT NULL,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (member_id, source_language, target_language, position)
    ) WITHOUT ROWID;
    CREATE INDEX glossary_terms_target ON glossary_terms(target_language);
    CREATE TABLE translation_jobs (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        UNIQUE (seq, language)
    );
    CREATE INDEX translation_jobs_due ON translation_jobs(state, due_at);
    CREATE TABLE translations (
        seq INTEGER NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        source_language TEXT NOT NULL,
        model TEXT NOT NULL,
        fields TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (seq, language, variant)
    ) WITHOUT ROWID;
    CREATE TABLE translation_cache (
        key BLOB PRIMARY KEY,
        text TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 8: failed sign-ins, counted per key (an account, an address, an account from an address), so
    // that repeated failures are slowed down on every node and across restarts.
    r#"
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX login_failures_last ON login_failures(last_at);
    "#,
    // 9: stored versions that background work could not use, set aside with the error until an
    // operator retries them (state 'held' or 'retry').
    r#"
    CREATE TABLE set_aside (
        work TEXT NOT NULL,
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        owner TEXT,
        error TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('held', 'retry')),
        at INTEGER NOT NULL,
        PRIMARY KEY (work, seq)
    ) WITHOUT ROWID;
    "#,
    // 10: work claimed by lease, so that several engine instances can share one store: deliveries, feed
    // polls and translation jobs record who holds them and until when; work only one instance may do
    // at a time (the fan-out) holds a named lease. Generations count changes of configuration the
    // engines cache (subscriptions), kept by triggers whoever writes.
    r#"
    ALTER TABLE deliveries ADD COLUMN lease_holder TEXT;
    ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;
    CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE lease_until IS NOT NULL;
    ALTER TABLE feed_providers ADD COLUMN lease_holder TEXT;
    ALTER TABLE feed_providers ADD COLUMN lease_until INTEGER;
    ALTER TABLE translation_jobs ADD COLUMN lease_holder TEXT;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE generations (
        name TEXT PRIMARY KEY,
        generation INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO generations (name, generation) VALUES ('subscriptions', 1);
    CREATE TRIGGER subscriptions_inserted AFTER INSERT ON subscriptions BEGIN
        UPDATE generations SET generation = generation + 1 WHERE name = 'subscriptions';
    END;
    CREATE TRIGGER subscriptions_updated AFTER UPDATE ON subscriptions BEGIN
        UPDATE generations SET generation = generation + 1 WHERE name = 'subscriptions';
    END;
    CREATE TRIGGER subscriptions_deleted AFTER DELETE ON subscriptions BEGIN
        UPDATE generations SET generation = generation + 1 WHERE name = 'subscriptions';
    END;
    "#,
    // 11: the engines that tail the store (the keyword indexer, the embedder) read current versions
    // after a position by `items.current_seq`; without an index each round scanned every item.
    r#"
    CREATE INDEX items_current_seq ON items(current_seq);
    "#,
    // 12: the store's identity (a random name every instance reads, for cluster mode's event stream).
    r#"
    CREATE TABLE store_identity (id TEXT NOT NULL);
    INSERT INTO store_identity (id) VALUES (lower(hex(randomblob(8))));
    "#,
    // 13: translation by part (issue 20): every version and language gets a `head` job (headlines and
    // descriptions) and a `body` job, claimed heads first, then bodies a reader waits for (`wanted_at`),
    // then by urgency (copied from the item), then oldest first; `started_at` is when a running job was
    // claimed. Existing jobs are split in two with the same state (the head keeps its id), so a job
    // done stays done for both parts. Translations are stored per part: an existing translation (a
    // whole item) becomes a head row without `bodies` and a body row with them.
    r#"
    CREATE TABLE translation_jobs_by_part (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        part TEXT NOT NULL CHECK (part IN ('head', 'body')),
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        lease_holder TEXT,
        urgency INTEGER,
        wanted_at INTEGER,
        started_at INTEGER,
        UNIQUE (seq, language, part)
    );
    INSERT INTO translation_jobs_by_part (id, seq, language, part, state, attempts, due_at, last_error, created_at,
        finished_at, lease_holder, urgency)
    SELECT j.id, j.seq, j.language, 'head', j.state, j.attempts, j.due_at, j.last_error, j.created_at, j.finished_at,
        j.lease_holder, (SELECT i.urgency FROM versions v JOIN items i ON i.id = v.item_id WHERE v.seq = j.seq)
    FROM translation_jobs j ORDER BY j.id;
    INSERT INTO translation_jobs_by_part (seq, language, part, state, attempts, due_at, last_error, created_at,
        finished_at, lease_holder, urgency)
    SELECT seq, language, 'body', state, attempts, due_at, last_error, created_at, finished_at, lease_holder, urgency
    FROM translation_jobs_by_part ORDER BY id;
    DROP TABLE translation_jobs;
    ALTER TABLE translation_jobs_by_part RENAME TO translation_jobs;
    CREATE INDEX translation_jobs_due ON translation_jobs(part, state, due_at);
    CREATE TABLE translations_by_part (
        seq INTEGER NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        part TEXT NOT NULL CHECK (part IN ('head', 'body')),
        source_language TEXT NOT NULL,
        model TEXT NOT NULL,
        fields TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (seq, language, variant, part)
    ) WITHOUT ROWID;
    INSERT INTO translations_by_part (seq, language, variant, part, source_language, model, fields, created_at)
    SELECT seq, language, variant, 'head', source_language, model,
        CASE WHEN json_valid(fields) THEN json_remove(fields, '$.bodies') ELSE fields END, created_at
    FROM translations;
    INSERT INTO translations_by_part (seq, language, variant, part, source_language, model, fields, created_at)
    SELECT seq, language, variant, 'body', source_language, model,
        CASE WHEN json_type(fields, '$.bodies') IS NULL THEN '{}'
             ELSE json_object('bodies', json(json_extract(fields, '$.bodies'))) END, created_at
    FROM translations WHERE json_valid(fields);
    DROP TABLE translations;
    ALTER TABLE translations_by_part RENAME TO translations;
    "#,
    // 14: the wire's selective filters (issue 21): a day (`versionCreated`) and kill notices only, read
    // through their own index instead of scanning every item newest first when few items match.
    r#"
    CREATE INDEX items_dated ON items(dated_at);
    CREATE INDEX items_canceled ON items(available_at) WHERE pub_status = 'canceled';
    "#,
    // 15: a user's time zone (issue 21: the newsroom shows times in it, else in the browser's).
    r#"
    ALTER TABLE users ADD COLUMN time_zone TEXT;
    "#,
    // 16: stories (issue 22): the story engine's placement of items, merged stories' redirects, and
    // how far the engine has read the store.
    r#"
    CREATE TABLE stories (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        merged_into TEXT
    );
    CREATE INDEX stories_merged ON stories(merged_into) WHERE merged_into IS NOT NULL;
    CREATE TABLE story_items (
        item_id TEXT PRIMARY KEY,
        story_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        centrality REAL NOT NULL,
        placed_at INTEGER NOT NULL
    );
    CREATE INDEX story_items_story ON story_items(story_id, at);
    CREATE INDEX story_items_at ON story_items(at);
    CREATE TABLE story_position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
    "#,
];

/// Brings the database up to the newest schema. Safe to call on every open, from several processes.
pub fn migrate(connection: &mut Connection) -> Result<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        tracing::info!(migration = index + 1, "applied migration");
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 13 splits the jobs and translations of a store made before it: each job into a head
    /// and a body with the same state, each translation into a head row and a body row.
    #[test]
    fn jobs_and_translations_are_split_by_part() {
        let mut connection = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..12] {
            connection.execute_batch(migration).unwrap();
        }
        connection.pragma_update(None, "user_version", 12).unwrap();
        connection
            .execute_batch(
                r#"
                INSERT INTO members (id, name, country, created_at) VALUES ('mbr_1', 'Kazinform', 'KZ', 0);
                INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at,
                    available_at, urgency, dated_at, created_at)
                    VALUES ('itm_1', 'mbr_1', 'urn:1', 1, 1, 'usable', 0, 0, 3, 0, 0);
                INSERT INTO versions (seq, item_id, version, number, content_hash, document, original, source_format,
                    pub_status, committed_at, available_at)
                    VALUES (1, 'itm_1', '1', 1, x'00', '{}', '{}', '3.1', 'usable', 0, 0);
                INSERT INTO translation_jobs (id, seq, language, state, due_at, created_at, finished_at)
                    VALUES (7, 1, 'ru', 'done', 0, 0, 5);
                INSERT INTO translation_jobs (id, seq, language, state, due_at, created_at, attempts)
                    VALUES (8, 1, 'en', 'queued', 0, 0, 2);
                INSERT INTO translations (seq, language, variant, source_language, model, fields, created_at)
                    VALUES (1, 'ru', '', 'kk', 'm', '{"headlines":[{"value":"Х"}],"bodies":[{"value":"Т"}]}', 5);
                INSERT INTO translations (seq, language, variant, source_language, model, fields, created_at)
                    VALUES (1, 'en', '', 'kk', 'm', '{"headlines":[{"value":"H"}]}', 5);
                "#,
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let jobs: Vec<String> = connection
            .prepare("SELECT id, language, part, state, attempts, urgency FROM translation_jobs ORDER BY id")
            .unwrap()
            .query_map([], |row| {
                let (id, language, part): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
                let (state, attempts, urgency): (String, i64, Option<i64>) = (row.get(3)?, row.get(4)?, row.get(5)?);
                Ok(format!("{id} {language} {part} {state} {attempts} {urgency:?}"))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            jobs,
            [
                "7 ru head done 0 Some(3)",
                "8 en head queued 2 Some(3)",
                "9 ru body done 0 Some(3)",
                "10 en body queued 2 Some(3)",
            ]
        );
        let rows: Vec<(String, String, String)> = connection
            .prepare("SELECT language, part, fields FROM translations ORDER BY language, part")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let rows: Vec<(&str, &str, serde_json::Value)> = rows
            .iter()
            .map(|(language, part, fields)| (language.as_str(), part.as_str(), serde_json::from_str(fields).unwrap()))
            .collect();
        use serde_json::json;
        assert_eq!(
            rows,
            [
                ("en", "body", json!({})),
                ("en", "head", json!({ "headlines": [{ "value": "H" }] })),
                ("ru", "body", json!({ "bodies": [{ "value": "Т" }] })),
                ("ru", "head", json!({ "headlines": [{ "value": "Х" }] })),
            ]
        );
    }
}
