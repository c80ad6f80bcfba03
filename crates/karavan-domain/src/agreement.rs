//! Sharing agreements: a member grants another member, or every member, the right to view or to
//! republish its content, optionally limited to some subjects and with a delay.

use std::fmt;

use crate::{AgreementId, MemberId, ParseError, Timestamp};

/// The right an agreement grants. Republishing includes viewing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    View,
    Republish,
}

impl Right {
    pub fn parse(text: &str) -> Result<Right, ParseError> {
        match text {
            "view" => Ok(Right::View),
            "republish" => Ok(Right::Republish),
            _ => Err(ParseError::new("right", format!("{text:?} is not a right (view or republish)"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Right::View => "view",
            Right::Republish => "republish",
        }
    }
}

/// Who an agreement is granted to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grantee {
    Member(MemberId),
    /// Every member of the exchange, present and future (`"*"` on the wire).
    Everyone,
}

impl Grantee {
    pub fn parse(text: &str) -> Result<Grantee, ParseError> {
        if text == "*" {
            return Ok(Grantee::Everyone);
        }
        MemberId::parse(text)
            .map(Grantee::Member)
            .map_err(|error| ParseError::new("grantee", format!("{} (or \"*\" for every member)", error.message)))
    }

    pub fn includes(&self, member: &MemberId) -> bool {
        match self {
            Grantee::Everyone => true,
            Grantee::Member(id) => id == member,
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Everyone => f.write_str("*"),
            Grantee::Member(id) => f.write_str(id.as_str()),
        }
    }
}

/// A grant from `grantor` to `grantee`. Stored: changing it needs a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: AgreementId,
    pub grantor: MemberId,
    pub grantee: Grantee,
    pub right: Right,
    /// Subject codes or URIs the agreement is limited to; empty means all of the grantor's content.
    pub subjects: Vec<String>,
    /// Minutes after an item becomes available before the grantee sees it.
    pub delay_minutes: u32,
    pub created_at: Timestamp,
}

/// The most a delay may be: 30 days. Longer delays are refused as likely mistakes.
pub const MAX_DELAY_MINUTES: u32 = 30 * 24 * 60;

impl Agreement {
    /// Whether the agreement covers an item with these subject keys (codes, URIs or names).
    pub fn covers_subjects(&self, item_subjects: &[String]) -> bool {
        self.subjects.is_empty() || self.subjects.iter().any(|wanted| item_subjects.iter().any(|have| have == wanted))
    }
}
