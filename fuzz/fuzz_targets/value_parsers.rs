//! The small parsers of outside values (ids, language tags, countries, keys, date-times, cursors,
//! event names, webhook URLs):
//! never a panic, and whatever is accepted is canonical (parsing its printed form gives it back).
#![no_main]

use karavan_domain::{ApiKey, CountryCode, EventKind, ItemId, LanguageTag, MemberId, Role, SubscriptionId, Timestamp};
use karavan_store::Cursor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(tag) = LanguageTag::parse(text) {
        assert_eq!(LanguageTag::parse(tag.as_str()).as_ref(), Ok(&tag));
    }
    if let Ok(country) = CountryCode::parse(text) {
        assert_eq!(CountryCode::parse(country.as_str()).as_ref(), Ok(&country));
    }
    if let Ok(id) = MemberId::parse(text) {
        assert_eq!(MemberId::parse(id.as_str()).as_ref(), Ok(&id));
    }
    if let Ok(id) = ItemId::parse(text) {
        assert_eq!(ItemId::parse(id.as_str()).as_ref(), Ok(&id));
    }
    if let Ok(key) = ApiKey::parse(text) {
        assert_eq!(ApiKey::parse(key.reveal()).map(|k| k.hash()), Ok(key.hash()));
    }
    if let Ok(role) = Role::parse(text) {
        assert_eq!(Role::parse(role.as_str()), Ok(role));
    }
    if let Ok(at) = Timestamp::parse_rfc3339("at", text) {
        assert_eq!(Timestamp::parse_rfc3339("at", &at.to_rfc3339()), Ok(at));
    }
    if let Some(cursor) = Cursor::parse_token(text) {
        assert_eq!(Cursor::parse_token(&cursor.to_token()), Some(cursor));
    }
    if let Ok(id) = SubscriptionId::parse(text) {
        assert_eq!(SubscriptionId::parse(id.as_str()).as_ref(), Ok(&id));
    }
    if let Ok(kind) = EventKind::parse(text) {
        assert_eq!(EventKind::parse(kind.as_str()), Ok(kind));
    }
    // A URL accepted without private addresses is accepted with them too, as the same URL.
    if let Ok(url) = karavan_server::outbound::check_url(text, false) {
        assert_eq!(karavan_server::outbound::check_url(text, true).map(|u| u.to_string()), Ok(url.to_string()));
        assert!(matches!(url.scheme(), "http" | "https"));
    }
});
