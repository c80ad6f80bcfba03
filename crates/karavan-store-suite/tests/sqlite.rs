//! The embedded default backend, SQLite, runs the whole store conformance suite.

karavan_store_suite::store_suite!(karavan_store_suite::Sqlite::fresh);
