//! The vocabularies the newsroom names in the reader's language: the top-level IPTC Media Topics
//! (subjects) and the IPTC genres the publishing form offers. Their names are UI messages
//! (`topic-04000000`, `genre-Analysis`), so every locale has them (the locale test checks).

/// The 17 top-level IPTC Media Topics: (code, English name as IPTC gives it).
pub const MEDIA_TOPICS: [(&str, &str); 17] = [
    ("01000000", "arts, culture, entertainment and media"),
    ("02000000", "crime, law and justice"),
    ("03000000", "disaster, accident and emergency incident"),
    ("04000000", "economy, business and finance"),
    ("05000000", "education"),
    ("06000000", "environment"),
    ("07000000", "health"),
    ("08000000", "human interest"),
    ("09000000", "labour"),
    ("10000000", "lifestyle and leisure"),
    ("11000000", "politics"),
    ("12000000", "religion"),
    ("13000000", "science and technology"),
    ("14000000", "society"),
    ("15000000", "sport"),
    ("16000000", "conflict, war and peace"),
    ("17000000", "weather"),
];

/// The IPTC genres (NewsCodes `genre`) the publishing form offers.
pub const GENRES: [&str; 7] = ["Current", "Analysis", "Background", "Feature", "Interview", "Opinion", "Profile"];

const MEDIA_TOPIC_URI: &str = "http://cv.iptc.org/newscodes/mediatopic/";
const GENRE_URI: &str = "http://cv.iptc.org/newscodes/genre/";

/// The QCode of a Media Topic code (`medtop:04000000`), as subject filters and agreements name it.
pub fn qcode(code: &str) -> String {
    format!("medtop:{code}")
}

/// A top-level Media Topic's name in a UI language (its `topic-<code>` message).
pub fn name(localizer: &crate::Localizer, locale: &str, code: &str) -> String {
    localizer.message(locale, &format!("topic-{code}"), &[])
}

/// The ninjs subject of a top-level Media Topic: name, URI and QCode literal.
pub fn subject(code: &str) -> Option<serde_json::Value> {
    let (code, name) = MEDIA_TOPICS.iter().find(|(c, _)| *c == code)?;
    Some(serde_json::json!({ "name": name, "uri": format!("{MEDIA_TOPIC_URI}{code}"), "literal": qcode(code) }))
}

/// The top-level Media Topic a subject key or a ninjs subject names (its QCode `medtop:…`, its
/// NewsCodes URI, or a bare code), if it is one of the 17.
pub fn topic_code(key: &str) -> Option<&'static str> {
    let key = key.trim();
    let code = key
        .strip_prefix("medtop:")
        .or_else(|| key.strip_prefix(MEDIA_TOPIC_URI))
        .or_else(|| key.strip_prefix("https://cv.iptc.org/newscodes/mediatopic/"))
        .unwrap_or(key)
        .trim_end_matches('/');
    MEDIA_TOPICS.iter().map(|(c, _)| *c).find(|c| *c == code)
}

/// The top-level Media Topic of a ninjs subject object (by its literal or URI).
pub fn subject_topic(subject: &serde_json::Value) -> Option<&'static str> {
    ["literal", "uri", "code"]
        .iter()
        .filter_map(|field| subject.get(field).and_then(serde_json::Value::as_str))
        .find_map(topic_code)
}

/// The ninjs genre for one of [`GENRES`].
pub fn genre(name: &str) -> Option<serde_json::Value> {
    let name = GENRES.iter().find(|g| **g == name)?;
    Some(serde_json::json!({ "name": name, "uri": format!("{GENRE_URI}{name}") }))
}

/// The genre of a ninjs genre object, if it is one of [`GENRES`].
pub fn genre_of(value: &serde_json::Value) -> Option<&'static str> {
    let uri = value.get("uri").and_then(serde_json::Value::as_str).unwrap_or_default();
    let name = value.get("name").and_then(serde_json::Value::as_str).unwrap_or_default();
    let from_uri = uri.strip_prefix(GENRE_URI).unwrap_or_default();
    GENRES.iter().copied().find(|g| *g == from_uri || g.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_found_by_qcode_uri_or_code() {
        assert_eq!(topic_code("medtop:04000000"), Some("04000000"));
        assert_eq!(topic_code("http://cv.iptc.org/newscodes/mediatopic/17000000/"), Some("17000000"));
        assert_eq!(topic_code("11000000"), Some("11000000"));
        assert_eq!(topic_code("medtop:20000001"), None, "only the top level");
        assert_eq!(topic_code("economy"), None);
        let subject = subject("06000000").unwrap();
        assert_eq!(subject["literal"], "medtop:06000000");
        assert_eq!(subject_topic(&subject), Some("06000000"));
        assert_eq!(genre_of(&genre("Analysis").unwrap()), Some("Analysis"));
        assert!(genre("Gossip").is_none());
    }
}
