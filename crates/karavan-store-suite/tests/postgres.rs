//! The cluster backend, PostgreSQL, runs the whole store conformance suite, each test in a schema of
//! its own on the test server (`KARAVAN_TEST_POSTGRES`, by default 127.0.0.1:5432).

karavan_store_suite::store_suite!(karavan_store_suite::Postgres::fresh);

/// Several nodes publishing at once on one PostgreSQL store: pollers and tailers miss nothing.
#[test]
fn pollers_miss_nothing_while_instances_publish_at_once() {
    karavan_store_suite::pollers_miss_nothing_while_instances_publish_at_once(karavan_store_suite::Postgres::fresh);
}
