//! Passwords of web newsroom users: argon2id hashes in PHC form, never the password itself.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// The longest: hashing cost must not be the caller's to choose.
pub const MAX_LENGTH: usize = 256;

/// Checks a new password's length; the message names what is wrong.
pub fn check(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("password: at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("password: at most {MAX_LENGTH} bytes"));
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's default parameters) and a random salt. CPU-heavy:
/// call it off the async threads.
pub fn hash(password: &str) -> Result<String, String> {
    check(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing: {e}"))
}

/// Whether `password` matches a stored hash. CPU-heavy, like [`hash`].
pub fn verify(stored: &str, password: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password_and_are_salted() {
        let first = hash("correct horse battery").unwrap();
        let second = hash("correct horse battery").unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify(&first, "correct horse battery"));
        assert!(!verify(&first, "correct horse battery!"));
        assert!(!verify("not a hash", "correct horse battery"));
        assert!(hash("short").unwrap_err().contains("at least"));
        assert!(!verify(&first, &"x".repeat(MAX_LENGTH + 1)));
    }
}
