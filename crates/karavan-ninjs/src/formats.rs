//! The string formats ninjs schemas name (`date-time`, `uri`, and the 3.x truncated date-time pattern),
//! checked by hand so that the crate needs no regex or URI library.
//!
//! Validation of incoming documents never asserts `date-time` or `uri`: IPTC's own test runner does not
//! either, and its suite has documents with values like "Last Tuesday" that must be accepted. These
//! checks are used for the 3.1 document that normalisation produces, which must satisfy the formats
//! (see `normalize.rs` for the repairs).
//!
//! A value is accepted here only if every validator Karavan cares about would accept it: the
//! `date-time` check is the RFC 3339 grammar of JSON Schema *and* the `time` crate's RFC 3339 parser,
//! which the rest of Karavan uses to read timestamps; the `uri` check is RFC 3986's `URI` production,
//! minus the rarely used `IPvFuture` host form, which is refused.

use std::net::Ipv6Addr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An RFC 3339 `date-time` as JSON Schema defines the format (`T` or `t` between date and time, an
/// offset `Z`, `z` or `±hh:mm`) that the `time` crate can also read.
pub(crate) fn is_date_time(text: &str) -> bool {
    is_date_time_grammar(text) && OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

fn is_date_time_grammar(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(separator) = bytes.iter().position(|&b| b == b'T' || b == b't') else {
        return false;
    };
    let (date, time) = bytes.split_at(separator);
    is_full_date(date) && is_full_time(&time[1..])
}

/// `YYYY-MM-DD` with a day that exists in that month.
fn is_full_date(bytes: &[u8]) -> bool {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *bytes else {
        return false;
    };
    let (Some(year), Some(month), Some(day)) = (digits(&[y1, y2, y3, y4]), digits(&[m1, m2]), digits(&[d1, d2])) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// `HH:MM:SS[.fraction](Z|z|+hh:mm|-hh:mm)`. Leap seconds (`:60`) are refused: the `time` crate and
/// JSON Schema disagree on them, and no news item needs one.
fn is_full_time(bytes: &[u8]) -> bool {
    let [h1, h2, b':', m1, m2, b':', s1, s2, rest @ ..] = bytes else {
        return false;
    };
    let (Some(hour), Some(minute), Some(second)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2]), digits(&[*s1, *s2]))
    else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    match after_fraction(rest) {
        Some([b'Z' | b'z']) => true,
        Some(offset) => is_numeric_offset(offset),
        None => false,
    }
}

/// What follows an optional `.fraction` (at least one digit after the dot); `None` when the fraction is
/// malformed.
fn after_fraction(rest: &[u8]) -> Option<&[u8]> {
    match rest {
        [b'.', fraction @ ..] => {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            (count > 0).then(|| &fraction[count..])
        }
        _ => Some(rest),
    }
}

/// `+hh:mm` or `-hh:mm` with hours up to 23 and minutes up to 59.
fn is_numeric_offset(bytes: &[u8]) -> bool {
    let [b'+' | b'-', o1, o2, b':', o3, o4] = *bytes else {
        return false;
    };
    matches!((digits(&[o1, o2]), digits(&[o3, o4])), (Some(hours), Some(minutes)) if hours <= 23 && minutes <= 59)
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// Turns a near miss into a valid `date-time`, or says it cannot.
///
/// Repairs, in order: a valid value is kept as it is; a date alone (`2019-09-24`) becomes midnight UTC
/// (`2019-09-24T00:00:00Z`); a date and time without an offset (`2019-10-08T12:00:00`,
/// `2019-10-08T12:00`, also with a space instead of `T`) is taken as UTC and gets `Z` (and `:00`
/// seconds when they are missing); a date and time with an offset but a space instead of `T` gets the
/// `T`. Anything else ("Last Tuesday") cannot be repaired.
pub(crate) fn repair_date_time(text: &str) -> Option<String> {
    if is_date_time(text) {
        return Some(text.to_string());
    }
    let trimmed = text.trim();
    let bytes = trimmed.as_bytes();
    if bytes.len() == 10 && is_full_date(bytes) {
        return checked(format!("{trimmed}T00:00:00Z"));
    }
    // Only ASCII repairs are attempted, so byte offsets below are character boundaries.
    if bytes.len() < 16 || !trimmed.is_ascii() || !is_full_date(&bytes[..10]) {
        return None;
    }
    let date = &trimmed[..10];
    let separator = bytes[10];
    if separator != b'T' && separator != b't' && separator != b' ' {
        return None;
    }
    let time = &trimmed[11..];
    let candidates = [format!("{date}T{time}"), format!("{date}T{time}Z"), format!("{date}T{time}:00Z")];
    candidates.into_iter().find(|candidate| is_date_time(candidate))
}

fn checked(candidate: String) -> Option<String> {
    is_date_time(&candidate).then_some(candidate)
}

/// The 3.x `truncatedDateTimeType`: a date-time that may stop after the year, the month, the day or
/// the seconds, with an optional offset after a full time. A hand-written equivalent of the schema's
/// pattern `^(-?(?:[1-9][0-9]*)?[0-9]{4})(-(1[0-2]|0[1-9])(-(3[01]|0[1-9]|[12][0-9])(T(2[0-3]|[01][0-9]):([0-5][0-9]):([0-5][0-9])(\.[0-9]+)?(Z|[+-](?:2[0-3]|[01][0-9]):[0-5][0-9])?)?)?)?$`.
pub(crate) fn is_truncated_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut rest = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let year_length = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // Four digits, or more than four without a leading zero.
    if year_length < 4 || (year_length > 4 && rest.first() == Some(&b'0')) {
        return false;
    }
    rest = &rest[year_length..];
    if rest.is_empty() {
        return true;
    }
    let [b'-', m1, m2, after_month @ ..] = rest else {
        return false;
    };
    if !matches!(digits(&[*m1, *m2]), Some(1..=12)) {
        return false;
    }
    if after_month.is_empty() {
        return true;
    }
    let [b'-', d1, d2, after_day @ ..] = after_month else {
        return false;
    };
    if !matches!(digits(&[*d1, *d2]), Some(1..=31)) {
        return false;
    }
    if after_day.is_empty() {
        return true;
    }
    let [b'T', h1, h2, b':', n1, n2, b':', s1, s2, after_time @ ..] = after_day else {
        return false;
    };
    let in_range = |pair: [u8; 2], max: u32| digits(&pair).is_some_and(|value| value <= max);
    if !(in_range([*h1, *h2], 23) && in_range([*n1, *n2], 59) && in_range([*s1, *s2], 59)) {
        return false;
    }
    match after_fraction(after_time) {
        Some([] | [b'Z']) => true,
        Some(offset) => is_numeric_offset(offset),
        None => false,
    }
}

/// RFC 3986 `URI`: `scheme ":" hier-part [ "?" query ] [ "#" fragment ]`, ASCII only.
pub(crate) fn is_uri(text: &str) -> bool {
    let Some(colon) = text.find(':') else {
        return false;
    };
    let (scheme, rest) = (&text[..colon], &text[colon + 1..]);
    let mut scheme_chars = scheme.bytes();
    if !scheme_chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !scheme_chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return false;
    }
    let (before_fragment, fragment) = match rest.find('#') {
        Some(hash) => (&rest[..hash], Some(&rest[hash + 1..])),
        None => (rest, None),
    };
    let (hier_part, query) = match before_fragment.find('?') {
        Some(question) => (&before_fragment[..question], Some(&before_fragment[question + 1..])),
        None => (before_fragment, None),
    };
    let query_ok = query.is_none_or(|q| all_chars(q, |b| is_pchar(b) || b == b'/' || b == b'?'));
    let fragment_ok = fragment.is_none_or(|f| all_chars(f, |b| is_pchar(b) || b == b'/' || b == b'?'));
    query_ok && fragment_ok && is_hier_part(hier_part)
}

fn is_hier_part(text: &str) -> bool {
    match text.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            is_authority(&after[..end]) && is_path(&after[end..])
        }
        // path-absolute, path-rootless or path-empty: "//" was handled above, so any run of
        // segments is one of them.
        None => is_path(text),
    }
}

fn is_path(text: &str) -> bool {
    all_chars(text, |b| is_pchar(b) || b == b'/')
}

fn is_authority(text: &str) -> bool {
    let (userinfo, host_port) = match text.rfind('@') {
        Some(at) => (Some(&text[..at]), &text[at + 1..]),
        None => (None, text),
    };
    if let Some(userinfo) = userinfo
        && !all_chars(userinfo, |b| is_unreserved(b) || is_sub_delim(b) || b == b':')
    {
        return false;
    }
    let (host, port) = if let Some(literal) = host_port.strip_prefix('[') {
        let Some(close) = literal.find(']') else {
            return false;
        };
        if literal[..close].parse::<Ipv6Addr>().is_err() {
            return false;
        }
        (None, &literal[close + 1..])
    } else {
        match host_port.find(':') {
            Some(colon) => (Some(&host_port[..colon]), &host_port[colon..]),
            None => (Some(host_port), ""),
        }
    };
    let host_ok = host.is_none_or(|name| all_chars(name, |b| is_unreserved(b) || is_sub_delim(b)));
    let port_ok =
        port.is_empty() || port.strip_prefix(':').is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Checks every character of `text` with `allowed`, treating a well-formed `%XX` as one allowed
/// character (pct-encoded is allowed wherever it appears in the grammar used here).
fn all_chars(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let well_formed = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !well_formed {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// Percent-encodes every byte of `text` that is not unreserved, so the result can sit in any URI
/// component.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for b in text.bytes() {
        if is_unreserved(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        for good in [
            "2019-09-24T00:00:00Z",
            "2019-09-24t00:00:00.123z",
            "2024-02-29T23:59:59+14:00",
            "2021-05-26T13:40:18+02:00",
        ] {
            assert!(is_date_time(good), "{good}");
        }
        for bad in [
            "2019-09-24",
            "2019-02-29T00:00:00Z",
            "2019-09-24T24:00:00Z",
            "2019-09-24T00:00:00",
            "Last Tuesday",
            "",
            "2019-09-24T00:00:00.Z",
            "2019-09-24T00:00:60Z",
            "٢٠١٩-09-24T00:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn date_time_repairs() {
        let cases = [
            ("2019-09-24", Some("2019-09-24T00:00:00Z")),
            ("2019-10-08T12:00:00", Some("2019-10-08T12:00:00Z")),
            ("2019-10-08 12:00", Some("2019-10-08T12:00:00Z")),
            ("2019-10-08 12:00:00+02:00", Some("2019-10-08T12:00:00+02:00")),
            ("2019-09-24T00:00:00Z", Some("2019-09-24T00:00:00Z")),
            ("Last Tuesday", None),
            ("2019-02-30", None),
            ("2019-10-08T12", None),
            ("2019-10-08Tééééé", None),
        ];
        for (input, expected) in cases {
            assert_eq!(repair_date_time(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn truncated_date_times() {
        for good in [
            "2023",
            "2023-08",
            "2023-07-11",
            "2024-01-01T00:30:00-04:00",
            "2024-01-01T00:30:00",
            "-12345",
            "2024-01-01T00:30:00.5Z",
        ] {
            assert!(is_truncated_date_time(good), "{good}");
        }
        for bad in [
            "February 29th 2024",
            "202",
            "02023",
            "2023-13",
            "2023-07-11T",
            "2023-07-11T00:30",
            "2023-07-11 00:30:00",
            "2023-07-11T00:30:00z",
            "2023-07-11\n",
        ] {
            assert!(!is_truncated_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        for good in [
            "http://www.iptc.org/std/ninjs/ninjs-schema_1.3.json",
            "urn:001_bad_property",
            "srt://128.0.0.1:9000",
            "http://api.ap.org/media/v/content/b2b6c3f4642f46deac7509d4db315ca0?qt=H1Kdh42orF&et=0a1aza3c0",
            "https://www.washingtonpost.com/policies-and-standards/#ownershipstructure",
            "file:///tmp/x",
            "http://[::1]:80/a",
            "mailto:a@b.c",
            "urn:karavan:ninjs:",
            "notrecommended:but-punctuation-is-allowed",
        ] {
            assert!(is_uri(good), "{good}");
        }
        for bad in [
            "",
            "ninjs_test_suite_001",
            "002-schema",
            "http://a b",
            "1http://x",
            "http://x/%zz",
            "http://[zz]/",
            "http://é.com",
            "http://x:8a/",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("002-schema"), "002-schema");
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
