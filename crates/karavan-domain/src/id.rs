//! Identifiers: ULIDs (time-ordered, 128 bits) with a short type prefix, so that an id says what it names.

use std::fmt;

use crate::ParseError;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID: 48 bits of milliseconds since the Unix epoch, then 80 random bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ulid(u128);

impl Ulid {
    /// Builds a ULID from a time and caller-supplied randomness (the domain takes no entropy itself).
    pub fn from_parts(unix_millis: u64, random: [u8; 10]) -> Ulid {
        let mut value = u128::from(unix_millis & 0xFFFF_FFFF_FFFF) << 80;
        for (i, byte) in random.iter().enumerate() {
            value |= u128::from(*byte) << (8 * (9 - i));
        }
        Ulid(value)
    }

    /// The 26-character Crockford base32 form.
    pub fn encode(self) -> String {
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *slot = CROCKFORD[((self.0 >> shift) & 0x1F) as usize];
        }
        out.iter().map(|b| *b as char).collect()
    }

    pub fn decode(text: &str) -> Option<Ulid> {
        if text.len() != 26 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, ch) in text.bytes().enumerate() {
            let digit = CROCKFORD.iter().position(|c| *c == ch.to_ascii_uppercase())? as u128;
            // The first character carries only 3 bits (128 = 26 * 5 - 2).
            if i == 0 && digit > 7 {
                return None;
            }
            value = (value << 5) | digit;
        }
        Some(Ulid(value))
    }

    pub fn unix_millis(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new(ulid: Ulid) -> $name {
                $name(format!("{}{}", $prefix, ulid.encode()))
            }

            pub fn parse(text: &str) -> Result<$name, ParseError> {
                let rest = text.strip_prefix($prefix).ok_or_else(|| {
                    ParseError::new($field, format!("{text:?} is not a {} id (they start with {:?})", $field, $prefix))
                })?;
                let ulid = Ulid::decode(rest)
                    .ok_or_else(|| ParseError::new($field, format!("{text:?} is not a well-formed {} id", $field)))?;
                Ok($name::new(ulid))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A member agency.
    MemberId, "mbr_", "member"
);
prefixed_id!(
    /// A news item (all its versions share the id).
    ItemId, "itm_", "item"
);
prefixed_id!(
    /// An API key (the id is public; the secret is the key itself).
    KeyId, "key_", "key"
);
prefixed_id!(
    /// A sharing agreement.
    AgreementId, "agr_", "agreement"
);
prefixed_id!(
    /// A saved search.
    SavedSearchId, "srch_", "saved search"
);
prefixed_id!(
    /// A subscription: a saved query with delivery options.
    SubscriptionId, "sub_", "subscription"
);
prefixed_id!(
    /// A person who signs in to the web newsroom, on behalf of one member.
    UserId, "usr_", "user"
);
prefixed_id!(
    /// A feed ingest provider: an RSS or Atom feed polled into a member's items.
    FeedId, "feed_", "feed provider"
);
prefixed_id!(
    /// One delivery of one item event to one subscription; also its idempotency key.
    DeliveryId, "dlv_", "delivery"
);
prefixed_id!(
    /// A story: the items of one event across agencies and languages.
    StoryId, "sty_", "story"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_round_trips_and_orders_by_time() {
        let a = Ulid::from_parts(1_700_000_000_000, [0xFF; 10]);
        let b = Ulid::from_parts(1_700_000_000_001, [0; 10]);
        assert!(a < b);
        assert!(a.encode() < b.encode(), "the text form sorts like the value");
        assert_eq!(Ulid::decode(&a.encode()), Some(a));
        assert_eq!(a.unix_millis(), 1_700_000_000_000);
    }

    #[test]
    fn ids_check_prefix_and_body() {
        let id = MemberId::new(Ulid::from_parts(5, [7; 10]));
        assert_eq!(MemberId::parse(id.as_str()), Ok(id.clone()));
        assert!(MemberId::parse("itm_01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err());
        assert!(MemberId::parse("mbr_short").is_err());
        assert!(MemberId::parse("mbr_81ARZ3NDEKTSV4RRFFQ69G5FAV").is_err(), "overflowing first digit");
        // Lowercase input is accepted and canonicalised.
        let lower = id.as_str().to_ascii_lowercase();
        assert_eq!(MemberId::parse(&lower).unwrap(), id);
    }
}
