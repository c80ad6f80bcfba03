//! Translation settings: the languages a member reads (items in others are translated into them) and
//! its glossaries (how terms must read in a target language).

use karavan_domain::MemberId;
use karavan_store::{Glossary, GlossaryTerm};

use super::Core;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};

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
