//! Member agencies and the small value types that describe them.

use std::fmt;

use crate::{MemberId, ParseError, Timestamp};

/// A member agency of the exchange. Stored: changing it needs a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    pub name: MemberName,
    pub country: CountryCode,
    pub languages: Vec<LanguageTag>,
    /// Public contact (an address or a URL) shown to other members.
    pub contact: Option<String>,
    pub created_at: Timestamp,
}

/// A member's display name: 1 to 200 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName(String);

impl MemberName {
    pub fn parse(text: &str) -> Result<MemberName, ParseError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ParseError::new("name", "must not be empty"));
        }
        if trimmed.chars().count() > 200 {
            return Err(ParseError::new("name", "must be at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ParseError::new("name", "must not contain control characters"));
        }
        Ok(MemberName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case (`KZ`, `CN`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(text: &str) -> Result<CountryCode, ParseError> {
        let text = text.trim();
        if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::new(
                "country",
                format!("{text:?} is not an ISO 3166-1 alpha-2 country code (two letters, e.g. KZ)"),
            ));
        }
        Ok(CountryCode(text.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A BCP 47 language tag in canonical case (`kk`, `uz-Latn`, `zh-Hans-CN`).
///
/// Checks the well-formedness of the common `language[-script][-region][-variant…]` shape; private-use
/// and grandfathered tags are refused because the exchange's language features could not use them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LanguageTag(String);

impl LanguageTag {
    pub fn parse(text: &str) -> Result<LanguageTag, ParseError> {
        let invalid = |why: &str| ParseError::new("language", format!("{text:?} is not a BCP 47 language tag: {why}"));
        let mut parts = text.trim().split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid("the language subtag must be 2 or 3 letters"));
        }
        let mut out = language.to_ascii_lowercase();
        let mut seen_script = false;
        let mut seen_region = false;
        for part in parts {
            let is_alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
            let is_digit = part.bytes().all(|b| b.is_ascii_digit());
            out.push('-');
            if part.len() == 4 && is_alpha && !seen_script && !seen_region {
                seen_script = true;
                let mut chars = part.chars();
                out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            } else if ((part.len() == 2 && is_alpha) || (part.len() == 3 && is_digit)) && !seen_region {
                seen_region = true;
                out.push_str(&part.to_ascii_uppercase());
            } else if (5..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
                || (part.len() == 4
                    && part.as_bytes()[0].is_ascii_digit()
                    && part.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                out.push_str(&part.to_ascii_lowercase());
            } else {
                return Err(invalid(&format!("unexpected subtag {part:?}")));
            }
        }
        Ok(LanguageTag(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag (`uz` for `uz-Latn`).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// Whether a reader of language tag `b` reads text in `a` without translation: the same primary
/// language (`kk` and `kk-Cyrl`; Uzbek in either script, which is script conversion, not translation),
/// except Chinese, whose simplified and traditional forms are translated between.
pub fn same_language(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    if a == b {
        return true;
    }
    let primary = |t: &str| t.split(['-', '_']).next().unwrap_or_default().to_string();
    let chinese_script = |t: &str| match t {
        "zh" | "zh-cn" | "zh-sg" | "zh-hans" | "zh-hans-cn" => "hans",
        _ if t.starts_with("zh-hant") || t == "zh-tw" || t == "zh-hk" || t == "zh-mo" => "hant",
        _ => "hans",
    };
    primary(&a) == primary(&b) && (primary(&a) != "zh" || chinese_script(&a) == chinese_script(&b))
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_language_is_by_primary_subtag_and_chinese_script() {
        assert!(same_language("kk", "kk-Cyrl"));
        assert!(same_language("uz-Latn", "uz-Cyrl"));
        assert!(same_language("ZH", "zh-Hans"));
        assert!(!same_language("zh-Hans", "zh-Hant"));
        assert!(!same_language("zh-TW", "zh-CN"));
        assert!(!same_language("kk", "ky"));
    }

    fn check(input: &str, expected: Option<&str>) {
        let got = LanguageTag::parse(input).ok();
        assert_eq!(got.as_ref().map(LanguageTag::as_str), expected, "input {input:?}");
    }

    #[test]
    fn language_tags() {
        check("kk", Some("kk"));
        check("UZ-latn", Some("uz-Latn"));
        check("zh-hans-cn", Some("zh-Hans-CN"));
        check("zh_CN", Some("zh-CN"));
        check("es-419", Some("es-419"));
        check("de-CH-1996", Some("de-CH-1996"));
        check("", None);
        check("k", None);
        check("kazakh", None);
        check("kk-", None);
        check("kk-Cyrl-Latn", None);
        check("en-US-GB", None);
    }

    #[test]
    fn countries_and_names() {
        assert_eq!(CountryCode::parse("kz").unwrap().as_str(), "KZ");
        assert!(CountryCode::parse("KAZ").is_err());
        assert!(CountryCode::parse("K1").is_err());
        assert_eq!(MemberName::parse("  Kazinform ").unwrap().as_str(), "Kazinform");
        assert!(MemberName::parse(" ").is_err());
        assert!(MemberName::parse("a\u{0}b").is_err());
    }
}
