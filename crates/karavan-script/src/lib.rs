//! Script conversion for the member languages written in Cyrillic and Latin: Uzbek (the 1995 Latin
//! alphabet), Kazakh (the 2021 Latin alphabet), Turkmen (the 1993 alphabet), and for Kyrgyz and Tajik a
//! common romanisation. Also the search fold, which maps both scripts of a word to one skeleton so that
//! a query in either script finds both.
//!
//! Both directions: [`to_latin`] and [`to_cyrillic`] (Uzbek, Kazakh and Turkmen; Kyrgyz and Tajik
//! romanisation is one way), [`detect_script`], and [`convert`], which converts only the words that
//! are in the other script.
//!
//! Pure functions, no IO.

mod cyrillic;
mod latin;

pub use cyrillic::to_cyrillic;
pub use latin::to_latin;

/// The languages with a Cyrillic → Latin table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Uzbek,
    Kazakh,
    Turkmen,
    Kyrgyz,
    Tajik,
}

impl Language {
    /// From a BCP 47 tag's primary subtag (`uz-Cyrl` → Uzbek).
    pub fn from_tag(tag: &str) -> Option<Language> {
        match tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase().as_str() {
            "uz" | "uzn" => Some(Language::Uzbek),
            "kk" => Some(Language::Kazakh),
            "tk" => Some(Language::Turkmen),
            "ky" => Some(Language::Kyrgyz),
            "tg" => Some(Language::Tajik),
            _ => None,
        }
    }
}

/// A writing system of the member languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    Cyrillic,
    Latin,
}

impl Script {
    /// From an ISO 15924 code as used in BCP 47 script subtags ("Cyrl", "Latn", any case).
    pub fn from_subtag(subtag: &str) -> Option<Script> {
        if subtag.eq_ignore_ascii_case("cyrl") {
            Some(Script::Cyrillic)
        } else if subtag.eq_ignore_ascii_case("latn") {
            Some(Script::Latin)
        } else {
            None
        }
    }

    /// The ISO 15924 code: "Cyrl" or "Latn".
    pub fn subtag(self) -> &'static str {
        match self {
            Script::Cyrillic => "Cyrl",
            Script::Latin => "Latn",
        }
    }

    fn other(self) -> Script {
        match self {
            Script::Cyrillic => Script::Latin,
            Script::Latin => Script::Cyrillic,
        }
    }
}

/// The script of one letter, if it is a Cyrillic or a Latin one.
fn letter_script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    match c {
        '\u{0400}'..='\u{052F}' | '\u{1C80}'..='\u{1C8F}' | '\u{2DE0}'..='\u{2DFF}' | '\u{A640}'..='\u{A69F}' => {
            Some(Script::Cyrillic)
        }
        'A'..='Z' | 'a'..='z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{2C60}'..='\u{2C7F}' => {
            Some(Script::Latin)
        }
        _ => None,
    }
}

/// The script most of the Cyrillic and Latin letters of `text` are in; `None` when it has none of
/// either, or as many of one as of the other. Other scripts, digits, punctuation and the apostrophe
/// marks do not count.
pub fn detect_script(text: &str) -> Option<Script> {
    let (mut cyrillic, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        match letter_script(c) {
            Some(Script::Cyrillic) => cyrillic += 1,
            Some(Script::Latin) => latin += 1,
            None => {}
        }
    }
    match cyrillic.cmp(&latin) {
        std::cmp::Ordering::Greater => Some(Script::Cyrillic),
        std::cmp::Ordering::Less => Some(Script::Latin),
        std::cmp::Ordering::Equal => None,
    }
}

/// Converts `text` in `language` to the script `to`, word by word: a word (letters with the apostrophe
/// marks and combining marks inside it) is converted when most of its letters are in the other script,
/// and left as it is otherwise, so text already in `to`, and the words of a mixed text already in it,
/// come back unchanged. Kyrgyz and Tajik Latin come back unchanged (see [`to_cyrillic`]).
pub fn convert(language: Language, text: &str, to: Script) -> String {
    let from = to.other();
    let is_word_char =
        |c: char| c.is_alphabetic() || cyrillic::is_apostrophe(c) || ('\u{300}'..='\u{36F}').contains(&c);
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        if !word.is_empty() {
            if detect_script(word) == Some(from) {
                out.push_str(&match to {
                    Script::Latin => to_latin(language, word),
                    Script::Cyrillic => to_cyrillic(language, word),
                });
            } else {
                out.push_str(word);
            }
        }
        let gap_end = after.find(is_word_char).unwrap_or(after.len());
        out.push_str(&after[..gap_end]);
        rest = &after[gap_end..];
    }
    out
}

/// The search skeleton of a word or text: lowercase Latin without diacritics or apostrophes, with the
/// digraphs of each alphabet unified, so that the Cyrillic and Latin spellings of a word (and the
/// different Latin alphabets' letters for one sound) meet. Lossy on purpose; never shown to people.
pub fn fold(language: Language, text: &str) -> String {
    let latin = to_latin(language, &text.to_lowercase());
    let mut out = String::with_capacity(latin.len());
    for c in latin.chars() {
        match c {
            // The apostrophe marks, and the dot above that lowercasing leaves after Kazakh İ (i̇).
            '‘' | '’' | 'ʻ' | 'ʼ' | '\'' | '`' | '´' | '\u{307}' => {}
            'ş' | 'š' => out.push_str("sh"),
            'ç' | 'č' => out.push_str("ch"),
            'ž' => out.push('j'),
            'ä' | 'á' | 'à' => out.push('a'),
            'ö' | 'ó' => out.push('o'),
            'ü' | 'ū' | 'ú' => out.push('u'),
            'ý' => out.push('y'),
            'ı' | 'í' | 'ī' => out.push('i'),
            'ğ' => out.push('g'),
            'ñ' | 'ň' => out.push_str("ng"),
            'x' if matches!(language, Language::Kazakh | Language::Turkmen | Language::Kyrgyz) => out.push('h'),
            // Turkmen writes в as w; it meets the v of the other alphabets (and of queries typed with it).
            'w' if language == Language::Turkmen => out.push('v'),
            other => out.push(other),
        }
    }
    // The same sound written "ng" and "ñ"/"ň" meets as "ng"; Uzbek's "x" stays apart from "h".
    out
}

/// A light stemmer for the Turkic member languages: strips at most one case suffix and then one
/// plural suffix from a folded word, keeping a stem of at least four letters. No stemmer for these
/// languages exists in the crates ecosystem; this one covers the commonest inflections.
pub fn strip_suffixes(language: Language, folded: &str) -> &str {
    const CASES_UZ: &[&str] = &["ning", "dagi", "dan", "ga", "ka", "qa", "da", "ni", "ta"];
    const CASES_KK_KY: &[&str] = &[
        "nyng", "ning", "dyng", "ding", "tyng", "ting", "dan", "den", "tan", "ten", "ga", "ge", "ka", "ke", "qa", "na",
        "ne", "da", "de", "ta", "te", "dy", "di", "ty", "ti", "ny", "ni",
    ];
    // Suffixes that only follow a possessive ending (-nda, -nan) are left alone: stripping them would
    // cut into stems that end in n (Qazaqstan-da).
    const CASES_TK: &[&str] = &["nyng", "ning", "dan", "den", "da", "de", "ny", "ni", "a", "e"];
    const PLURALS: &[&str] = &["lar", "ler", "dar", "der", "tar", "ter"];
    let cases = match language {
        Language::Uzbek => CASES_UZ,
        Language::Kazakh | Language::Kyrgyz => CASES_KK_KY,
        Language::Turkmen => CASES_TK,
        // Tajik is Persian: the plural -ho / -hо and the object marker -ro.
        Language::Tajik => &["ro"][..],
    };
    let plurals: &[&str] = if language == Language::Tajik { &["ho", "on"] } else { PLURALS };
    // Strip to a fixed point, so that a word and its inflected forms meet whatever they started as
    // (a few rounds at most: a case ending, then a plural).
    let mut stem = folded;
    for _ in 0..3 {
        let before = stem;
        stem = strip_one(stem, cases);
        stem = strip_one(stem, plurals);
        if stem == before {
            break;
        }
    }
    stem
}

fn strip_one<'a>(word: &'a str, suffixes: &[&str]) -> &'a str {
    for suffix in suffixes {
        if let Some(rest) = word.strip_suffix(suffix)
            && rest.chars().count() >= 4
            // Place names in -stan (Qazaqstan, Tojikiston) are not ablatives in -tan.
            && !(matches!(*suffix, "tan" | "ten") && rest.ends_with('s'))
        {
            return rest;
        }
    }
    word
}

#[cfg(test)]
mod tests;
