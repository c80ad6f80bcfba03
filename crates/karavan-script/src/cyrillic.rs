//! Latin → Cyrillic: the inverse of the tables in `latin`, choosing for each Latin spelling the
//! Cyrillic one that the forward tables turn back into it, so that `to_latin(to_cyrillic(w)) == w`
//! for the words of each alphabet.

use crate::Language::{self, *};
use crate::latin::{is_cyrillic_sign, is_cyrillic_vowel};

/// The marks that Uzbek writes for the o‘ and g‘ hook and for the tutuq belgisi, in all the forms found
/// in text: U+2018, U+02BB, U+2019, U+02BC, the ASCII apostrophe and the backtick.
pub(crate) fn is_apostrophe(c: char) -> bool {
    matches!(c, '‘' | 'ʻ' | '’' | 'ʼ' | '\'' | '`')
}

/// The forms of the mark that are never a closing quotation mark.
fn is_letter_apostrophe(c: char) -> bool {
    matches!(c, '‘' | 'ʻ' | 'ʼ')
}

/// The lowercase of a Latin letter in `language`: Kazakh pairs I with dotless ı and İ with dotted i.
fn latin_lower(language: Language, c: char) -> char {
    match c {
        'I' if language == Kazakh => 'ı',
        'İ' => 'i',
        _ => c.to_lowercase().next().unwrap_or(c),
    }
}

fn is_letter(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphabetic() && !is_apostrophe(c))
}

/// What one step of a table read from the lowercase text: how many characters it took and the
/// Cyrillic, lowercase, that they spell.
type Step = Option<(usize, &'static str)>;

/// One Uzbek letter at `s[i]`. `previous` is the last Cyrillic letter written in this word.
fn uzbek(s: &[char], i: usize, previous: Option<char>) -> Step {
    let at = |k: usize| s.get(k).copied();
    // The hook of o‘ / g‘: a letter form of the mark, or any form with a letter after it (so that a
    // closing quotation mark after a word in o or g stays one).
    let hook = |k: usize| at(k).is_some_and(|m| is_letter_apostrophe(m) || (is_apostrophe(m) && is_letter(at(k + 1))));
    let syllable_start = previous.is_none_or(|p| is_cyrillic_vowel(p) || is_cyrillic_sign(p));
    let one = |cyrillic| Some((1, cyrillic));
    match s[i] {
        'o' if hook(i + 1) => Some((2, "ў")),
        'g' if hook(i + 1) => Some((2, "ғ")),
        's' if at(i + 1) == Some('h') => Some((2, "ш")),
        's' if at(i + 1).is_some_and(is_apostrophe) && at(i + 2) == Some('h') => Some((3, "сҳ")),
        'c' if at(i + 1) == Some('h') => Some((2, "ч")),
        'y' => match at(i + 1) {
            Some('o') if hook(i + 2) => one("й"),
            Some('o') => Some((2, "ё")),
            Some('u') => Some((2, "ю")),
            Some('a') => Some((2, "я")),
            // е is "ye" where a syllable starts; after a consonant "ye" is a loanword's ъе (obyekt).
            Some('e') if syllable_start => Some((2, "е")),
            Some('e') => Some((2, "ъе")),
            _ => one("й"),
        },
        // е after a consonant, э where a syllable starts (е would be "ye" there).
        'e' if syllable_start => one("э"),
        'e' => one("е"),
        // The tutuq belgisi between letters; a mark elsewhere is punctuation.
        m if is_apostrophe(m) && previous.is_some() && is_letter(at(i + 1)) => one("ъ"),
        'a' => one("а"),
        'b' => one("б"),
        'd' => one("д"),
        'f' => one("ф"),
        'g' => one("г"),
        'h' => one("ҳ"),
        'i' => one("и"),
        'j' => one("ж"),
        'k' => one("к"),
        'l' => one("л"),
        'm' => one("м"),
        'n' => one("н"),
        'o' => one("о"),
        'p' => one("п"),
        'q' => one("қ"),
        'r' => one("р"),
        's' => one("с"),
        't' => one("т"),
        'u' => one("у"),
        'v' => one("в"),
        'x' => one("х"),
        'z' => one("з"),
        _ => None,
    }
}

/// One Kazakh letter at `s[i]` (2021 alphabet).
fn kazakh(s: &[char], i: usize, previous: Option<char>) -> Step {
    let at = |k: usize| s.get(k).copied();
    let after_vowel = previous.is_some_and(is_cyrillic_vowel);
    let one = |cyrillic| Some((1, cyrillic));
    match s[i] {
        'c' if at(i + 1) == Some('h') => Some((2, "ч")),
        'ç' => one("ч"),
        // i + a/u/o is я/ю/ё where a syllable starts (аяқ ← aiaq, Мария ← Mariia); after a consonant
        // it is и and a vowel (радио).
        'i' => match at(i + 1) {
            Some('a') if previous.is_none() || after_vowel => Some((2, "я")),
            Some('u') if previous.is_none() || after_vowel => Some((2, "ю")),
            Some('o') if previous.is_none() || after_vowel => Some((2, "ё")),
            // After a vowel i is й (Қайрат ← Qairat, үй ← üi), elsewhere и.
            _ if after_vowel => one("й"),
            _ => one("и"),
        },
        'a' => one("а"),
        'ä' => one("ә"),
        'b' => one("б"),
        'd' => one("д"),
        'e' => one("е"),
        'f' => one("ф"),
        'g' => one("г"),
        'ğ' => one("ғ"),
        'h' => one("х"),
        'ı' => one("і"),
        'j' => one("ж"),
        'k' => one("к"),
        'l' => one("л"),
        'm' => one("м"),
        'n' => one("н"),
        'ñ' => one("ң"),
        'o' => one("о"),
        'ö' => one("ө"),
        'p' => one("п"),
        'q' => one("қ"),
        'r' => one("р"),
        's' => one("с"),
        'ş' => one("ш"),
        't' => one("т"),
        'u' => one("у"),
        'ū' => one("ұ"),
        'ü' => one("ү"),
        'v' => one("в"),
        'y' => one("ы"),
        'z' => one("з"),
        _ => None,
    }
}

/// One Turkmen letter at `s[i]` (1993 alphabet).
fn turkmen(s: &[char], i: usize, previous: Option<char>) -> Step {
    let at = |k: usize| s.get(k).copied();
    let syllable_start = previous.is_none_or(|p| is_cyrillic_vowel(p) || is_cyrillic_sign(p));
    let one = |cyrillic| Some((1, cyrillic));
    match s[i] {
        'ý' => match at(i + 1) {
            Some('a') => Some((2, "я")),
            Some('o') => Some((2, "ё")),
            Some('u') => Some((2, "ю")),
            Some('e') if syllable_start => Some((2, "е")),
            _ => one("й"),
        },
        'e' if syllable_start => one("э"),
        'e' => one("е"),
        'a' => one("а"),
        'ä' => one("ә"),
        'b' => one("б"),
        'ç' => one("ч"),
        'd' => one("д"),
        'f' => one("ф"),
        'g' => one("г"),
        'h' => one("х"),
        'i' => one("и"),
        'j' => one("җ"),
        'ž' => one("ж"),
        'k' => one("к"),
        'l' => one("л"),
        'm' => one("м"),
        'n' => one("н"),
        'ň' => one("ң"),
        'o' => one("о"),
        'ö' => one("ө"),
        'p' => one("п"),
        'r' => one("р"),
        's' => one("с"),
        'ş' => one("ш"),
        't' => one("т"),
        'u' => one("у"),
        'ü' => one("ү"),
        'w' | 'v' => one("в"),
        'y' => one("ы"),
        'z' => one("з"),
        _ => None,
    }
}

/// Converts Latin text in `language` to Cyrillic; other characters (digits, punctuation, Cyrillic and
/// other scripts, and Latin letters outside the language's alphabet) pass through. Capitals stay
/// capitals, in title-case and in all-capitals words.
///
/// Uzbek reads the 1995 alphabet, with any form of the apostrophe (‘ ʻ ’ ʼ ' `) as the o‘/g‘ hook and
/// as the tutuq belgisi (ъ); Kazakh the 2021 alphabet (I ı = і, İ i = и or й); Turkmen the 1993
/// alphabet. Kyrgyz and Tajik come back unchanged: their romanisation is lossy (Kyrgyz writes ы and й
/// both as y; Tajik и and ӣ as i, у and ӯ as u), so no Cyrillic spelling can be recovered from it.
///
/// The Latin alphabets lose a few distinctions of the Cyrillic ones; the spelling chosen is the one the
/// forward table turns back into the same Latin word, so that `to_latin(to_cyrillic(w)) == w`:
/// Uzbek ts is тс (ц is written s or ts), ь is lost, e is э where a syllable starts and е elsewhere,
/// ye after a consonant is ъе; Kazakh h is х (not һ), ş is ш (not щ), e is е (not э); Turkmen ts is тс.
pub fn to_cyrillic(language: Language, text: &str) -> String {
    let step: fn(&[char], usize, Option<char>) -> Step = match language {
        Uzbek => uzbek,
        Kazakh => kazakh,
        Turkmen => turkmen,
        Kyrgyz | Tajik => return text.to_string(),
    };
    // The combining dot above that a non-Turkic lowercasing leaves after i (İ → i̇) belongs to the i.
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{307}' && matches!(chars.last(), Some('i' | 'I')) {
            continue;
        }
        chars.push(c);
    }
    let lower: Vec<char> = chars.iter().map(|&c| latin_lower(language, c)).collect();
    let mut out = String::with_capacity(text.len());
    // The last Cyrillic letter written in the current word (None at the start of a word).
    let mut previous: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        match step(&lower, i, previous) {
            Some((taken, cyrillic)) => {
                push_cased(&mut out, cyrillic, &chars, i, taken);
                previous = cyrillic.chars().last();
                i += taken;
            }
            None => {
                let c = chars[i];
                out.push(c);
                previous = if c.is_alphabetic() && !is_apostrophe(c) { Some(lower[i]) } else { None };
                i += 1;
            }
        }
    }
    out
}

/// Writes `cyrillic` (lowercase) for the Latin `chars[i..i + taken]` in their case: lowercase, title
/// case (the first letter a capital), or all capitals where the letters around are capitals too. A
/// tutuq belgisi (a mark, without case) is a capital Ъ between capitals.
fn push_cased(out: &mut String, cyrillic: &str, chars: &[char], i: usize, taken: usize) {
    let cased = |c: &char| c.is_uppercase() || c.is_lowercase();
    let previous = chars[..i].iter().rev().find(|c| !is_apostrophe(**c)).copied().filter(cased);
    let next = chars[i + taken..].iter().find(|c| !is_apostrophe(**c)).copied().filter(cased);
    let first = chars[i];
    let all_caps = if first.is_lowercase() {
        false
    } else if !first.is_uppercase() {
        previous.is_some_and(char::is_uppercase) && next.is_some_and(char::is_uppercase)
    } else {
        let mut inner = chars[i + 1..i + taken].iter().filter(|c| cased(c)).peekable();
        if inner.peek().is_some() {
            inner.all(|c| c.is_uppercase())
        } else {
            next.is_some_and(char::is_uppercase)
                || (next.is_none_or(|n| !n.is_lowercase()) && previous.is_some_and(char::is_uppercase))
        }
    };
    let mut letters = cyrillic.chars();
    if let Some(letter) = letters.next() {
        if first.is_uppercase() || all_caps {
            out.extend(letter.to_uppercase());
        } else {
            out.push(letter);
        }
    }
    for letter in letters {
        if all_caps {
            out.extend(letter.to_uppercase());
        } else {
            out.push(letter);
        }
    }
}
