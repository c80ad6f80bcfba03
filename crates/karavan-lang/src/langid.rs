//! Language identification: fastText's lid.176 and, over it, rules for what lid.176 gets wrong in
//! the member languages. lid.176 reads Cyrillic Uzbek as Russian, Latin Uzbek as English and Latin
//! Turkmen as Turkish or Estonian, and knows no script. Each member language has letters the others
//! lack (Uzbek ў, Tajik ҷ ӣ ӯ, Kazakh ә ұ і һ, Kyrgyz ң ө ү without the Kazakh ones, Turkmen ý ň,
//! Uzbek Latin's o‘ and g‘), so where those letters are present they decide; elsewhere fastText
//! does. Results are BCP 47 tags, with the script where the language is written in two:
//! `uz-Latn` / `uz-Cyrl` always, `kk-Latn` and `tk-Cyrl` where the text is in the less usual one.

use std::path::Path;

use karavan_script::Script;

use crate::models::ModelError;

/// What a text is written in, by identification.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// A BCP 47 tag (`kk`, `uz-Cyrl`, `zh`, …).
    pub language: String,
    /// `Latn` or `Cyrl` where the text is mostly in one of them.
    pub script: Option<&'static str>,
    /// In [0, 1]: fastText's probability, or, where a rule decided, one that grows with the number of
    /// distinctive letters seen.
    pub confidence: f32,
    /// `fasttext` or `rules`.
    pub method: &'static str,
}

/// The fewest letters a text needs for a guess.
const MIN_LETTERS: usize = 3;
/// The most characters looked at: beyond it a text's language does not change.
const MAX_CHARS: usize = 4000;

pub struct LanguageIdentifier {
    model: fasttext::FastText,
}

impl std::fmt::Debug for LanguageIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LanguageIdentifier")
    }
}

/// Letter counts of a text by script and by distinctive letters.
#[derive(Debug, Default)]
struct Letters {
    cyrillic: usize,
    latin: usize,
    han: usize,
    total: usize,
    uzbek_cyrillic: usize,   // ў
    tajik: usize,            // ҷ ӣ ӯ
    kazakh: usize,           // ә ұ і һ
    turkic_cyrillic: usize,  // қ ғ ң ө ү ҳ
    kyrgyz_like: usize,      // ң ө ү
    uz_tg_shared: usize,     // қ ғ ҳ
    turkmen_cyrillic: usize, // җ
    ng: usize,               // ң
    uzbek_latin: usize,      // o‘ g‘
    turkmen_latin: usize,    // ý ň
    turkic_latin: usize,     // ä ş ç ü ö ž ğ ı
    czech_slovak: usize,     // č š ř ě ů ť ď
    kazakh_latin: usize,     // ū, and ñ beside ä / ğ / ı
    enye: usize,             // ñ
    kana: usize,             // Japanese hiragana and katakana
    hangul: usize,           // Korean
}

fn count_letters(text: &str) -> Letters {
    let mut l = Letters::default();
    let mut previous = ' ';
    for c in text.chars().take(MAX_CHARS) {
        let lower = c.to_lowercase().next().unwrap_or(c);
        if c.is_alphabetic() {
            l.total += 1;
            match c as u32 {
                0x0400..=0x052F => l.cyrillic += 1,
                0x0041..=0x024F | 0x1E00..=0x1EFF => l.latin += 1,
                0x3400..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F => l.han += 1,
                0x3040..=0x30FF => l.kana += 1,
                0xAC00..=0xD7AF | 0x1100..=0x11FF => l.hangul += 1,
                _ => {}
            }
        }
        match lower {
            'ў' => l.uzbek_cyrillic += 1,
            'ҷ' | 'ӣ' | 'ӯ' => l.tajik += 1,
            'ә' | 'ұ' | 'і' | 'һ' => l.kazakh += 1,
            'җ' => l.turkmen_cyrillic += 1,
            _ => {}
        }
        if matches!(lower, 'қ' | 'ғ' | 'ң' | 'ө' | 'ү' | 'ҳ') {
            l.turkic_cyrillic += 1;
        }
        if matches!(lower, 'ң' | 'ө' | 'ү') {
            l.kyrgyz_like += 1;
        }
        if lower == 'ң' {
            l.ng += 1;
        }
        if matches!(lower, 'қ' | 'ғ' | 'ҳ') {
            l.uz_tg_shared += 1;
        }
        if matches!(c, '‘' | 'ʻ' | '\'' | '’' | '`' | 'ʼ') && matches!(previous, 'o' | 'g' | 'O' | 'G') {
            l.uzbek_latin += 1;
        }
        match lower {
            'ý' | 'ň' => l.turkmen_latin += 1,
            'ä' | 'ş' | 'ç' | 'ü' | 'ö' | 'ž' | 'ğ' | 'ı' => l.turkic_latin += 1,
            'č' | 'š' | 'ř' | 'ě' | 'ů' | 'ť' | 'ď' => l.czech_slovak += 1,
            'ū' => l.kazakh_latin += 1,
            'ñ' => l.enye += 1,
            _ => {}
        }
        previous = c;
    }
    l
}

/// Confidence of a rule that saw `marks` distinctive letters.
fn rule_confidence(marks: usize) -> f32 {
    (0.6 + 0.1 * marks as f32).min(0.99)
}

/// The member language the distinctive letters of a text show, with how many of them were seen.
fn by_rules(l: &Letters, fasttext_top: &str, fasttext_probability: f32) -> Option<(&'static str, usize)> {
    // Han characters without kana or hangul: Chinese (lid.176 sometimes says ja, ko or wuu for it).
    if l.han * 2 > l.total && l.kana == 0 && l.hangul == 0 {
        return Some(("zh", l.han));
    }
    if l.cyrillic > l.latin && l.cyrillic >= l.han {
        if l.tajik > 0 && l.uzbek_cyrillic == 0 {
            return Some(("tg", l.tajik));
        }
        if l.uzbek_cyrillic > 0 && (l.uz_tg_shared > 0 || fasttext_top != "be") {
            return Some(("uz-Cyrl", l.uzbek_cyrillic + l.uz_tg_shared));
        }
        if l.kazakh > 0 && l.turkic_cyrillic > 0 {
            return Some(("kk", l.kazakh + l.turkic_cyrillic));
        }
        if l.turkmen_cyrillic > 0 {
            return Some(("tk-Cyrl", l.turkmen_cyrillic + l.kyrgyz_like));
        }
        // қ ғ ҳ without ң ө ү or the Kazakh letters: Uzbek or Tajik, and Tajik without ҷ ӣ ӯ is rare.
        if l.uz_tg_shared > 0 && l.uz_tg_shared * 100 >= l.cyrillic && l.kyrgyz_like == 0 && l.kazakh == 0 {
            if fasttext_top == "tg" && fasttext_probability >= 0.8 {
                return Some(("tg", l.uz_tg_shared));
            }
            return Some(("uz-Cyrl", l.uz_tg_shared));
        }
        if l.kyrgyz_like > 0 && l.uz_tg_shared == 0 && (l.ng > 0 || fasttext_top != "mn") {
            return Some(("ky", l.kyrgyz_like));
        }
        return None;
    }
    if l.latin > l.cyrillic && l.latin >= l.han {
        if l.uzbek_latin > 0 {
            return Some(("uz-Latn", l.uzbek_latin));
        }
        if l.turkmen_latin > 0 && l.czech_slovak == 0 && l.turkic_latin > 0 {
            return Some(("tk", l.turkmen_latin + l.turkic_latin));
        }
        if l.kazakh_latin > 0 || (l.enye > 0 && l.turkic_latin > 0) {
            return Some(("kk-Latn", l.kazakh_latin + l.enye + l.turkic_latin));
        }
    }
    None
}

/// A fastText label (`__label__uz`) as a tag, with the script where the language is written in two.
fn label_tag(label: &str, script: Option<Script>) -> String {
    let code = label.strip_prefix("__label__").unwrap_or(label);
    match (code, script) {
        ("uz", Some(Script::Cyrillic)) => "uz-Cyrl".into(),
        ("uz", _) => "uz-Latn".into(),
        ("kk", Some(Script::Latin)) => "kk-Latn".into(),
        ("tk", Some(Script::Cyrillic)) => "tk-Cyrl".into(),
        _ => code.to_string(),
    }
}

impl LanguageIdentifier {
    /// Loads lid.176 (`.ftz` or `.bin`).
    pub fn load(path: &Path) -> Result<LanguageIdentifier, ModelError> {
        let mut model = fasttext::FastText::new();
        let name = path.to_str().ok_or_else(|| ModelError::Invalid(format!("{}: not UTF-8", path.display())))?;
        model.load_model(name).map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(LanguageIdentifier { model })
    }

    /// The language of `text`, or none when it has too few letters to tell.
    pub fn detect(&self, text: &str) -> Option<Detection> {
        let letters = count_letters(text);
        if letters.total < MIN_LETTERS {
            return None;
        }
        let script = if letters.cyrillic * 2 > letters.total {
            Some(Script::Cyrillic)
        } else if letters.latin * 2 > letters.total {
            Some(Script::Latin)
        } else {
            None
        };
        // fastText reads one line; NUL cannot cross into C.
        let line: String =
            text.chars().take(MAX_CHARS).map(|c| if c == '\n' || c == '\r' || c == '\0' { ' ' } else { c }).collect();
        let predictions = self.model.predict(&line, 5, 0.0).unwrap_or_default();
        let top = predictions.first().map(|p| p.label.trim_start_matches("__label__")).unwrap_or("");
        let top_probability = predictions.first().map(|p| p.prob).unwrap_or(0.0);
        if let Some((language, marks)) = by_rules(&letters, top, top_probability) {
            let primary = language.split('-').next().unwrap_or(language);
            let fasttext = predictions
                .iter()
                .find(|p| p.label.trim_start_matches("__label__") == primary)
                .map(|p| p.prob)
                .unwrap_or(0.0);
            return Some(Detection {
                language: language.to_string(),
                script: script.map(|s| s.subtag()),
                confidence: fasttext.max(rule_confidence(marks)),
                method: "rules",
            });
        }
        let best = predictions.first()?;
        Some(Detection {
            language: label_tag(&best.label, script),
            script: script.map(|s| s.subtag()),
            confidence: best.prob.clamp(0.0, 1.0),
            method: "fasttext",
        })
    }
}

/// The least confidence, and the fewest letters, at which a detection may contradict a declaration.
const CONTRADICTION_CONFIDENCE: f32 = 0.6;
const CONTRADICTION_LETTERS: usize = 20;

/// Whether a declared language is contradicted by the detection of the text: another language, or
/// the declared script (`uz-Latn`) when the text is in the other. Short texts and unsure guesses
/// never contradict.
pub fn contradicts(declared: &str, detected: &Detection, text: &str) -> bool {
    if detected.confidence < CONTRADICTION_CONFIDENCE || count_letters(text).total < CONTRADICTION_LETTERS {
        return false;
    }
    let mut declared_parts = declared.split(['-', '_']);
    let declared_primary = declared_parts.next().unwrap_or_default().to_ascii_lowercase();
    let declared_script = declared_parts.find(|p| p.len() == 4).map(str::to_ascii_lowercase);
    let detected_primary = detected.language.split('-').next().unwrap_or_default();
    let same_language = declared_primary == detected_primary
        || (declared_primary == "zh" && matches!(detected_primary, "wuu" | "yue"))
        || (declared_primary == "fa" && detected_primary == "tg" && detected.script.is_none());
    if !same_language {
        return true;
    }
    match (declared_script, detected.script) {
        (Some(declared), Some(detected)) => declared != detected.to_ascii_lowercase(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<&'static str> {
        by_rules(&count_letters(text), "ru", 0.5).map(|(l, _)| l)
    }

    #[test]
    fn distinctive_letters_decide_the_member_language() {
        assert_eq!(rule("Тошкентда янги метро бекати очилди, дея хабар берди ўзбек матбуоти"), Some("uz-Cyrl"));
        assert_eq!(rule("Ҳукумати Тоҷикистон сохтмони роҳи навро оғоз кард"), Some("tg"));
        assert_eq!(rule("Қазақстан үкіметі теміржол құрылысын бастады"), Some("kk"));
        assert_eq!(rule("Кыргызстандын өкмөтү жаңы жол курууну баштады"), Some("ky"));
        assert_eq!(rule("Правительство России объявило о новых мерах"), None);
        assert_eq!(rule("上海合作组织成员国元首理事会会议在阿斯塔纳举行"), Some("zh"));
        assert_eq!(rule("東京で新しい鉄道が開通しました"), None);
        // No ў, but қ ғ ҳ without the Kazakh and Kyrgyz letters: Uzbek.
        assert_eq!(
            rule("Тожикистон Энергетика вазирлиги маълум қилишича, Роғун ГЭСи ишга туширилади"),
            Some("uz-Cyrl")
        );
        assert_eq!(
            by_rules(&count_letters("Вазорати энергетика хабар дод, ки Роғун ба кор медарояд"), "tg", 0.9).map(|r| r.0),
            Some("tg")
        );
        assert_eq!(rule("Toshkentda yangi metro bekati ochildi, deb xabar berdi o‘zbek matbuoti"), Some("uz-Latn"));
        assert_eq!(rule("Türkmenistanyň hökümeti täze demir ýoluny açdy"), Some("tk"));
        assert_eq!(rule("Qazaqstan ükımetı temırjol qūrylysyn bastady"), Some("kk-Latn"));
        assert_eq!(rule("Vláda České republiky schválila nový zákon o dýchání"), None);
        assert_eq!(rule("Türkiye hükümeti yeni bir karar aldı"), None);
    }

    #[test]
    fn a_contradiction_needs_a_sure_guess_on_enough_text() {
        let detection = |language: &str, script| Detection {
            language: language.into(),
            script,
            confidence: 0.9,
            method: "fasttext",
        };
        let long = "Правительство России объявило о новых мерах поддержки экспортёров";
        assert!(contradicts("kk", &detection("ru", Some("Cyrl")), long));
        assert!(!contradicts("ru", &detection("ru", Some("Cyrl")), long));
        assert!(!contradicts("kk", &detection("ru", Some("Cyrl")), "Привет"));
        assert!(contradicts("uz-Latn", &detection("uz-Cyrl", Some("Cyrl")), long));
        assert!(!contradicts("uz", &detection("uz-Cyrl", Some("Cyrl")), long));
        let unsure = Detection { confidence: 0.3, ..detection("ru", Some("Cyrl")) };
        assert!(!contradicts("kk", &unsure, long));
    }
}
