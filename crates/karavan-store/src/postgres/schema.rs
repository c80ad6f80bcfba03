//! The PostgreSQL schema and its migrations, applied in order and recorded in `karavan_schema`.
//!
//! A migration, once released, is never edited: a change to the schema is a new migration. Several
//! nodes may start at once: migrating holds a transaction-level advisory lock, so one applies the
//! migrations and the others find them applied.
//!
//! The first migration is the whole schema of the SQLite store's first twelve migrations, with PostgreSQL's
//! types (times in microseconds as `BIGINT`, hashes as `BYTEA`), plus what cluster mode needs:
//! `store_clock`, the commit clock every node's writer advances under one advisory lock (see
//! `writer.rs`), and `karavan_horizon()`, which tells a reader up to when every commit is visible.

use postgres::Client;

use crate::Result;

/// The advisory lock key of the commit clock: the `store_clock` table's oid, so that two stores in two
/// schemas of one database do not share it.
pub const CLOCK_KEY: &str = "'store_clock'::regclass::oid::bigint";

const MIGRATIONS: &[&str] = &[
    // 1: the whole schema (SQLite migrations 1-11) and the commit clock.
    r#"
    CREATE TABLE members (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        country TEXT NOT NULL,
        languages TEXT NOT NULL DEFAULT '[]',
        contact TEXT,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
        hash BYTEA NOT NULL UNIQUE,
        label TEXT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE INDEX api_keys_member ON api_keys(member_id);
    CREATE TABLE agreements (
        id TEXT PRIMARY KEY,
        grantor TEXT NOT NULL REFERENCES members(id),
        grantee TEXT NOT NULL,
        "right" TEXT NOT NULL CHECK ("right" IN ('view', 'republish')),
        subjects TEXT NOT NULL DEFAULT '[]',
        delay_minutes BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE INDEX agreements_grantee ON agreements(grantee);
    CREATE INDEX agreements_grantor ON agreements(grantor);
    CREATE TABLE items (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES members(id),
        uri TEXT NOT NULL,
        current_seq BIGINT NOT NULL,
        version_count BIGINT NOT NULL,
        pub_status TEXT NOT NULL,
        committed_at BIGINT NOT NULL,
        available_at BIGINT NOT NULL,
        language TEXT,
        type TEXT,
        urgency BIGINT,
        dated_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (owner, uri)
    );
    CREATE INDEX items_available ON items(available_at);
    CREATE INDEX items_committed ON items(committed_at);
    CREATE INDEX items_owner ON items(owner, committed_at);
    CREATE INDEX items_current_seq ON items(current_seq);
    CREATE TABLE versions (
        seq BIGSERIAL PRIMARY KEY,
        item_id TEXT NOT NULL REFERENCES items(id),
        version TEXT NOT NULL,
        number BIGINT NOT NULL,
        content_hash BYTEA NOT NULL,
        document TEXT NOT NULL,
        extensions TEXT NOT NULL DEFAULT '{}',
        original TEXT NOT NULL,
        source_format TEXT NOT NULL,
        pub_status TEXT NOT NULL,
        embargoed_until BIGINT,
        committed_at BIGINT NOT NULL,
        available_at BIGINT NOT NULL,
        UNIQUE (item_id, version)
    );
    CREATE TABLE version_subjects (
        seq BIGINT NOT NULL REFERENCES versions(seq),
        key TEXT NOT NULL,
        PRIMARY KEY (seq, key)
    );
    CREATE TABLE saved_searches (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (member_id, name)
    );
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        events TEXT NOT NULL,
        format TEXT NOT NULL,
        webhook_url TEXT,
        webhook_secret TEXT,
        feed_token_hash BYTEA NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (member_id, name)
    );
    CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        seq BIGINT NOT NULL,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('publish', 'correction', 'kill', 'embargo_release')),
        due_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE outbox_position (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL
    );
    INSERT INTO outbox_position (name, position) VALUES ('fanout', 0);
    CREATE TABLE deliveries (
        n BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        event_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        listed_at BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'withdrawn', 'feed')),
        attempts BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT,
        delivered_at BIGINT,
        lease_holder TEXT,
        lease_until BIGINT,
        UNIQUE (subscription_id, event_id)
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
    CREATE INDEX deliveries_feed ON deliveries(subscription_id, listed_at, n);
    CREATE INDEX deliveries_item ON deliveries(item_id, subscription_id);
    CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE lease_until IS NOT NULL;
    CREATE TABLE delivery_attempts (
        delivery_n BIGINT NOT NULL REFERENCES deliveries(n) ON DELETE CASCADE,
        attempt BIGINT NOT NULL,
        at BIGINT NOT NULL,
        status BIGINT,
        latency_us BIGINT NOT NULL,
        error TEXT,
        PRIMARY KEY (delivery_n, attempt)
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        email TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'reader')),
        password_hash TEXT NOT NULL,
        locale TEXT,
        created_at BIGINT NOT NULL,
        disabled_at BIGINT,
        operator BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX users_member ON users(member_id);
    CREATE TABLE sessions (
        token_hash BYTEA PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE INDEX sessions_expiry ON sessions(expires_at);
    CREATE TABLE feed_providers (
        id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(id),
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        language TEXT,
        subjects TEXT NOT NULL,
        interval_seconds BIGINT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE,
        etag TEXT,
        last_modified TEXT,
        next_poll_at BIGINT NOT NULL,
        last_polled_at BIGINT,
        last_success_at BIGINT,
        last_error TEXT,
        last_error_at BIGINT,
        consecutive_failures BIGINT NOT NULL DEFAULT 0,
        items_published BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        lease_holder TEXT,
        lease_until BIGINT,
        UNIQUE (member_id, url)
    );
    CREATE INDEX feed_providers_due ON feed_providers(paused, next_poll_at);
    CREATE TABLE feed_entries (
        provider_id TEXT NOT NULL REFERENCES feed_providers(id) ON DELETE CASCADE,
        entry_key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        item_id TEXT,
        seen_at BIGINT NOT NULL,
        PRIMARY KEY (provider_id, entry_key)
    );
    CREATE INDEX feed_entries_hash ON feed_entries(provider_id, content_hash);
    CREATE TABLE member_read_languages (
        member_id TEXT NOT NULL REFERENCES members(id),
        language TEXT NOT NULL,
        PRIMARY KEY (member_id, language)
    );
    CREATE INDEX member_read_languages_language ON member_read_languages(language);
    CREATE TABLE glossary_terms (
        member_id TEXT NOT NULL REFERENCES members(id),
        source_language TEXT NOT NULL,
        target_language TEXT NOT NULL,
        position BIGINT NOT NULL,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (member_id, source_language, target_language, position)
    );
    CREATE INDEX glossary_terms_target ON glossary_terms(target_language);
    CREATE TABLE translation_jobs (
        id BIGSERIAL PRIMARY KEY,
        seq BIGINT NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts BIGINT NOT NULL DEFAULT 0,
        due_at BIGINT NOT NULL,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        finished_at BIGINT,
        lease_holder TEXT,
        UNIQUE (seq, language)
    );
    CREATE INDEX translation_jobs_due ON translation_jobs(state, due_at);
    CREATE TABLE translations (
        seq BIGINT NOT NULL REFERENCES versions(seq),
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        source_language TEXT NOT NULL,
        model TEXT NOT NULL,
        fields TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (seq, language, variant)
    );
    CREATE TABLE translation_cache (
        key BYTEA PRIMARY KEY,
        text TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        last_at BIGINT NOT NULL
    );
    CREATE INDEX login_failures_last ON login_failures(last_at);
    CREATE TABLE set_aside (
        work TEXT NOT NULL,
        seq BIGINT NOT NULL,
        item_id TEXT NOT NULL,
        owner TEXT,
        error TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('held', 'retry')),
        at BIGINT NOT NULL,
        PRIMARY KEY (work, seq)
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until BIGINT NOT NULL
    );
    CREATE TABLE generations (
        name TEXT PRIMARY KEY,
        generation BIGINT NOT NULL
    );
    INSERT INTO generations (name, generation) VALUES ('subscriptions', 1);
    CREATE FUNCTION karavan_subscriptions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE generations SET generation = generation + 1 WHERE name = 'subscriptions';
        RETURN NULL;
    END $$;
    CREATE TRIGGER subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON subscriptions
        FOR EACH STATEMENT EXECUTE FUNCTION karavan_subscriptions_changed();

    -- The store's identity: a random name every node reads (the cluster's event stream is named after it).
    CREATE TABLE store_identity (id TEXT NOT NULL);
    INSERT INTO store_identity (id) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 16));

    -- The commit clock: the last commit time (microseconds) any node's writer used. A writer that
    -- stores versions or deliveries first takes the advisory lock keyed by this table's oid and keeps
    -- it until its transaction ends, so commit times and sequence numbers are handed out in commit
    -- order across every node.
    CREATE TABLE store_clock (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        last_at BIGINT NOT NULL
    );
    INSERT INTO store_clock (last_at) VALUES (0);

    -- Up to when every commit is visible to a snapshot taken after this returns. `locked`: a writer
    -- holds the clock, and `at` is the last committed commit time (the writer's will be later).
    -- Otherwise `at` is the database's clock just before the lock was seen free, less one: a commit
    -- that takes the clock after this cannot use a time before it.
    CREATE FUNCTION karavan_horizon(OUT locked boolean, OUT at bigint) LANGUAGE plpgsql AS $$
    DECLARE
        key bigint := 'store_clock'::regclass::oid::bigint;
        before bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint - 1;
    BEGIN
        IF pg_try_advisory_lock_shared(key) THEN
            PERFORM pg_advisory_unlock_shared(key);
            locked := FALSE;
            at := before;
            RETURN;
        END IF;
        locked := TRUE;
        SELECT last_at INTO at FROM store_clock;
    END $$;
    "#,
    // 2: translation by part (SQLite's migration 13, issue 20): every version and language gets a `head`
    // job (headlines and descriptions) and a `body` job, claimed heads first, then bodies a reader waits
    // for (`wanted_at`), then by urgency (copied from the item), then oldest first; `started_at` is when
    // a running job was claimed. Existing jobs are split in two with the same state (the head keeps its
    // id). Translations are stored per part: an existing translation (a whole item) becomes a head row
    // without `bodies` and a body row with them.
    r#"
    ALTER TABLE translation_jobs ADD COLUMN part TEXT NOT NULL DEFAULT 'head' CHECK (part IN ('head', 'body'));
    ALTER TABLE translation_jobs ALTER COLUMN part DROP DEFAULT;
    ALTER TABLE translation_jobs ADD COLUMN urgency BIGINT, ADD COLUMN wanted_at BIGINT, ADD COLUMN started_at BIGINT;
    ALTER TABLE translation_jobs DROP CONSTRAINT translation_jobs_seq_language_key;
    ALTER TABLE translation_jobs ADD CONSTRAINT translation_jobs_seq_language_part_key UNIQUE (seq, language, part);
    UPDATE translation_jobs j SET urgency = i.urgency FROM versions v JOIN items i ON i.id = v.item_id
        WHERE v.seq = j.seq;
    INSERT INTO translation_jobs (seq, language, part, state, attempts, due_at, last_error, created_at, finished_at,
        lease_holder, urgency)
    SELECT seq, language, 'body', state, attempts, due_at, last_error, created_at, finished_at, lease_holder, urgency
    FROM translation_jobs ORDER BY id;
    DROP INDEX translation_jobs_due;
    CREATE INDEX translation_jobs_due ON translation_jobs(part, state, due_at);
    ALTER TABLE translations ADD COLUMN part TEXT NOT NULL DEFAULT 'head' CHECK (part IN ('head', 'body'));
    ALTER TABLE translations ALTER COLUMN part DROP DEFAULT;
    ALTER TABLE translations DROP CONSTRAINT translations_pkey;
    ALTER TABLE translations ADD PRIMARY KEY (seq, language, variant, part);
    INSERT INTO translations (seq, language, variant, part, source_language, model, fields, created_at)
    SELECT seq, language, variant, 'body', source_language, model,
        CASE WHEN fields::jsonb ? 'bodies' THEN jsonb_build_object('bodies', fields::jsonb -> 'bodies')::text
             ELSE '{}' END,
        created_at
    FROM translations;
    UPDATE translations SET fields = (fields::jsonb - 'bodies')::text WHERE part = 'head' AND fields::jsonb ? 'bodies';
    "#,
    // 3: a subscription's pending deliveries in claim order: a claim reads at most a subscription's
    // in-flight limit of them, however long its backlog (SQLite's claim, on one process, reads the
    // oldest due and looks only at their subscription ids; it needs no index for it).
    r#"
    CREATE INDEX deliveries_pending ON deliveries(subscription_id, next_attempt_at, n) WHERE state = 'pending';
    "#,
    // 4: the wire's selective filters (SQLite's migration 14): a day (`versionCreated`) and kill notices
    // only.
    r#"
    CREATE INDEX items_dated ON items(dated_at);
    CREATE INDEX items_canceled ON items(available_at) WHERE pub_status = 'canceled';
    "#,
    // 5: a user's time zone (SQLite's migration 15).
    r#"
    ALTER TABLE users ADD COLUMN time_zone TEXT;
    "#,
    // 6: stories (SQLite's migration 16).
    r#"
    CREATE TABLE stories (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        merged_into TEXT
    );
    CREATE INDEX stories_merged ON stories(merged_into) WHERE merged_into IS NOT NULL;
    CREATE TABLE story_items (
        item_id TEXT PRIMARY KEY,
        story_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        centrality DOUBLE PRECISION NOT NULL,
        placed_at BIGINT NOT NULL
    );
    CREATE INDEX story_items_story ON story_items(story_id, at);
    CREATE INDEX story_items_at ON story_items(at);
    CREATE TABLE story_position (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
    "#,
];

/// Brings the database (the connection's schema) up to the newest schema. Safe to call on every open,
/// from several nodes at once.
pub fn migrate(client: &mut Client) -> Result<()> {
    let mut transaction = client.transaction()?;
    // One migrator at a time per schema (not keyed by the clock's table: it may not exist yet).
    transaction
        .execute("SELECT pg_advisory_xact_lock(hashtextextended('karavan-migrate:' || current_schema(), 0))", &[])?;
    transaction.batch_execute("CREATE TABLE IF NOT EXISTS karavan_schema (version BIGINT NOT NULL)")?;
    let current: Option<i64> = transaction.query_one("SELECT MAX(version) FROM karavan_schema", &[])?.get(0);
    let current = current.unwrap_or(0).max(0) as usize;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        transaction.batch_execute(migration)?;
        transaction.execute("INSERT INTO karavan_schema (version) VALUES ($1)", &[&((index + 1) as i64)])?;
        tracing::info!(migration = index + 1, "applied PostgreSQL migration");
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 2 splits the jobs and translations of a store made before it (on the test server,
    /// `KARAVAN_TEST_POSTGRES` or 127.0.0.1:5432, in a schema of its own).
    #[test]
    fn jobs_and_translations_are_split_by_part() {
        let url = std::env::var("KARAVAN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut client = Client::connect(&url, postgres::NoTls).expect("the test PostgreSQL server answers");
        let schema = format!("karavan_migrate_{}", std::process::id());
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
        client.batch_execute(&format!("SET search_path TO {schema}")).unwrap();
        client.batch_execute(MIGRATIONS[0]).unwrap();
        client
            .batch_execute(
                r#"
                CREATE TABLE karavan_schema (version BIGINT NOT NULL);
                INSERT INTO karavan_schema (version) VALUES (1);
                INSERT INTO members (id, name, country, created_at) VALUES ('mbr_1', 'Kazinform', 'KZ', 0);
                INSERT INTO items (id, owner, uri, current_seq, version_count, pub_status, committed_at,
                    available_at, urgency, dated_at, created_at)
                    VALUES ('itm_1', 'mbr_1', 'urn:1', 1, 1, 'usable', 0, 0, 3, 0, 0);
                INSERT INTO versions (seq, item_id, version, number, content_hash, document, original, source_format,
                    pub_status, committed_at, available_at)
                    VALUES (1, 'itm_1', '1', 1, '\x00', '{}', '{}', '3.1', 'usable', 0, 0);
                INSERT INTO translation_jobs (seq, language, state, due_at, created_at, finished_at)
                    VALUES (1, 'ru', 'done', 0, 0, 5);
                INSERT INTO translation_jobs (seq, language, state, due_at, created_at, attempts)
                    VALUES (1, 'en', 'queued', 0, 0, 2);
                INSERT INTO translations (seq, language, variant, source_language, model, fields, created_at)
                    VALUES (1, 'ru', '', 'kk', 'm', '{"headlines":[{"value":"Х"}],"bodies":[{"value":"Т"}]}', 5);
                INSERT INTO translations (seq, language, variant, source_language, model, fields, created_at)
                    VALUES (1, 'en', '', 'kk', 'm', '{"headlines":[{"value":"H"}]}', 5);
                "#,
            )
            .unwrap();
        let outcome = migrate(&mut client);
        let jobs: Vec<String> = client
            .query("SELECT language, part, state, attempts, urgency FROM translation_jobs ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|row| {
                let (language, part, state): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                let (attempts, urgency): (i64, Option<i64>) = (row.get(3), row.get(4));
                format!("{language} {part} {state} {attempts} {urgency:?}")
            })
            .collect();
        let rows: Vec<(String, String, String)> = client
            .query("SELECT language, part, fields FROM translations ORDER BY language, part", &[])
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
        outcome.unwrap();
        assert_eq!(
            jobs,
            [
                "ru head done 0 Some(3)",
                "en head queued 2 Some(3)",
                "ru body done 0 Some(3)",
                "en body queued 2 Some(3)",
            ]
        );
        use serde_json::{Value, json};
        let rows: Vec<(&str, &str, Value)> = rows
            .iter()
            .map(|(language, part, fields)| (language.as_str(), part.as_str(), serde_json::from_str(fields).unwrap()))
            .collect();
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
