//! Item routes: publish (new items, corrections, kills), get one, its versions, and the caller's wire.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use karavan_domain::{ItemId, PubStatus, Role};
use karavan_ninjs::NinjsVersion;
use karavan_store::{Cursor, ItemRead, ListQuery, NewVersion, Page, PublishOutcome};
use serde_json::{Value, json};

use crate::app;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::params::Params;
use crate::publish::{new_version, new_versions_from_xml, parse_json_body};
use crate::{AppState, now, wire};

/// The header a client may use to say which ninjs version a body follows.
pub const NINJS_VERSION_HEADER: &str = "karavan-ninjs-version";

/// The body, or the API's error for a body that could not be read (413 when it is too large).
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "the body is larger than this server accepts")
        } else if timed_out(&rejection) {
            ApiError::new(ErrorCode::RequestTimeout, "body: the request body did not arrive in time")
        } else {
            ApiError::invalid(format!("body: {rejection}"))
        }
    })
}

/// Whether reading the body failed because its deadline passed ([`crate::listen::BodyTimedOut`]).
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<crate::listen::BodyTimedOut>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// What a publish body is, by its content type: JSON (ninjs; also when no type is given) or XML
/// (NewsML-G2 and its kin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Xml,
}

fn body_kind(headers: &HeaderMap) -> ApiResult<BodyKind> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(BodyKind::Json);
    };
    let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(BodyKind::Json)
    } else if essence == "application/xml"
        || essence == "text/xml"
        || (essence.starts_with("application/") && essence.ends_with("+xml"))
    {
        Ok(BodyKind::Xml)
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "content-type: {essence:?} is not accepted here; send application/json (ninjs) or \
                 application/vnd.iptc.g2.newsitem+xml (NewsML-G2)"
            ),
        ))
    }
}

/// A single-item read that is not visible, as every item route answers it: 410 with the kill notice
/// for a killed item, 404 for one the caller may not see (the two are not told apart from "no such").
pub fn unreadable(read: ItemRead) -> ApiError {
    match read {
        ItemRead::Killed(notice) => {
            ApiError::new(ErrorCode::ItemKilled, format!("item {} was killed; do not use it", notice.item_id))
                .with("notice", wire::ninjs(&notice))
        }
        ItemRead::Visible(..) | ItemRead::NotFound => ApiError::not_found("item"),
    }
}

/// The visible version of a single-item read, or the route's answer for any other ([`unreadable`]).
pub fn visible(read: ItemRead) -> Result<(karavan_store::StoredVersion, karavan_domain::Right), ApiError> {
    match read {
        ItemRead::Visible(version, right) => Ok((version, right)),
        other => Err(unreadable(other)),
    }
}

/// The most items one batch may carry.
pub const MAX_BATCH: usize = 1000;

fn outcome_json(outcome: &PublishOutcome) -> (StatusCode, Value) {
    let stored = outcome.stored();
    let killed = stored.pub_status == karavan_domain::PubStatus::Canceled;
    let (status, label) = match outcome {
        PublishOutcome::Created(_) | PublishOutcome::Corrected(_) if killed => (StatusCode::CREATED, "killed"),
        PublishOutcome::Created(_) => (StatusCode::CREATED, "created"),
        PublishOutcome::Corrected(_) => (StatusCode::CREATED, "corrected"),
        PublishOutcome::Unchanged(_) => (StatusCode::OK, "unchanged"),
    };
    let body = json!({
        "id": stored.item_id.as_str(),
        "status": label,
        "meta": wire::meta(stored),
        "item": wire::ninjs(stored),
    });
    (status, body)
}

fn publish_response(outcome: PublishOutcome) -> Response {
    let (status, body) = outcome_json(&outcome);
    let location = format!("/v1/items/{}", outcome.stored().item_id);
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn batch_response(outcomes: Vec<PublishOutcome>) -> Response {
    let results: Vec<(StatusCode, Value)> = outcomes.iter().map(outcome_json).collect();
    let status = if results.iter().any(|(status, _)| *status == StatusCode::CREATED) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let items: Vec<Value> = results.into_iter().map(|(_, body)| body).collect();
    (status, Json(json!({ "items": items }))).into_response()
}

/// Reads each element of a batch; an error names the element's index in its message and pointers.
pub(crate) fn read_batch(
    owner: &karavan_domain::MemberId,
    elements: &[Value],
    client_says: Option<NinjsVersion>,
) -> ApiResult<Vec<NewVersion>> {
    if elements.is_empty() {
        return Err(ApiError::invalid("body: the array of items is empty"));
    }
    if elements.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!("body: at most {MAX_BATCH} items in one batch, got {}", elements.len())));
    }
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            new_version(owner, element, element.to_string(), client_says).map_err(|mut error| {
                error.message = format!("item {index}: {}", error.message);
                if let Some(Value::Array(violations)) = error.extra.get_mut("violations") {
                    for violation in violations {
                        if let Some(pointer) = violation.get("pointer").and_then(Value::as_str) {
                            violation["pointer"] = Value::String(format!("/{index}{}", pointer.trim_end_matches('/')));
                        }
                    }
                }
                error
            })
        })
        .collect()
}

/// `POST /v1/items`: publish a new item, a correction (same uri, new version) or a kill
/// (`pubStatus: canceled`).
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "publishing")?;
    let mut params = Params::parse(query)?;
    let from_query = params.one("ninjs")?;
    params.finish()?;
    let kind = body_kind(&headers)?;
    let from_header = headers.get(NINJS_VERSION_HEADER).map(|v| v.to_str().unwrap_or_default().to_string());
    let client_says = match from_query.or(from_header) {
        None => None,
        Some(text) => Some(NinjsVersion::parse(&text).map_err(|e| ApiError::invalid(format!("ninjs: {e}")))?),
    };
    let body = body_bytes(body)?;
    let owner = caller.0.member.clone();
    if kind == BodyKind::Xml {
        if client_says.is_some() {
            return Err(ApiError::invalid("ninjs: a ninjs version makes no sense for an XML body"));
        }
        let mut outcomes =
            app::publishing::read_and_publish_all(&state, move || new_versions_from_xml(&owner, &body)).await?;
        // One item answers like a JSON publish; a newsMessage of several like a batch.
        return Ok(if outcomes.len() == 1 { publish_response(outcomes.remove(0)) } else { batch_response(outcomes) });
    }
    let value = parse_json_body(&body)?;
    let original =
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the body is not UTF-8"))?;
    // A JSON array is a batch (a ninjs collection): stored all or nothing, in order.
    if let Value::Array(elements) = value {
        let read = move || read_batch(&owner, &elements, client_says);
        return Ok(batch_response(app::publishing::read_and_publish_all(&state, read).await?));
    }
    // Validation and normalisation are CPU work: they run on the blocking pool, with the store call.
    let read = move || new_version(&owner, &value, original, client_says);
    Ok(publish_response(app::publishing::read_and_publish(&state, read).await?))
}

/// A `script` parameter: `Latn` or `Cyrl`.
pub(crate) fn parse_script(text: &str) -> ApiResult<karavan_script::Script> {
    karavan_script::Script::from_subtag(text)
        .ok_or_else(|| ApiError::invalid(format!("script: {text:?} is not Latn or Cyrl")))
}

fn parse_item_id(text: &str) -> ApiResult<ItemId> {
    ItemId::parse(text).map_err(ApiError::from)
}

/// `GET /v1/items/{id}`: the item as ninjs 3.1, or 410 with the kill notice.
pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let format = params.one("format")?;
    let script = params.one("script")?;
    let lang = params.one("lang")?;
    params.finish()?;
    let newsml = match format.as_deref() {
        None | Some("ninjs") | Some("original") => false,
        Some("newsml") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!("format: {other:?} is not supported (ninjs, newsml, original)")));
        }
    };
    let original = format.as_deref() == Some("original");
    if original && (script.is_some() || lang.is_some()) {
        return Err(ApiError::invalid("format: original is the document as received; it takes no script or lang"));
    }
    let script = script.map(|s| parse_script(&s)).transpose()?;
    let lang = lang.map(|l| crate::translation::parse_lang(&l)).transpose()?;
    let id = parse_item_id(&id)?;
    let viewer = caller.0.member.clone();
    let context = state.read_context();
    let as_ = wire::ReadAs { newsml, script, lang };
    let (read, export, translation) =
        state.blocking(move |store| wire::read_item(store, &context, &viewer, &id, as_)).await??;
    match read {
        ItemRead::Visible(version, _) if original => {
            // The document as the owner sent it, before normalisation and sanitising: for its owner only.
            if version.owner != caller.0.member {
                return Err(ApiError::forbidden(
                    "format=original: only the item's owner reads the document as received",
                ));
            }
            let media_type = match version.original.trim_start().as_bytes().first() {
                Some(b'{' | b'[') => "application/json",
                _ => "application/xml",
            };
            Ok(([(CONTENT_TYPE, format!("{media_type}; charset=utf-8"))], version.original).into_response())
        }
        ItemRead::Visible(version, right) => {
            let mut response = match export {
                Some((xml, media_type)) => {
                    ([(CONTENT_TYPE, format!("{media_type}; charset=utf-8"))], xml).into_response()
                }
                None => Json(wire::ninjs(&version)).into_response(),
            };
            let headers = response.headers_mut();
            let mut fields = vec![
                ("karavan-item-id", version.item_id.to_string()),
                ("karavan-member", version.owner.to_string()),
                ("karavan-right", right.as_str().to_string()),
                ("etag", etag(version.seq, translation.as_ref().map(|t| &t.translation))),
            ];
            if let Some(language) = version.document.get("language").and_then(serde_json::Value::as_str) {
                fields.push(("content-language", language.to_string()));
            }
            if let Some(translated) = &translation {
                let translation = &translated.translation;
                fields.push(("karavan-translation", format!("machine; model={}", translation.model)));
                fields.push(("karavan-translated-from", translation.source_language.clone()));
                fields.push(("karavan-translation-status", translated.status.header()));
                fields.push(("link", format!("</v1/items/{}>; rel=\"original\"", version.item_id)));
            }
            for (name, value) in fields {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            Ok(response)
        }
        other => Err(unreadable(other)),
    }
}

/// A version's entity tag; a translation's names its language and glossary variant too, and whether
/// its body is still the original's (`-head`).
fn etag(seq: i64, translation: Option<&karavan_store::StoredTranslation>) -> String {
    let Some(t) = translation else { return format!("\"{seq}\"") };
    let variant = if t.variant.is_empty() { String::new() } else { format!("-{}", t.variant) };
    let partial = if t.has(karavan_store::TranslationPart::Body) { "" } else { "-head" };
    format!("\"{seq}-{}{variant}{partial}\"", t.language)
}

/// `GET /v1/items/{id}/versions`: every version the caller may see, oldest first.
pub async fn get_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_item_id(&id)?;
    let viewer = caller.0.member.clone();
    let versions = state.blocking(move |store| store.versions(&viewer, &id, now())).await?;
    let versions = versions.ok_or_else(|| ApiError::not_found("item"))?;
    if let Some(notice) = versions.last().filter(|v| v.pub_status == PubStatus::Canceled && v.owner != caller.0.member)
    {
        return Err(ApiError::new(ErrorCode::ItemKilled, format!("item {} was killed; do not use it", notice.item_id))
            .with("notice", wire::ninjs(notice)));
    }
    let body = json!({
        "versions": versions.iter().map(wire::ninjs).collect::<Vec<_>>(),
        "meta": versions.iter().map(wire::meta).collect::<Vec<_>>(),
    });
    Ok(Json(body).into_response())
}

/// `POST /v1/items/{id}/kill`: withdraws an item everywhere by publishing a canceled version.
pub async fn kill_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "killing an item")?;
    let id = parse_item_id(&id)?;
    let body = body_bytes(body)?;
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value = parse_json_body(&body)?;
        if let Value::Object(object) = &value {
            crate::publish::refuse_nulls(object)?;
        }
        match value.get("reason") {
            None => None,
            Some(Value::String(reason)) => Some(reason.clone()),
            Some(_) => return Err(ApiError::invalid("reason: must be a string")),
        }
    };
    let outcome = app::publishing::kill(&state, &caller.0.member, id, reason).await?;
    Ok(publish_response(outcome))
}

pub fn parse_urgency(text: &str) -> ApiResult<(u8, u8)> {
    let bad = || ApiError::invalid(format!("urgency: {text:?} is not an urgency (1-9) or a range like 1-3"));
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let low: u8 = low.trim().parse().map_err(|_| bad())?;
    let high: u8 = high.trim().parse().map_err(|_| bad())?;
    if !(1..=9).contains(&low) || !(1..=9).contains(&high) || low > high {
        return Err(bad());
    }
    Ok((low, high))
}

fn parse_cursor(name: &str, token: &str) -> ApiResult<Cursor> {
    Cursor::parse_token(token)
        .ok_or_else(|| ApiError::invalid(format!("{name}: {token:?} is not a cursor from this API")))
}

/// `subject=` (repeatable): subject keys to list, as agreements name them (`medtop:04000000`, a
/// subject's URI or literal); at most 20, each at most 200 characters.
pub(crate) fn subject_filter(params: &mut Params) -> ApiResult<Vec<String>> {
    let subjects: Vec<String> = params.all("subject").into_iter().map(|s| s.trim().to_string()).collect();
    if subjects.len() > 20 {
        return Err(ApiError::invalid("subject: at most 20 subjects"));
    }
    if let Some(bad) = subjects.iter().find(|s| s.is_empty() || s.chars().count() > 200) {
        return Err(ApiError::invalid(format!("subject: {bad:?} is not a subject key (1 to 200 characters)")));
    }
    Ok(subjects)
}

/// `GET /v1/items`: the caller's wire, newest first (`after=` pages back), or everything that appeared
/// since a cursor, oldest first (`since=`, for polling).
pub async fn list_items(State(state): State<AppState>, caller: Caller, query: RawQuery) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let since = params.one("since")?;
    let after = params.one("after")?;
    let page = match (since, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("since: give since or after, not both"));
        }
        (Some(token), None) => Page::Since(parse_cursor("since", &token)?),
        (None, Some(token)) => Page::NewestFirst(Some(parse_cursor("after", &token)?)),
        (None, None) => Page::NewestFirst(None),
    };
    let limit = params.limit(50, 500)?;
    let owner = match params.one("member")? {
        None => None,
        Some(text) => Some(karavan_domain::MemberId::parse(&text)?),
    };
    let mut languages = params.all("lang");
    languages.extend(params.all("language"));
    for language in &languages {
        karavan_domain::LanguageTag::parse(language)?;
    }
    let item_type = params.one("type")?;
    if let Some(item_type) = &item_type
        && !["text", "audio", "video", "picture", "graphic", "composite", "component", "event", "planning"]
            .contains(&item_type.as_str())
    {
        return Err(ApiError::invalid(format!("type: {item_type:?} is not a ninjs type")));
    }
    let urgency = params.one("urgency")?.map(|text| parse_urgency(&text)).transpose()?;
    let from = params.time("from")?;
    let to = params.time("to")?;
    let include = params.all("include");
    let include_kills = include.iter().any(|i| i == "kills");
    if let Some(other) = include.iter().find(|i| *i != "kills") {
        return Err(ApiError::invalid(format!("include: {other:?} is not something to include (kills)")));
    }
    let subjects = subject_filter(&mut params)?;
    params.finish()?;
    let query = ListQuery {
        page,
        limit,
        owner,
        languages,
        item_type,
        urgency,
        from,
        to,
        include_kills,
        only_kills: false,
        subjects,
        items: None,
    };
    let viewer = caller.0.member.clone();
    let listed = state.blocking(move |store| store.list(&viewer, &query, now())).await?;
    let body = json!({
        "items": listed.entries.iter().map(|e| wire::ninjs(&e.version)).collect::<Vec<_>>(),
        "meta": listed.entries.iter().map(|e| {
            let mut meta = wire::meta(&e.version);
            meta["cursor"] = Value::String(e.cursor.to_token());
            meta["right"] = Value::String(e.right.as_str().to_string());
            meta
        }).collect::<Vec<_>>(),
        "next": listed.next.map(Cursor::to_token),
        "latest": listed.horizon.to_token(),
    });
    Ok(Json(body).into_response())
}
