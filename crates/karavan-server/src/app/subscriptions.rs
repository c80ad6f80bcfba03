//! Subscriptions: a saved query, the events wanted, a format and optionally a webhook to push to.

use karavan_domain::{EventKind, MemberId, SubscriptionId};
use karavan_store::{Subscription, SubscriptionSpec, Webhook};

use crate::AppState;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};
use crate::outbound::check_url;
use crate::params::Params;
use crate::subscriptions::{feed_url, random_token, token_hash};

/// Where to push, as a member gives it; no secret: keep the existing one, or make one up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookInput {
    pub url: String,
    pub secret: Option<String>,
}

/// What a member asks a subscription for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionInput {
    pub name: String,
    /// Parameters of a search (`q`, `lang`, …), in order.
    pub query: Vec<(String, String)>,
    /// Event names; `None`: every event.
    pub events: Option<Vec<String>>,
    /// `ninjs` (the default) or `newsml`.
    pub format: Option<String>,
    pub webhook: Option<WebhookInput>,
}

/// A subscription created or changed, with what is shown only once.
#[derive(Debug, Clone)]
pub struct Saved {
    pub subscription: Subscription,
    /// The feed URL with its new token (on creation).
    pub feed_url: Option<String>,
    /// The webhook secret, when the server made it up.
    pub secret: Option<String>,
}

/// Checks an input and makes the stored spec; `existing` supplies the webhook secret an update leaves
/// out. Returns the spec and the secret the server made up, if it did.
pub fn check(
    state: &AppState,
    input: SubscriptionInput,
    existing: Option<&Subscription>,
) -> ApiResult<(SubscriptionSpec, Option<String>)> {
    super::saved_searches::check_query(&input.query)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name: required, a non-empty string of at most 200 characters"));
    }
    // A query that does not compile would match nothing, silently: refuse it now.
    let request = crate::search::parse_search_query(&mut Params::from_pairs(input.query.clone()))?;
    state.search().matcher(&request).map_err(|e| match e {
        karavan_search::SearchError::BadQuery(message) => ApiError::invalid(format!("query.q: {message}")),
        other => ApiError::internal("compiling a subscription query", other),
    })?;
    let events = match input.events {
        None => EventKind::ALL.to_vec(),
        Some(names) if !names.is_empty() => {
            let mut events = Vec::new();
            for name in names {
                let kind = EventKind::parse(&name).map_err(|e| ApiError::invalid(format!("events: {}", e.message)))?;
                if !events.contains(&kind) {
                    events.push(kind);
                }
            }
            events
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "events: must be a non-empty array of publish, correction, kill, embargo_release",
            ));
        }
    };
    let format = match input.format {
        None => "ninjs".to_string(),
        Some(format) if format == "ninjs" || format == crate::distribution::NEWSML => format,
        Some(other) => return Err(ApiError::invalid(format!("format: {other:?} is not supported (ninjs, newsml)"))),
    };
    let mut generated = None;
    let webhook = match input.webhook {
        None => None,
        Some(webhook) => {
            let allow_private = state.config().distribution.outbound.allow_private;
            let url = check_url(webhook.url.trim(), allow_private)
                .map_err(|e| ApiError::invalid(format!("webhook.url: {e}")))?;
            let secret = match webhook.secret {
                Some(secret) if (16..=256).contains(&secret.len()) => secret,
                Some(_) => return Err(ApiError::invalid("webhook.secret: must be 16 to 256 characters")),
                None => match existing.and_then(|s| s.spec.webhook.as_ref()) {
                    Some(old) => old.secret.clone(),
                    None => {
                        let secret = random_token("whsec_")?;
                        generated = Some(secret.clone());
                        secret
                    }
                },
            };
            Some(Webhook { url: url.to_string(), secret })
        }
    };
    Ok((SubscriptionSpec { name: name.to_string(), query: input.query, events, format, webhook }, generated))
}

/// Creates a subscription for `member` (the caller's role was checked by the edge).
pub async fn create(state: &AppState, member: &MemberId, input: SubscriptionInput) -> ApiResult<Saved> {
    let (spec, secret) = check(state, input, None)?;
    let token = random_token("kft_")?;
    let hash = token_hash(&token);
    let member = member.clone();
    let subscription = state.blocking(move |store| store.add_subscription(&member, spec, hash)).await?;
    state.bus().publish(Event::Config(ConfigChange::Subscriptions));
    Ok(Saved { subscription, feed_url: Some(feed_url(state, &token)), secret })
}

/// The member's subscription, if it is theirs.
pub async fn find(state: &AppState, member: &MemberId, id: &SubscriptionId) -> ApiResult<Subscription> {
    let (member, id) = (member.clone(), id.clone());
    state
        .blocking(move |store| store.subscription(&member, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("subscription of your member"))
}

/// Replaces what a subscription asks for; its id, feed token and deliveries stay.
pub async fn update(
    state: &AppState,
    member: &MemberId,
    id: &SubscriptionId,
    input: SubscriptionInput,
) -> ApiResult<Saved> {
    let existing = find(state, member, id).await?;
    let (spec, secret) = check(state, input, Some(&existing))?;
    let (member, id) = (member.clone(), existing.id.clone());
    let subscription = state
        .blocking(move |store| {
            store.update_subscription(&member, &id, spec)?;
            store.subscription(&member, &id)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("subscription of your member"))?;
    state.bus().publish(Event::Config(ConfigChange::Subscriptions));
    Ok(Saved { subscription, feed_url: None, secret })
}

/// Deletes a subscription with its deliveries; `NotFound` if the member has none by that id.
pub async fn delete(state: &AppState, member: &MemberId, id: &SubscriptionId) -> ApiResult<()> {
    let (member, id) = (member.clone(), id.clone());
    let deleted = state.blocking(move |store| store.delete_subscription(&member, &id)).await?;
    if !deleted {
        return Err(ApiError::not_found("subscription of your member"));
    }
    state.bus().publish(Event::Config(ConfigChange::Subscriptions));
    Ok(())
}

/// A new feed token (the old feed URL stops working); returns the new feed URL.
pub async fn rotate_feed_token(state: &AppState, member: &MemberId, id: &SubscriptionId) -> ApiResult<String> {
    let token = random_token("kft_")?;
    let hash = token_hash(&token);
    let (member, id) = (member.clone(), id.clone());
    let rotated = state.blocking(move |store| store.set_feed_token(&member, &id, hash)).await?;
    if !rotated {
        return Err(ApiError::not_found("subscription of your member"));
    }
    Ok(feed_url(state, &token))
}

/// Sends a signed `test` event to a subscription's webhook now and says what became of it; a
/// subscription without a webhook is refused (409: it has nowhere to push).
pub async fn test_delivery(
    state: &AppState,
    member: &MemberId,
    id: &SubscriptionId,
) -> ApiResult<crate::distribution::TestDelivery> {
    let subscription = find(state, member, id).await?;
    let Some(webhook) = subscription.spec.webhook.clone() else {
        return Err(ApiError::new(
            crate::error::ErrorCode::Conflict,
            "webhook: this subscription has no webhook to test (it is read as a feed)",
        ));
    };
    Ok(crate::distribution::send_test(state.distribution(), &subscription, &webhook).await)
}
