//! Karavan's domain model: the exchange's members, their API keys and roles, the sharing agreements
//! between them, the metadata of news items that the exchange reasons about, and the visibility rule
//! that every read path applies.
//!
//! Architecture invariant: this crate does no IO. It knows nothing of HTTP, SQL, JSON wire formats or
//! clocks: callers pass the current time and any randomness in.

mod agreement;
mod id;
mod item;
mod key;
mod member;
mod time_stamp;
mod visibility;

pub use agreement::{Agreement, Grantee, MAX_DELAY_MINUTES, Right};
pub use id::{
    AgreementId, DeliveryId, FeedId, ItemId, KeyId, MemberId, SavedSearchId, StoryId, SubscriptionId, Ulid, UserId,
};
pub use item::{EventKind, PubStatus, Urgency};
pub use key::{ApiKey, KeyHash, Role};
pub use member::{CountryCode, LanguageTag, Member, MemberName, same_language};
pub use time_stamp::Timestamp;
pub use visibility::{ItemAccess, Visibility, effective_delay, visibility_for, visible_from};

/// Why a value from outside could not become a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(field: &'static str, message: impl Into<String>) -> ParseError {
        ParseError { field, message: message.into() }
    }
}
