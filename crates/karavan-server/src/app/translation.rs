//! Translation settings: the languages a member reads (items in others are translated into them) and
//! its glossaries (how terms must read in a target language).

use karavan_domain::{LanguageTag, MemberId, same_language};
use karavan_store::{Glossary, GlossaryTerm};

use super::Core;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};

/// The most languages a member may read.
pub const MAX_READ_LANGUAGES: usize = 32;
/// The most terms in one glossary, and the longest term.
pub const MAX_TERMS: usize = 5_000;
pub const MAX_TERM_CHARS: usize = 200;

/// Checks the languages a member asks to read (`languages[i]` names a bad one): BCP 47 tags, each
/// once, at most [`MAX_READ_LANGUAGES`]; returns them normalised.
pub fn check_read_languages(list: &[String]) -> ApiResult<Vec<String>> {
    if list.len() > MAX_READ_LANGUAGES {
        return Err(ApiError::invalid(format!("languages: at most {MAX_READ_LANGUAGES}")));
    }
    let mut languages = Vec::with_capacity(list.len());
    for (i, language) in list.iter().enumerate() {
        let tag =
            LanguageTag::parse(language).map_err(|e| ApiError::invalid(format!("languages[{i}]: {}", e.message)))?;
        if !languages.contains(&tag.as_str().to_string()) {
            languages.push(tag.as_str().to_string());
        }
    }
    Ok(languages)
}

/// Checks a glossary's language pair: two tags of two different languages.
pub fn check_pair(from: &str, to: &str) -> ApiResult<(String, String)> {
    let parse = |name: &str, value: &str| {
        LanguageTag::parse(value)
            .map(|t| t.as_str().to_string())
            .map_err(|e| ApiError::invalid(format!("{name}: {}", e.message)))
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    if same_language(&from, &to) {
        return Err(ApiError::invalid(format!("a glossary translates between two languages; {from} and {to} are one")));
    }
    Ok((from, to))
}

/// Checks a glossary's terms (source, target) before anything is stored: at least one, at most
/// [`MAX_TERMS`], each side non-empty, at most [`MAX_TERM_CHARS`], no control characters, each source
/// once (ignoring case); returns them trimmed.
pub fn check_terms(list: &[(String, String)]) -> ApiResult<Vec<GlossaryTerm>> {
    if list.is_empty() {
        return Err(ApiError::invalid("terms: give at least one term (DELETE removes a glossary)"));
    }
    if list.len() > MAX_TERMS {
        return Err(ApiError::invalid(format!("terms: at most {MAX_TERMS}")));
    }
    let mut terms: Vec<GlossaryTerm> = Vec::with_capacity(list.len());
    for (i, (source, target)) in list.iter().enumerate() {
        for (name, value) in [("source", source), ("target", target)] {
            if value.trim().is_empty() {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: must not be empty")));
            }
            if value.chars().count() > MAX_TERM_CHARS {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: at most {MAX_TERM_CHARS} characters")));
            }
            if value.chars().any(char::is_control) {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: must not contain control characters")));
            }
        }
        let source = source.trim().to_string();
        if terms.iter().any(|t| t.source.to_lowercase() == source.to_lowercase()) {
            return Err(ApiError::invalid(format!("terms[{i}].source: {source:?} is listed twice")));
        }
        terms.push(GlossaryTerm { source, target: target.trim().to_string() });
    }
    Ok(terms)
}

/// Replaces the languages `member` reads (tags already checked); returns them as stored.
pub async fn set_read_languages(core: &Core, member: &MemberId, languages: Vec<String>) -> ApiResult<Vec<String>> {
    let member = member.clone();
    let stored = core
        .blocking(move |store| {
            store.set_read_languages(&member, languages)?;
            store.read_languages(&member)
        })
        .await?;
    core.bus().publish(Event::Config(ConfigChange::ReadLanguages));
    Ok(stored)
}

/// Replaces `member`'s glossary for one language pair (terms already checked).
pub async fn set_glossary(
    core: &Core,
    member: &MemberId,
    from: String,
    to: String,
    terms: Vec<GlossaryTerm>,
) -> ApiResult<Glossary> {
    let member = member.clone();
    let glossary = core.blocking(move |store| store.set_glossary(&member, &from, &to, terms)).await?;
    core.bus().publish(Event::Config(ConfigChange::Glossaries));
    Ok(glossary)
}

/// Deletes `member`'s glossary for one pair; `NotFound` if there is none.
pub async fn delete_glossary(core: &Core, member: &MemberId, from: String, to: String) -> ApiResult<()> {
    let member = member.clone();
    let existed = core
        .blocking(move |store| {
            let existed =
                store.glossaries(&member)?.iter().any(|g| g.source_language == from && g.target_language == to);
            if existed {
                store.set_glossary(&member, &from, &to, Vec::new())?;
            }
            Ok(existed)
        })
        .await?;
    if !existed {
        return Err(ApiError::not_found("glossary"));
    }
    core.bus().publish(Event::Config(ConfigChange::Glossaries));
    Ok(())
}
