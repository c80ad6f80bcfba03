//! Member, key and agreement routes. Members are public to every member; keys and agreements are
//! managed by a member's admins for that member only.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use karavan_domain::{AgreementId, Grantee, KeyId, MAX_DELAY_MINUTES, MemberId, Right, Role};
use karavan_store::NewAgreement;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::items::body_bytes;
use crate::publish::parse_json_body;
use crate::{AppState, wire};

/// Reads a JSON object body and refuses fields the route does not know.
pub(crate) fn object_body(body: Result<Bytes, BytesRejection>, known: &[&str]) -> ApiResult<Map<String, Value>> {
    let body = body_bytes(body)?;
    let Value::Object(object) = parse_json_body(&body)? else {
        return Err(ApiError::invalid("body: expected a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(ApiError::invalid(format!("{unknown}: unknown field (expected {})", known.join(", "))));
    }
    crate::publish::refuse_nulls(&object)?;
    Ok(object)
}

pub(crate) fn string_field(object: &Map<String, Value>, name: &str) -> ApiResult<Option<String>> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be a string"))),
    }
}

pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member_id = caller.0.member.clone();
    let member = state.blocking(move |store| store.member(&member_id)).await?;
    Ok(Json(json!({
        "member": member.as_ref().map(wire::member),
        "role": caller.0.role.as_str(),
        "key": caller.0.key.as_str(),
    }))
    .into_response())
}

pub async fn list_members(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let members = state.blocking(|store| store.members()).await?;
    Ok(Json(json!({ "members": members.iter().map(wire::member).collect::<Vec<_>>() })).into_response())
}

pub async fn get_member(State(state): State<AppState>, _caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let id = MemberId::parse(&id)?;
    let member = state.blocking(move |store| store.member(&id)).await?;
    let member = member.ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(wire::member(&member)).into_response())
}

pub async fn list_keys(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Admin, "listing keys")?;
    let member = caller.0.member.clone();
    let keys = state.blocking(move |store| store.keys(&member)).await?;
    Ok(Json(json!({ "keys": keys.iter().map(wire::key).collect::<Vec<_>>() })).into_response())
}

/// `GET /v1/set-aside`: the caller's items that background work could not use (indexing, embedding,
/// a delivery's rendering, or reading the stored row), with the error: set aside, never retried by
/// themselves (`karavan set-aside retry` on the server retries them). Admins only.
pub async fn list_set_aside(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Admin, "listing set-aside items")?;
    let member = caller.0.member.clone();
    let records = state.blocking(move |store| store.set_aside_list(Some(&member))).await?;
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            json!({
                "work": r.work,
                "seq": r.seq,
                "item": r.item_id,
                "error": r.error,
                "state": if r.retry { "retry" } else { "held" },
                "at": r.at.to_rfc3339(),
            })
        })
        .collect();
    Ok(Json(json!({ "setAside": records })).into_response())
}

pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Admin, "creating keys")?;
    let object = object_body(body, &["role", "label"])?;
    let role =
        string_field(&object, "role")?.ok_or_else(|| ApiError::invalid("role: required (admin, editor or reader)"))?;
    let role = Role::parse(&role)?;
    let label = string_field(&object, "label")?;
    let (info, key) = crate::app::access::create_key(&state, &caller.0.member, role, label).await?;
    let mut body = wire::key(&info);
    body["key"] = Value::String(key.reveal().to_string());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn revoke_key(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(Role::Admin, "revoking keys")?;
    let id = KeyId::parse(&id)?;
    crate::app::access::revoke_key(&state, &caller.0.member, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_agreements(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let agreements = state.blocking(move |store| store.agreements_of(&member)).await?;
    let (granted, received): (Vec<_>, Vec<_>) = agreements.iter().partition(|a| a.grantor == caller.0.member);
    Ok(Json(json!({
        "granted": granted.iter().map(|a| wire::agreement(a)).collect::<Vec<_>>(),
        "received": received.iter().map(|a| wire::agreement(a)).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn create_agreement(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Admin, "granting agreements")?;
    let object = object_body(body, &["grantee", "right", "subjects", "delayMinutes"])?;
    let grantee = string_field(&object, "grantee")?
        .ok_or_else(|| ApiError::invalid("grantee: required (a member id, or \"*\" for every member)"))?;
    let grantee = Grantee::parse(&grantee)?;
    let right =
        string_field(&object, "right")?.ok_or_else(|| ApiError::invalid("right: required (view or republish)"))?;
    let right = Right::parse(&right)?;
    let subjects = match object.get("subjects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| match s.as_str().map(str::trim) {
                Some(text) if !text.is_empty() => Ok(text.to_string()),
                _ => {
                    Err(ApiError::invalid(format!("subjects[{i}]: must be a non-empty string (a subject code or URI)")))
                }
            })
            .collect::<ApiResult<Vec<_>>>()?,
        Some(_) => {
            return Err(ApiError::invalid("subjects: must be an array of subject codes or URIs"));
        }
    };
    let delay_minutes = match object.get("delayMinutes") {
        None | Some(Value::Null) => 0,
        Some(value) => match value.as_u64() {
            Some(minutes) if minutes <= u64::from(MAX_DELAY_MINUTES) => minutes as u32,
            _ => {
                return Err(ApiError::invalid(format!(
                    "delayMinutes: must be a whole number of minutes from 0 to {MAX_DELAY_MINUTES}"
                )));
            }
        },
    };
    let agreement = NewAgreement { grantor: caller.0.member.clone(), grantee, right, subjects, delay_minutes };
    let stored = crate::app::agreements::grant(&state, agreement).await?;
    Ok((StatusCode::CREATED, Json(wire::agreement(&stored))).into_response())
}

pub async fn revoke_agreement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Role::Admin, "revoking agreements")?;
    let id = AgreementId::parse(&id)?;
    crate::app::agreements::revoke(&state, &caller.0.member, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
