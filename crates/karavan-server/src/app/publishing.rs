//! Publishing: storing item versions (new items, corrections, kills) and telling the bus.
//!
//! A publish only writes the store (the version and its outbox event, in one transaction) and
//! announces it; the indexes, distribution and live wires follow the store in the background.

use karavan_domain::ItemId;
use karavan_ninjs::NinjsVersion;
use karavan_store::{ItemRead, NewVersion, PublishOutcome};
use serde_json::Value;

use super::Core;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::now;
use crate::publish::new_version;

/// Stores one version (validated and normalised by the edge's reader).
pub async fn publish(core: &Core, version: NewVersion) -> ApiResult<PublishOutcome> {
    read_and_publish(core, move || Ok(version)).await
}

/// Reads one version (the edge's reader: validation and normalisation) and stores it, in one trip to
/// the blocking pool: the reading is CPU work and the store call waits for the commit, and one
/// hand-off between threads fewer per publish is worth having on a busy wire.
pub async fn read_and_publish(
    core: &Core,
    read: impl FnOnce() -> ApiResult<NewVersion> + Send + 'static,
) -> ApiResult<PublishOutcome> {
    let store = std::sync::Arc::clone(core.store());
    let outcome = core.compute(move || store.publish(read()?).map_err(ApiError::from)).await??;
    announce(core, std::slice::from_ref(&outcome));
    Ok(outcome)
}

/// Reads versions and stores them all or nothing, in one trip to the blocking pool (see
/// [`read_and_publish`]).
pub async fn read_and_publish_all(
    core: &Core,
    read: impl FnOnce() -> ApiResult<Vec<NewVersion>> + Send + 'static,
) -> ApiResult<Vec<PublishOutcome>> {
    let store = std::sync::Arc::clone(core.store());
    let outcomes = core.compute(move || store.publish_all(read()?).map_err(ApiError::from)).await??;
    announce(core, &outcomes);
    Ok(outcomes)
}

/// Stores versions all or nothing and wakes the engines that follow the store (the keyword indexer,
/// distribution, the embedder).
pub async fn publish_all(core: &Core, versions: Vec<NewVersion>) -> ApiResult<Vec<PublishOutcome>> {
    read_and_publish_all(core, move || Ok(versions)).await
}

/// Tells the bus what a publish stored (waking the indexes, distribution and live wire streams).
fn announce(core: &Core, outcomes: &[PublishOutcome]) {
    use crate::bus::{Event, ItemChange};
    let mut stored = 0;
    for outcome in outcomes {
        let change = match outcome {
            PublishOutcome::Unchanged(_) => continue,
            PublishOutcome::Created(_) => ItemChange::Stored,
            PublishOutcome::Corrected(version) if version.pub_status == karavan_domain::PubStatus::Canceled => {
                ItemChange::Killed
            }
            PublishOutcome::Corrected(_) => ItemChange::Corrected,
        };
        stored += 1;
        core.bus().publish(Event::Item { change, seq: outcome.stored().seq });
    }
    core.metrics().published(stored);
}

/// Kills one of `member`'s items by publishing a canceled version.
pub async fn kill(
    core: &Core,
    member: &karavan_domain::MemberId,
    id: ItemId,
    reason: Option<String>,
) -> ApiResult<PublishOutcome> {
    let viewer = member.clone();
    let lookup = id.clone();
    let current = match core.blocking(move |store| store.item(&viewer, &lookup, now())).await? {
        ItemRead::Visible(version, _) => version,
        ItemRead::Killed(_) => {
            return Err(ApiError::new(ErrorCode::ItemKilled, "the item is already killed"));
        }
        ItemRead::NotFound => return Err(ApiError::not_found("item")),
    };
    if &current.owner != member {
        return Err(ApiError::forbidden("only the member that published an item may kill it"));
    }
    let mut document = current.document.clone();
    document.insert("pubStatus".to_string(), Value::String("canceled".to_string()));
    // The notice identifies the story (uri, headline, subjects) but carries none of its content.
    for content in ["bodies", "descriptions", "renditions", "associations"] {
        document.remove(content);
    }
    document.remove("version");
    document.remove("versionCreated");
    if let Some(reason) = reason {
        document.insert("edNote".to_string(), Value::String(reason));
    }
    // The kill goes through the same path as any publish, so its facts (subjects for agreements
    // limited to subjects, language, type) are extracted the same way.
    let value = Value::Object(document);
    let original = value.to_string();
    let owner = current.owner.clone();
    let kill = core.compute(move || new_version(&owner, &value, original, Some(NinjsVersion::V3_1))).await??;
    let outcome = core.blocking(move |store| store.publish(kill)).await?;
    announce(core, std::slice::from_ref(&outcome));
    Ok(outcome)
}
