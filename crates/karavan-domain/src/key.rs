//! API keys and roles. A key is 32 random bytes shown once; only its SHA-256 is stored.
//!
//! SHA-256 rather than a password hash is deliberate: the key has 256 bits of entropy, so a slow hash
//! adds no protection and would cost every request a slow computation.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ParseError;

/// What a key may do within its member. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads what agreements allow.
    Reader,
    /// Reads, and publishes, corrects and kills the member's items.
    Editor,
    /// All of the above, and manages the member's keys and agreements.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, ParseError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "reader" => Ok(Role::Reader),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            _ => Err(ParseError::new("role", format!("{text:?} is not a role (admin, editor or reader)"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn can_publish(self) -> bool {
        self >= Role::Editor
    }

    pub fn can_administer(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const KEY_PREFIX: &str = "kvn_";

/// A secret API key, `kvn_` followed by 64 lowercase hex digits. Never stored, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Builds a key from 32 bytes of caller-supplied randomness.
    pub fn from_random(bytes: [u8; 32]) -> ApiKey {
        let mut text = String::with_capacity(KEY_PREFIX.len() + 64);
        text.push_str(KEY_PREFIX);
        for byte in bytes {
            text.push_str(&format!("{byte:02x}"));
        }
        ApiKey(text)
    }

    pub fn parse(text: &str) -> Result<ApiKey, ParseError> {
        let body = text
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| ParseError::new("authorization", "the API key is malformed"))?;
        if body.len() != 64 || !body.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ParseError::new("authorization", "the API key is malformed"));
        }
        Ok(ApiKey(text.to_string()))
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The key itself, for showing once to whoever created it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// The stored form of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_hash() {
        let key = ApiKey::from_random([0xAB; 32]);
        assert!(key.reveal().starts_with("kvn_abab"));
        assert_eq!(ApiKey::parse(key.reveal()).unwrap().hash(), key.hash());
        assert_ne!(ApiKey::from_random([0; 32]).hash(), key.hash());
        assert!(ApiKey::parse("kvn_ABAB").is_err());
        assert!(ApiKey::parse(&key.reveal().to_uppercase()).is_err());
        assert_eq!(format!("{key:?}"), "ApiKey(…)", "keys never reach logs");
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::parse("Admin").unwrap().can_administer());
        assert!(Role::Editor.can_publish() && !Role::Editor.can_administer());
        assert!(!Role::Reader.can_publish());
        assert!(Role::parse("owner").is_err());
    }
}
