//! Karavan store.
