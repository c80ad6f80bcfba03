//! The parts of a news item's metadata that the exchange itself reasons about. The item's content
//! is a ninjs 3.1 document (see the karavan-ninjs crate); these are the fields extracted from it.

use crate::ParseError;

/// ninjs `pubStatus`. Stored as its ninjs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PubStatus {
    Usable,
    Withheld,
    Canceled,
}

impl PubStatus {
    pub fn parse(text: &str) -> Result<PubStatus, ParseError> {
        match text {
            "usable" => Ok(PubStatus::Usable),
            "withheld" => Ok(PubStatus::Withheld),
            "canceled" => Ok(PubStatus::Canceled),
            _ => Err(ParseError::new("pubStatus", format!("{text:?} is not usable, withheld or canceled"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PubStatus::Usable => "usable",
            PubStatus::Withheld => "withheld",
            PubStatus::Canceled => "canceled",
        }
    }
}

/// ninjs `urgency`: 1 (most urgent) to 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Urgency(u8);

impl Urgency {
    pub fn new(value: i64) -> Result<Urgency, ParseError> {
        if (1..=9).contains(&value) {
            Ok(Urgency(value as u8))
        } else {
            Err(ParseError::new("urgency", format!("{value} is not between 1 and 9")))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// What happened to an item, as subscriptions, feeds and the live wire report it. Stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A new item, visible at once.
    Publish,
    /// A new version of an item.
    Correction,
    /// The item was withdrawn (`pubStatus: canceled`).
    Kill,
    /// An embargoed item (or correction) whose embargo ends: it becomes visible then.
    EmbargoRelease,
}

impl EventKind {
    pub const ALL: [EventKind; 4] =
        [EventKind::Publish, EventKind::Correction, EventKind::Kill, EventKind::EmbargoRelease];

    pub fn parse(text: &str) -> Result<EventKind, ParseError> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            ParseError::new("events", format!("{text:?} is not an event (publish, correction, kill, embargo_release)"))
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Publish => "publish",
            EventKind::Correction => "correction",
            EventKind::Kill => "kill",
            EventKind::EmbargoRelease => "embargo_release",
        }
    }

    /// The event a newly stored version makes: its number (1 for a new item), status, and whether an
    /// embargo holds it back past its commit.
    pub fn of_version(number: i64, pub_status: PubStatus, embargoed: bool) -> EventKind {
        match (pub_status, embargoed, number) {
            (PubStatus::Canceled, _, _) => EventKind::Kill,
            (_, true, _) => EventKind::EmbargoRelease,
            (_, false, 1) => EventKind::Publish,
            _ => EventKind::Correction,
        }
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_versions_make_the_right_event() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(EventKind::parse("release").is_err());
        assert_eq!(EventKind::of_version(1, PubStatus::Usable, false), EventKind::Publish);
        assert_eq!(EventKind::of_version(2, PubStatus::Usable, false), EventKind::Correction);
        assert_eq!(EventKind::of_version(1, PubStatus::Usable, true), EventKind::EmbargoRelease);
        assert_eq!(EventKind::of_version(3, PubStatus::Canceled, true), EventKind::Kill);
    }
}
