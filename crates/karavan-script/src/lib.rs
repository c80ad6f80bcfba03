//! Script conversion for the member languages written in Cyrillic and Latin: Uzbek (the 1995 Latin
//! alphabet), Kazakh (the 2021 Latin alphabet), Turkmen (the 1993 alphabet), and for Kyrgyz and Tajik a
//! common romanisation. Also the search fold, which maps both scripts of a word to one skeleton so that
//! a query in either script finds both.
//!
//! Pure functions, no IO.

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

fn is_cyrillic_vowel(c: char) -> bool {
    "аеёиоуыэюяәөүұіӯӣўАЕЁИОУЫЭЮЯӘӨҮҰІӮӢЎ".contains(c)
}

/// The Latin spelling of one lowercase Cyrillic letter in `language`; `at_start` says whether it
/// begins a word or follows a vowel or a sign (where Uzbek writes е as "ye").
fn latin_letter(language: Language, c: char, at_start: bool) -> Option<&'static str> {
    use Language::*;
    let common = match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'з' => "z",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'ц' => "ts",
        'э' => "e",
        'ё' => "yo",
        'ю' => "yu",
        'я' => "ya",
        'ь' => "",
        _ => "",
    };
    let specific = match (language, c) {
        (Uzbek, 'е') if at_start => "ye",
        (Uzbek, 'е') => "e",
        (Uzbek, 'ж') => "j",
        (Uzbek, 'и') => "i",
        (Uzbek, 'й') => "y",
        (Uzbek, 'х') => "x",
        (Uzbek, 'ҳ') => "h",
        (Uzbek, 'ч') => "ch",
        (Uzbek, 'ш') => "sh",
        (Uzbek, 'щ') => "sh",
        (Uzbek, 'қ') => "q",
        (Uzbek, 'ғ') => "g‘",
        (Uzbek, 'ў') => "o‘",
        (Uzbek, 'ъ') => "’",
        (Kazakh, 'е') => "e",
        (Kazakh, 'ж') => "j",
        (Kazakh, 'и' | 'й' | 'і') => "i",
        (Kazakh, 'ы') => "y",
        (Kazakh, 'х' | 'һ') => "h",
        (Kazakh, 'ч') => "ch",
        (Kazakh, 'ш' | 'щ') => "ş",
        (Kazakh, 'қ') => "q",
        (Kazakh, 'ғ') => "ğ",
        (Kazakh, 'ң') => "ñ",
        (Kazakh, 'ә') => "ä",
        (Kazakh, 'ө') => "ö",
        (Kazakh, 'ү') => "ü",
        (Kazakh, 'ұ') => "ū",
        (Kazakh, 'ъ') => "",
        (Turkmen, 'е') if at_start => "ýe",
        (Turkmen, 'е') => "e",
        (Turkmen, 'ж') => "ž",
        (Turkmen, 'и') => "i",
        (Turkmen, 'й') => "ý",
        (Turkmen, 'ы') => "y",
        (Turkmen, 'х') => "h",
        (Turkmen, 'ч') => "ç",
        (Turkmen, 'ш' | 'щ') => "ş",
        (Turkmen, 'ң') => "ň",
        (Turkmen, 'ә') => "ä",
        (Turkmen, 'ө') => "ö",
        (Turkmen, 'ү') => "ü",
        (Turkmen, 'җ') => "j",
        (Turkmen, 'ъ') => "",
        (Kyrgyz, 'е') => "e",
        (Kyrgyz, 'ж') => "j",
        (Kyrgyz, 'и') => "i",
        (Kyrgyz, 'й') => "y",
        (Kyrgyz, 'ы') => "y",
        (Kyrgyz, 'х') => "h",
        (Kyrgyz, 'ч') => "ch",
        (Kyrgyz, 'ш' | 'щ') => "sh",
        (Kyrgyz, 'ң') => "ng",
        (Kyrgyz, 'ө') => "ö",
        (Kyrgyz, 'ү') => "ü",
        (Kyrgyz, 'ъ') => "",
        (Tajik, 'е') => "e",
        (Tajik, 'ж') => "zh",
        (Tajik, 'и') => "i",
        (Tajik, 'й') => "y",
        (Tajik, 'х') => "kh",
        (Tajik, 'ҳ') => "h",
        (Tajik, 'ч') => "ch",
        (Tajik, 'ҷ') => "j",
        (Tajik, 'ш' | 'щ') => "sh",
        (Tajik, 'қ') => "q",
        (Tajik, 'ғ') => "gh",
        (Tajik, 'ӣ') => "i",
        (Tajik, 'ӯ') => "u",
        (Tajik, 'ъ') => "’",
        (_, 'ы') => "y",
        _ => "",
    };
    let text = if specific.is_empty() { common } else { specific };
    if text.is_empty() && !matches!(c, 'ь' | 'ъ') { None } else { Some(text) }
}

/// Converts Cyrillic text in `language` to its Latin alphabet; other characters pass through.
/// Capitals stay capitals (the first letter of a digraph only, as in "Shahar").
pub fn to_latin(language: Language, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    for c in text.chars() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        let at_start =
            previous.is_none_or(|p| !p.is_alphabetic() || is_cyrillic_vowel(p) || matches!(p, 'ь' | 'ъ' | 'Ь' | 'Ъ'));
        match latin_letter(language, lower, at_start) {
            Some(latin) if c != lower => {
                let mut chars = latin.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            }
            Some(latin) => out.push_str(latin),
            None => out.push(c),
        }
        previous = Some(c);
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
            '‘' | '’' | 'ʻ' | 'ʼ' | '\'' | '`' | '´' => {}
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
mod tests {
    use super::*;

    fn check_latin(language: Language, cyrillic: &str, latin: &str) {
        assert_eq!(to_latin(language, cyrillic), latin, "{cyrillic}");
        assert_eq!(fold(language, cyrillic), fold(language, latin), "{cyrillic} and {latin} fold together");
    }

    #[test]
    fn uzbek_1995_latin() {
        check_latin(Language::Uzbek, "Тошкент", "Toshkent");
        check_latin(Language::Uzbek, "Ўзбекистон", "O‘zbekiston");
        check_latin(Language::Uzbek, "ғалла", "g‘alla");
        check_latin(Language::Uzbek, "халқ", "xalq");
        check_latin(Language::Uzbek, "ер", "yer");
        check_latin(Language::Uzbek, "шаҳар", "shahar");
        check_latin(Language::Uzbek, "temir yo‘l", "temir yo‘l");
        assert_eq!(fold(Language::Uzbek, "O'zbekiston"), fold(Language::Uzbek, "Oʻzbekiston"), "apostrophe variants");
    }

    #[test]
    fn kazakh_2021_latin() {
        check_latin(Language::Kazakh, "Қазақстан", "Qazaqstan");
        check_latin(Language::Kazakh, "Шымкент", "Şymkent");
        check_latin(Language::Kazakh, "теміржол", "temirjol");
        check_latin(Language::Kazakh, "Өскемен", "Öskemen");
        check_latin(Language::Kazakh, "ғылым", "ğylym");
        check_latin(Language::Kazakh, "жаңа", "jaña");
    }

    #[test]
    fn turkmen_1993_latin() {
        check_latin(Language::Turkmen, "Ашгабат", "Aşgabat");
        check_latin(Language::Turkmen, "Түркменистан", "Türkmenistan");
        check_latin(Language::Turkmen, "ýol", "ýol");
        assert_eq!(fold(Language::Turkmen, "Türkmenbaşy"), "turkmenbashy");
    }

    #[test]
    fn suffixes_are_stripped_to_a_shared_stem() {
        let stem = |language, word: &str| strip_suffixes(language, &fold(language, word)).to_string();
        assert_eq!(stem(Language::Kazakh, "Қазақстанда"), "qazaqstan");
        assert_eq!(stem(Language::Kazakh, "Qazaqstannyñ"), "qazaqstan");
        assert_eq!(stem(Language::Uzbek, "Toshkentga"), "toshkent");
        assert_eq!(stem(Language::Uzbek, "shaharlarda"), "shahar");
        assert_eq!(stem(Language::Uzbek, "шаҳарлар"), "shahar");
        assert_eq!(stem(Language::Turkmen, "Aşgabatda"), "ashgabat");
        assert_eq!(stem(Language::Kyrgyz, "Бишкекте"), "bishkek");
        assert_eq!(stem(Language::Kazakh, "ata"), "ata", "short words keep their ending");
        assert_eq!(stem(Language::Kazakh, "Qazaqstan"), "qazaqstan", "-stan is not an ablative");
        assert_eq!(stem(Language::Uzbek, "shaharlardan"), "shahar");
    }
}
