//! Sharing agreements: what a member lets others see of its items (all or some subjects, after a
//! delay or at once) and may republish.

use karavan_domain::{Agreement, AgreementId, MAX_DELAY_MINUTES, MemberId};
use karavan_store::NewAgreement;

use super::Core;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};

/// Grants an agreement (the caller is an admin of its grantor; the edge checked the role).
pub async fn grant(core: &Core, agreement: NewAgreement) -> ApiResult<Agreement> {
    if agreement.delay_minutes > MAX_DELAY_MINUTES {
        return Err(ApiError::invalid(format!(
            "delayMinutes: must be a whole number of minutes from 0 to {MAX_DELAY_MINUTES}"
        )));
    }
    let stored = core.blocking(move |store| store.add_agreement(agreement)).await?;
    core.bus().publish(Event::Config(ConfigChange::Agreements));
    Ok(stored)
}

/// Revokes one of the grantor's live agreements; `NotFound` if it has none by that id.
pub async fn revoke(core: &Core, grantor: &MemberId, id: &AgreementId) -> ApiResult<()> {
    let (grantor, id) = (grantor.clone(), id.clone());
    let revoked = core.blocking(move |store| store.revoke_agreement(&grantor, &id)).await?;
    if !revoked {
        return Err(ApiError::not_found("live agreement granted by your member"));
    }
    core.bus().publish(Event::Config(ConfigChange::Agreements));
    Ok(())
}
