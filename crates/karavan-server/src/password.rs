//! Passwords of web newsroom users: argon2id hashes in PHC form, never the password itself.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// The longest: hashing cost must not be the caller's to choose.
pub const MAX_LENGTH: usize = 256;

/// The least zxcvbn score a new password must reach (3: "safely unguessable", about 10^8 guesses
/// and more, out of reach of an online attack and slow against an offline one on argon2id).
pub const MIN_SCORE: u8 = 3;

/// Checks a new password: its length, and its strength as zxcvbn estimates it (common passwords,
/// keyboard patterns, dates, repeats, and words of the user's own email, name and member are all
/// cheap to guess). The message names what is wrong and how to do better.
pub fn check_for(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("password: at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("password: at most {MAX_LENGTH} bytes"));
    }
    // The user's own words, split as zxcvbn matches them (an email's name and domain parts too).
    let mut words: Vec<String> = vec!["karavan".to_string()];
    for input in user_inputs {
        words.push(input.to_lowercase());
        words.extend(
            input.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).map(str::to_string),
        );
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &words);
    let score = u8::from(estimate.score());
    if score < MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|feedback| feedback.warning().map(|warning| warning.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".to_string());
        return Err(format!(
            "password: too easy to guess ({hint}); use a longer phrase of unrelated words, or a password manager"
        ));
    }
    Ok(())
}

/// [`check_for`] without user inputs.
pub fn check(password: &str) -> Result<(), String> {
    check_for(password, &[])
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

    #[test]
    fn guessable_passwords_are_refused() {
        for weak in ["password123", "qwertyuiop", "1234567890", "aaaaaaaaaaaa", "Password2026!", "iloveyou12345"] {
            assert!(check(weak).unwrap_err().contains("too easy to guess"), "{weak}");
        }
        // The user's own words count for little.
        assert!(check_for("Kazinform2026", &["editor@kazinform.kz"]).is_err());
        assert!(check("Kazinform2026").is_ok(), "without the user's words it would pass");
        for strong in ["correct horse battery", "Tr0ub4dor&3x-plum", "a long enough password"] {
            assert_eq!(check(strong), Ok(()), "{strong}");
        }
    }
}
