//! The use cases: the operations Karavan offers, once, for every edge. The HTTP API (`/v1/…`
//! handlers), the web newsroom (`web*.rs`), the CLI and the engines call these; they take typed
//! inputs, check them, write through the store and tell the event bus what changed, and return typed
//! results or the one error type ([`crate::error::ApiError`], whose stable codes each edge maps to
//! its own form: an HTTP status and JSON body, a newsroom page, a CLI message).
//!
//! Boundaries: an edge parses its input (JSON, a form, arguments) into the use case's input and
//! renders its result; it never writes to the store or the bus for an operation a use case offers,
//! and it never goes through another edge (the newsroom does not build API JSON). Use cases never
//! see HTTP types.

pub mod agreements;
pub mod feeds;
pub mod publishing;
pub mod subscriptions;
pub mod translation;
