//! Instants as microseconds since the Unix epoch, the one time representation the exchange stores.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ParseError;

/// Microseconds since 1970-01-01T00:00:00Z. Stored as an integer: changing it needs a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn from_offset_date_time(value: OffsetDateTime) -> Timestamp {
        let nanos = value.unix_timestamp_nanos();
        Timestamp((nanos / 1_000).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// Parses an RFC 3339 date-time such as `2026-11-21T09:30:00+05:00`.
    pub fn parse_rfc3339(field: &'static str, text: &str) -> Result<Timestamp, ParseError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(Timestamp::from_offset_date_time)
            .map_err(|error| ParseError::new(field, format!("{text:?} is not an RFC 3339 date-time ({error})")))
    }

    /// RFC 3339 in UTC with the precision the value has (seconds, milliseconds or microseconds).
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(value) => value.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }

    pub fn plus_minutes(self, minutes: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(minutes.saturating_mul(60_000_000)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_offsets_as_instants() {
        let t = Timestamp::parse_rfc3339("at", "2026-11-21T09:30:00+05:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T04:30:00Z");
        let micro = Timestamp::parse_rfc3339("at", "2026-11-21T04:30:00.123456Z").unwrap();
        assert_eq!(micro.micros() - t.micros(), 123_456);
        assert!(Timestamp::parse_rfc3339("at", "2026-11-21").is_err());
        assert_eq!(t.plus_minutes(2).micros() - t.micros(), 120_000_000);
    }
}
