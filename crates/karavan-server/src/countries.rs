//! Country names in the member languages, to tell which countries an item is about (coverage
//! analytics by country). The names come from Debian's `iso-codes` (ISO 3166-1: the English names in
//! its JSON file, their translations in its gettext catalogues for ru, kk, ky, tg, tk, uz and zh),
//! read at run time from `/usr/share` (or `KARAVAN_ISO_CODES_DIR`), never copied into Karavan. A few
//! everyday names the catalogues lack (Кыргызстан beside Киргизия, Россия) are added here.
//!
//! A name is found in a text by the words the keyword index makes of both, so that inflected forms
//! meet (Казахстане, Қазақстанға, Qozogʻistonda) and, in the Turkic languages, both scripts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The catalogues read: (the locale directory, the language its names are analysed as).
const CATALOGUES: [(&str, &str); 7] =
    [("ru", "ru"), ("kk", "kk"), ("ky", "ky"), ("tg", "tg"), ("tk", "tk"), ("uz", "uz"), ("zh_CN", "zh")];

/// Everyday names the catalogues lack: (language, name, ISO 3166-1 alpha-2).
const EXTRA: [(&str, &str, &str); 12] = [
    ("ru", "Кыргызстан", "KG"),
    ("ru", "Россия", "RU"),
    ("ru", "Туркмения", "TM"),
    ("ru", "КНР", "CN"),
    ("ru", "США", "US"),
    ("en", "Russia", "RU"),
    ("en", "China", "CN"),
    ("en", "Kyrgyzstan", "KG"),
    ("zh", "中华人民共和国", "CN"),
    ("uz", "Xitoy", "CN"),
    ("tk", "Hytaý", "CN"),
    ("uz", "Rossiya", "RU"),
];

/// The most bytes of a catalogue read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The key a word is looked up by: its first five characters (stemmers do not always cut a name and
/// its inflected forms alike: Snowball makes Казахстан "казахста" but Казахстане "казахстан").
fn key(word: &str) -> String {
    word.chars().take(5).collect()
}

/// Whether a word of a text is a word of a name: the same, or, for words of five characters or
/// more, one a prefix of the other by one character (not Австрия in Австралия).
fn same_word(name: &str, text: &str) -> bool {
    if name == text {
        return true;
    }
    let (n, t) = (name.chars().count(), text.chars().count());
    n.min(t) >= 5 && n.abs_diff(t) <= 1 && (text.starts_with(name) || name.starts_with(text))
}

/// Country names by the key of the first word they are analysed into: (their words, alpha-2).
#[derive(Debug, Default)]
pub struct Countries {
    names: HashMap<String, Vec<(Vec<String>, String)>>,
    /// How many names were loaded.
    pub loaded: usize,
}

/// The entries of a gettext `.mo` catalogue: (original, translation). Every offset and length is
/// checked against the file before it is read.
pub fn read_mo(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let word = |at: usize, little: bool| -> Result<u32, String> {
        let slice: [u8; 4] =
            bytes.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or("the catalogue is cut short")?;
        Ok(if little { u32::from_le_bytes(slice) } else { u32::from_be_bytes(slice) })
    };
    let little = match bytes.get(0..4) {
        Some([0xde, 0x12, 0x04, 0x95]) => true,
        Some([0x95, 0x04, 0x12, 0xde]) => false,
        _ => return Err("not a gettext catalogue".to_string()),
    };
    let count = word(8, little)? as usize;
    let (originals, translations) = (word(12, little)? as usize, word(16, little)? as usize);
    if count > bytes.len() / 8 {
        return Err("the catalogue claims more entries than it can hold".to_string());
    }
    let text = |table: usize, index: usize| -> Result<String, String> {
        let length = word(table + index * 8, little)? as usize;
        let offset = word(table + index * 8 + 4, little)? as usize;
        let slice = bytes
            .get(offset..offset.checked_add(length).ok_or("an entry overflows")?)
            .ok_or("an entry lies outside the catalogue")?;
        Ok(String::from_utf8_lossy(slice).into_owned())
    };
    (0..count).map(|index| Ok((text(originals, index)?, text(translations, index)?))).collect()
}

impl Countries {
    fn add(&mut self, language: &str, name: &str, code: &str) {
        let words = karavan_search::analysis::terms(Some(language), name);
        let Some(first) = words.first() else { return };
        let entries = self.names.entry(key(first)).or_default();
        if !entries.iter().any(|(w, c)| *w == words && c == code) {
            entries.push((words, code.to_string()));
            self.loaded += 1;
        }
    }

    /// Loads the names from an `iso-codes` installation under `root` (`/usr/share`).
    pub fn load(root: &Path) -> Result<Countries, String> {
        let json_path = root.join("iso-codes/json/iso_3166-1.json");
        let read = |path: &Path| -> Result<Vec<u8>, String> {
            let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if size > MAX_FILE {
                return Err(format!("{}: larger than {MAX_FILE} bytes", path.display()));
            }
            std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let json: serde_json::Value =
            serde_json::from_slice(&read(&json_path)?).map_err(|e| format!("{}: {e}", json_path.display()))?;
        let entries =
            json.get("3166-1").and_then(serde_json::Value::as_array).ok_or("iso_3166-1.json has no 3166-1 list")?;
        let mut countries = Countries::default();
        // English name → alpha-2, for the catalogues (keyed by the English name).
        let mut english: HashMap<String, String> = HashMap::new();
        for entry in entries {
            let Some(code) = entry.get("alpha_2").and_then(serde_json::Value::as_str) else { continue };
            for key in ["name", "common_name"] {
                if let Some(name) = entry.get(key).and_then(serde_json::Value::as_str) {
                    english.insert(name.to_string(), code.to_string());
                    countries.add("en", name, code);
                }
            }
        }
        for (locale, language) in CATALOGUES {
            let path = root.join(format!("locale/{locale}/LC_MESSAGES/iso_3166-1.mo"));
            let Ok(bytes) = read(&path) else { continue };
            for (original, translated) in read_mo(&bytes)? {
                if let Some(code) = english.get(&original)
                    && !translated.is_empty()
                    && translated != original
                {
                    countries.add(language, &translated, code);
                }
            }
        }
        for (language, name, code) in EXTRA {
            countries.add(language, name, code);
        }
        Ok(countries)
    }

    /// The countries (alpha-2, sorted, once each) whose names occur in a text in `language`. In an
    /// alphabet with capitals only capitalised words are read: stemmed, a name can meet a common word
    /// (Того, Мали, Дания and "данным").
    pub fn found(&self, language: Option<&str>, text: &str) -> Vec<String> {
        let chinese = language.is_some_and(|l| l.to_ascii_lowercase().starts_with("zh"));
        let capitalised: String = if !chinese && text.chars().any(char::is_uppercase) {
            text.split(|c: char| !(c.is_alphanumeric() || matches!(c, 'ʻ' | 'ʼ' | '‘' | '’' | '\'' | '-')))
                .filter(|word| word.chars().next().is_some_and(char::is_uppercase))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            text.to_string()
        };
        let words = karavan_search::analysis::terms(language, &capitalised);
        let mut found: Vec<String> = Vec::new();
        for (index, word) in words.iter().enumerate() {
            for (name, code) in self.names.get(&key(word)).into_iter().flatten() {
                let matches =
                    words.len() - index >= name.len() && name.iter().zip(&words[index..]).all(|(n, t)| same_word(n, t));
                if matches && !found.contains(code) {
                    found.push(code.clone());
                }
            }
        }
        found.sort();
        found
    }
}

/// Where `iso-codes` is: `KARAVAN_ISO_CODES_DIR`, else `/usr/share`.
fn root() -> PathBuf {
    std::env::var_os("KARAVAN_ISO_CODES_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/share"))
}

/// The names, loaded once; an error says what is missing.
pub fn countries() -> Result<&'static Countries, String> {
    static LOADED: OnceLock<Result<Countries, String>> = OnceLock::new();
    LOADED.get_or_init(|| Countries::load(&root())).as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_are_read_with_every_offset_checked() {
        // A catalogue with one entry, "a" → "b", little-endian.
        let mut mo = vec![0xde, 0x12, 0x04, 0x95];
        for value in [0u32, 1, 28, 36, 0, 0, 0] {
            mo.extend(value.to_le_bytes());
        }
        // Originals table at 28, translations at 36.
        mo.truncate(28);
        mo.extend(1u32.to_le_bytes());
        mo.extend(44u32.to_le_bytes());
        mo.extend(1u32.to_le_bytes());
        mo.extend(46u32.to_le_bytes());
        mo.extend(b"a\0b\0");
        assert_eq!(read_mo(&mo).unwrap(), [("a".to_string(), "b".to_string())]);
        let mut broken = mo.clone();
        broken[32] = 200;
        assert!(read_mo(&broken).is_err(), "an offset outside the file is refused");
        assert!(read_mo(&mo[..20]).is_err());
        assert!(read_mo(b"not a catalogue").is_err());
        let mut huge = mo.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_mo(&huge).is_err());
    }

    #[test]
    fn names_are_found_inflected_and_in_either_script() {
        // Debian's iso-codes is installed by scripts/test-setup.
        let countries = countries().expect("iso-codes is installed (scripts/test-setup)");
        assert!(countries.loaded > 1000, "{}", countries.loaded);
        assert_eq!(countries.found(Some("ru"), "Визит президента в Казахстане и Китае"), ["CN", "KZ"]);
        assert_eq!(countries.found(Some("kk"), "Тоқаев Қытайға сапармен барды"), ["CN"]);
        assert_eq!(countries.found(Some("kk"), "Qazaqstanga keldi"), ["KZ"], "Kazakh in Latin letters");
        assert_eq!(countries.found(Some("uz"), "Oʻzbekistonda yangi temir yoʻl"), ["UZ"]);
        assert_eq!(countries.found(Some("zh"), "托卡耶夫访问乌兹别克斯坦"), ["UZ"]);
        assert_eq!(countries.found(Some("zh"), "SCO峰会在哈萨克斯坦举行"), ["KZ"], "Latin capitals in Chinese text");
        assert_eq!(countries.found(Some("en"), "Talks in Kyrgyzstan and the Russian Federation"), ["KG", "RU"]);
        assert!(countries.found(Some("ru"), "Погода сегодня хорошая").is_empty());
        assert_eq!(countries.found(Some("ru"), "Делегация Австралии"), ["AU"], "not Austria");
        assert!(countries.found(Some("ru"), "По данным ведомства, того же мнения").is_empty(), "not Denmark or Togo");
    }
}
