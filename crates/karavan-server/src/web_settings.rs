//! The web newsroom's personal settings (`/settings`): the UI language and the time zone a user's
//! pages show times in (and a wire day follows). Without a time zone the browser's is used; without a
//! language, the browser's `Accept-Language`. Any signed-in user changes their own, CSRF-checked.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use karavan_domain::Role;
use karavan_store::Session;
use karavan_web::context;

use crate::AppState;
use crate::web::{
    Form, UI_COOKIE, api_error_text, failure, form_session, locale_of, page, redirect, remember_language, set_cookie,
    signed_in,
};

/// The page, with what a failed form was given (`kept`) and what was wrong.
fn settings_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
    saved: bool,
) -> Response {
    let locale = locale_of(state, headers, None, Some(session));
    let chosen = session.user.time_zone.clone();
    let now = crate::now().micros();
    let offered = crate::zones::offered();
    let (members, others) = offered.split_at(crate::zones::MEMBER_ZONES.len().min(offered.len()));
    // The members' zones say their offset now (UTC+05:00), the rest only their name.
    let with_offset = |name: &String| {
        let (offset, _) = crate::zones::local(Some(name), now);
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.abs() / 60;
        context! {
            name => name.clone(), selected => chosen.as_deref() == Some(name.as_str()),
            label => format!("{name} (UTC{sign}{:02}:{:02})", minutes / 60, minutes % 60),
        }
    };
    let context = context! {
        user => signed_in(session), csrf => session.csrf.clone(), error => error, saved => saved,
        member_zones => members.iter().map(with_offset).collect::<Vec<_>>(),
        other_zones => others.iter().map(|name| context! {
            name => name.clone(), selected => chosen.as_deref() == Some(name.as_str()),
        }).collect::<Vec<_>>(),
        chosen_zone => chosen,
        ui_languages => karavan_web::LANGUAGE_NAMES.iter().map(|(code, name)| context! {
            code => code, name => name, selected => session.user.locale.as_deref() == Some(*code),
        }).collect::<Vec<_>>(),
        follows_browser => session.user.locale.is_none(),
    };
    match state.pages().render("settings.html", locale, context) {
        Ok(html) => page(status, html, Vec::new()),
        Err(error) => failure(error),
    }
}

/// `GET /settings` (`?saved=1` after a change).
pub async fn settings(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let (session, pairs) = match crate::web::settings_visitor(&state, &headers, &query, "/settings").await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let saved = pairs.iter().any(|(k, v)| k == "saved" && v == "1");
    settings_page(&state, &headers, &session, StatusCode::OK, None, saved)
}

/// `POST /settings` (form: csrf, ui — a UI language or empty for the browser's —, time_zone — an IANA
/// name or empty for the browser's).
pub async fn save(State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let form = Form::read(body);
    let mut session = match form_session(&state, &headers, "/settings", &form, Role::Reader).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let zone = Some(form.get("time_zone")).filter(|z| !z.is_empty());
    let (member, user) = (session.user.member.clone(), session.user.id.clone());
    if let Err(error) = crate::app::access::set_user_time_zone(&state, &member, &user, zone.as_deref()).await {
        let locale = locale_of(&state, &headers, None, Some(&session));
        let said = api_error_text(&state, locale, &error);
        return settings_page(&state, &headers, &session, error.code.status(), Some(said), false);
    }
    // The language: one of the UI's, or none (the browser's), which also forgets the cookie.
    let ui = form.get("ui");
    let cookies = match state.pages().localizer().supported(&ui) {
        Some(code) => remember_language(&state, Some(code), Some(&session)).await,
        None if ui.is_empty() => {
            if let Err(error) = crate::app::access::set_user_locale(&state, &member, &user, None).await {
                return failure(error.message);
            }
            session.user.locale = None;
            vec![set_cookie(&state, UI_COOKIE, "", 0, false)]
        }
        None => Vec::new(),
    };
    redirect("/settings?saved=1", cookies)
}
