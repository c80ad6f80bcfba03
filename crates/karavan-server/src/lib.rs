//! Karavan server.
