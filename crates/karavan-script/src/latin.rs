//! Cyrillic → Latin: the letter tables of each language and the case of the result.

use crate::Language::{self, *};

/// Whether `c` is a Cyrillic vowel letter of any member language (either case).
pub(crate) fn is_cyrillic_vowel(c: char) -> bool {
    "аеёиоуыэюяәөүұіӯӣўАЕЁИОУЫЭЮЯӘӨҮҰІӮӢЎ".contains(c)
}

/// Whether `c` is the hard or the soft sign (either case).
pub(crate) fn is_cyrillic_sign(c: char) -> bool {
    matches!(c, 'ь' | 'ъ' | 'Ь' | 'Ъ')
}

/// The uppercase of a Latin letter in `language`: Kazakh pairs dotted i with İ (its dotless ı pairs
/// with I); the other alphabets pair i with I.
pub(crate) fn latin_upper(language: Language, c: char, out: &mut String) {
    match c {
        'i' if language == Kazakh => out.push('İ'),
        _ => out.extend(c.to_uppercase()),
    }
}

/// The Latin spelling of one lowercase Cyrillic letter in `language`, or `None` for a character that is
/// not a Cyrillic letter of the table (it passes through). `previous` and `next` are the neighbouring
/// characters, lowercase, where they are letters (`None` at the edges of a word).
fn latin_letter(language: Language, c: char, previous: Option<char>, next: Option<char>) -> Option<&'static str> {
    // Where Uzbek and Turkmen write Cyrillic е as "ye" / "ýe": at the start of a word, after a vowel
    // and after a sign (the start of a syllable).
    let syllable_start = previous.is_none_or(|p| is_cyrillic_vowel(p) || is_cyrillic_sign(p));
    let specific = match (language, c) {
        (Uzbek, 'е') if syllable_start => "ye",
        (Uzbek, 'е') => "e",
        (Uzbek, 'ж') => "j",
        (Uzbek, 'и') => "i",
        (Uzbek, 'й') => "y",
        (Uzbek, 'х') => "x",
        (Uzbek, 'ҳ') => "h",
        (Uzbek, 'ч') => "ch",
        (Uzbek, 'ш' | 'щ') => "sh",
        (Uzbek, 'қ') => "q",
        (Uzbek, 'ғ') => "g‘",
        (Uzbek, 'ў') => "o‘",
        // The 1995 rules: ц is "ts" after a vowel (militsiya) and "s" elsewhere (sirk, konsert).
        (Uzbek, 'ц') if previous.is_some_and(is_cyrillic_vowel) => "ts",
        (Uzbek, 'ц') => "s",
        // с and ҳ that meet are kept apart from sh with the tutuq belgisi (Исҳоқ → Is’hoq).
        (Uzbek, 'с') if next == Some('ҳ') => "s’",
        // The separating ъ of Russian loanwords before е is not written: its е is already "ye"
        // (объект → obyekt). Elsewhere ъ is the tutuq belgisi (маъно → ma’no, маъюс → ma’yus).
        (Uzbek, 'ъ') if next == Some('е') => "",
        (Uzbek, 'ъ') => "’",
        // The 2021 alphabet: і is dotless ı, и and й are dotted i, ы is y; ё ю я are i + vowel, since
        // й is i (аяқ → aiaq).
        (Kazakh, 'е' | 'э') => "e",
        (Kazakh, 'ж') => "j",
        (Kazakh, 'и' | 'й') => "i",
        (Kazakh, 'і') => "ı",
        (Kazakh, 'ы') => "y",
        (Kazakh, 'ё') => "io",
        (Kazakh, 'ю') => "iu",
        (Kazakh, 'я') => "ia",
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
        // The 1993 alphabet: в is w, й is ý, and ё ю я (and е that starts a syllable) are ý + vowel.
        (Turkmen, 'е') if syllable_start => "ýe",
        (Turkmen, 'е') => "e",
        (Turkmen, 'ё') => "ýo",
        (Turkmen, 'ю') => "ýu",
        (Turkmen, 'я') => "ýa",
        (Turkmen, 'в') => "w",
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
        (_, 'ь') => "",
        (_, c) => return common_letter(c),
    };
    Some(specific)
}

/// The letters every table spells alike.
fn common_letter(c: char) -> Option<&'static str> {
    Some(match c {
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
        _ => return None,
    })
}

fn lowercase(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Converts Cyrillic text in `language` to its Latin alphabet; other characters pass through.
/// Capitals stay capitals: a capital in a lowercase word capitalises the first letter of a digraph
/// ("Shahar"), a capital in an all-capitals word all of it ("SHAHAR").
pub fn to_latin(language: Language, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let letter_at = |i: usize| chars.get(i).copied().filter(|c| c.is_alphabetic());
    for (i, &c) in chars.iter().enumerate() {
        let lower = lowercase(c);
        let previous = i.checked_sub(1).and_then(letter_at);
        let next = letter_at(i + 1);
        match latin_letter(language, lower, previous.map(lowercase), next.map(lowercase)) {
            Some(latin) if c != lower => {
                // All capitals when the next letter is a capital too, or at the end of a word whose
                // previous letter is one.
                let all_caps = next.is_some_and(char::is_uppercase)
                    || (next.is_none_or(|n| !n.is_lowercase()) && previous.is_some_and(char::is_uppercase));
                let mut letters = latin.chars();
                if let Some(first) = letters.next() {
                    latin_upper(language, first, &mut out);
                }
                for letter in letters {
                    if all_caps {
                        latin_upper(language, letter, &mut out);
                    } else {
                        out.push(letter);
                    }
                }
            }
            Some(latin) => out.push_str(latin),
            None => out.push(c),
        }
    }
    out
}
