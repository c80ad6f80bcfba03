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
