//! The web newsroom's administration page: an agency's admins manage its users, API keys and sharing
//! agreements, and see the exchange's members. Every form is CSRF-checked and needs the admin role.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use karavan_domain::{AgreementId, Grantee, KeyId, MAX_DELAY_MINUTES, MemberId, Right, Role};
use karavan_store::{NewAgreement, Session};
use karavan_web::context;

use crate::AppState;
use crate::error::ApiError;
use crate::web::{
    Confirm, Form, failure, form_session, locale_of, page, redirect, refusal, require_session, signed_in, unconfirmed,
};

/// A form field of comma-separated values (subjects), trimmed, empty ones dropped.
fn comma_list(field: &str) -> Vec<String> {
    field.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// An administration form that names nothing of the agency's (an unknown id or action): back to the
/// page, which shows what there is.
fn back_to_admin() -> Response {
    redirect("/admin", vec![])
}

/// The confirmation step of an administration form that cannot be undone; `None`: confirmed.
fn confirmed_or_ask(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    form: &Form,
    action: String,
    question: &str,
    button: &str,
) -> Option<Response> {
    let confirm = Confirm { action, question, button, back: "/admin".into(), input: None };
    unconfirmed(state, headers, session, form, confirm)
}

async fn admin_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
    new_key: Option<String>,
) -> Response {
    let locale = locale_of(state, headers, None, Some(session));
    if session.user.role < Role::Admin {
        return refusal(state, headers, Some(session), "admin-forbidden");
    }
    let member = session.user.member.clone();
    let loaded = state
        .blocking(move |store| {
            let feeds = store.feeds(&member)?;
            Ok((
                store.users(&member)?,
                store.keys(&member)?,
                store.agreements_of(&member)?,
                store.members()?,
                member,
                feeds,
            ))
        })
        .await;
    let (users, keys, agreements, members, own, feeds) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return failure(error.message),
    };
    let name_of =
        |id: &MemberId| members.iter().find(|m| &m.id == id).map(|m| m.name.as_str().to_string()).unwrap_or_default();
    let localizer = state.pages().localizer();
    let everyone = localizer.message(locale, "admin-everyone", &[]);
    // An agreement's subjects as the reader says them (Media Topics by name); none: all subjects.
    let subjects_of = |subjects: &[String]| -> String {
        subjects
            .iter()
            .map(|key| match karavan_web::topics::topic_code(key) {
                Some(code) => karavan_web::topics::name(localizer, locale, code),
                None => key.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let context = context! {
        user => signed_in(session), csrf => session.csrf.clone(), error => error, new_key => new_key,
        operator => session.user.operator,
        users => users.iter().map(|u| context! {
            id => u.id.as_str(), me => u.id == session.user.id,
            email => u.email.clone(), name => u.display_name.clone(), role => u.role.as_str(),
            state => if u.disabled_at.is_some() { "disabled" } else { "active" },
        }).collect::<Vec<_>>(),
        keys => keys.iter().map(|k| context! {
            id => k.id.as_str(), role => k.role.as_str(), label => k.label.clone(),
            state => if k.revoked_at.is_some() { "revoked" } else { "active" },
        }).collect::<Vec<_>>(),
        agreements => agreements.iter().filter(|a| a.grantor == own).map(|a| context! {
            id => a.id.as_str(),
            grantee => match &a.grantee { Grantee::Everyone => everyone.clone(), Grantee::Member(id) => name_of(id) },
            right => a.right.as_str(), subjects => subjects_of(&a.subjects), delay => a.delay_minutes,
        }).collect::<Vec<_>>(),
        // What partners share with this agency.
        incoming => agreements.iter().filter(|a| a.grantor != own).map(|a| context! {
            grantor => name_of(&a.grantor), right => a.right.as_str(), subjects => subjects_of(&a.subjects),
            delay => a.delay_minutes, everyone => matches!(a.grantee, Grantee::Everyone),
        }).collect::<Vec<_>>(),
        feeds => feeds.iter().map(|f| context! {
            id => f.id.as_str(), name => f.spec.name.clone(), url => f.spec.url.clone(),
            status => crate::feeds::status(f), failures => f.consecutive_failures,
            last_success => f.last_success_at.map(|t| t.to_rfc3339()), last_error => f.last_error.clone(),
            items => f.items_published,
        }).collect::<Vec<_>>(),
        members => members.iter().map(|m| context! {
            id => m.id.as_str(), name => m.name.as_str(), country => m.country.as_str(), own => m.id == own,
            languages => m.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", "),
        }).collect::<Vec<_>>(),
    };
    match state.pages().render("admin.html", locale, context) {
        Ok(html) => page(status, html, vec![]),
        Err(error) => failure(error),
    }
}

/// After a change: back to the page, or the page again with what was wrong.
async fn changed(state: &AppState, headers: &HeaderMap, session: &Session, outcome: Result<(), ApiError>) -> Response {
    match outcome {
        Ok(()) => redirect("/admin", vec![]),
        Err(error) => {
            let locale = locale_of(state, headers, None, Some(session));
            let said = crate::web::api_error_text(state, locale, &error);
            admin_page(state, headers, session, error.code.status(), Some(said), None).await
        }
    }
}

/// `GET /admin`.
pub async fn admin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers, "/admin").await {
        Ok(session) if session.user.role >= Role::Admin => {
            admin_page(&state, &headers, &session, StatusCode::OK, None, None).await
        }
        Ok(session) => refusal(&state, &headers, Some(&session), "admin-forbidden"),
        Err(response) => response,
    }
}

/// `POST /admin/feeds` (form: csrf, name, url, language, subjects, interval in minutes): registers a
/// partner feed, checked exactly like `POST /v1/ingest/feeds`.
pub async fn add_feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let interval = form.get("interval");
    let language = form.get("language");
    let outcome = match interval.trim().parse::<u64>() {
        Ok(minutes) => {
            let input = crate::app::feeds::FeedInput {
                name: form.get("name"),
                url: form.get("url"),
                language: Some(language.trim().to_string()).filter(|l| !l.is_empty()),
                subjects: comma_list(&form.get("subjects")),
                interval_seconds: Some(minutes.saturating_mul(60)),
            };
            crate::app::feeds::add(&state, &session.user.member, input).await.map(|_| ())
        }
        Err(_) => Err(ApiError::invalid(format!("interval: {interval:?} is not a number of minutes"))),
    };
    changed(&state, &headers, &session, outcome).await
}

/// `POST /admin/feeds/{id}/{pause|resume|delete}`.
pub async fn feed_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(feed) = karavan_domain::FeedId::parse(&id) else { return back_to_admin() };
    if action == "delete" {
        let action = format!("/admin/feeds/{id}/delete");
        if let Some(ask) =
            confirmed_or_ask(&state, &headers, &session, &form, action, "confirm-delete-feed", "admin-delete")
        {
            return ask;
        }
    }
    let member = &session.user.member;
    let outcome = match action.as_str() {
        "pause" | "resume" => crate::app::feeds::set_paused(&state, member, &feed, action == "pause").await.map(|_| ()),
        "delete" => match crate::app::feeds::delete(&state, member, &feed).await {
            // Already gone: the admin page shows what is.
            Err(error) if error.code == crate::error::ErrorCode::NotFound => Ok(()),
            other => other,
        },
        _ => return back_to_admin(),
    };
    changed(&state, &headers, &session, outcome).await
}

/// `POST /admin/users` (form: csrf, email, name, role, password): adds a user to the admin's agency.
pub async fn add_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let outcome = match Role::parse(&form.get("role")) {
        Ok(role) => {
            let input = crate::app::access::UserInput {
                member: session.user.member.clone(),
                email: form.get("email"),
                display_name: form.get("name"),
                role,
                password: form.get("password"),
                operator: false,
            };
            crate::app::access::add_user(&state, input).await.map(|_| ())
        }
        Err(error) => Err(ApiError::from(error)),
    };
    changed(&state, &headers, &session, outcome).await
}

/// `POST /admin/keys` (form: csrf, role, label): creates an API key and shows it once.
pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let role = match Role::parse(&form.get("role")) {
        Ok(role) => role,
        Err(error) => {
            return admin_page(&state, &headers, &session, StatusCode::BAD_REQUEST, Some(error.message), None).await;
        }
    };
    let label = Some(form.get("label")).filter(|l| !l.is_empty());
    match crate::app::access::create_key(&state, &session.user.member, role, label).await {
        Ok((_, key)) => {
            admin_page(&state, &headers, &session, StatusCode::CREATED, None, Some(key.reveal().to_string())).await
        }
        Err(error) => admin_page(&state, &headers, &session, error.code.status(), Some(error.message), None).await,
    }
}

/// `POST /admin/keys/{id}/revoke` (form: csrf).
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(key) = KeyId::parse(&id) else { return back_to_admin() };
    let action = format!("/admin/keys/{id}/revoke");
    if let Some(ask) = confirmed_or_ask(&state, &headers, &session, &form, action, "confirm-revoke-key", "admin-revoke")
    {
        return ask;
    }
    match crate::app::access::revoke_key(&state, &session.user.member, &key).await {
        Ok(()) => redirect("/admin", vec![]),
        Err(error) if error.code == crate::error::ErrorCode::NotFound => redirect("/admin", vec![]),
        Err(error) => failure(error.message),
    }
}

/// `POST /admin/agreements` (form: csrf, grantee, right, subjects, delay): shares the agency's items.
pub async fn add_agreement(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let checked = (|| {
        let grantee = Grantee::parse(&form.get("grantee")).map_err(ApiError::from)?;
        let right = Right::parse(&form.get("right")).map_err(ApiError::from)?;
        let delay = form.get("delay");
        let delay_minutes = if delay.is_empty() {
            0
        } else {
            delay.parse::<u32>().ok().filter(|d| *d <= MAX_DELAY_MINUTES).ok_or_else(|| {
                ApiError::invalid(format!("delay: a whole number of minutes from 0 to {MAX_DELAY_MINUTES}"))
            })?
        };
        let subjects = comma_list(&form.get("subjects"));
        Ok::<_, ApiError>(NewAgreement {
            grantor: session.user.member.clone(),
            grantee,
            right,
            subjects,
            delay_minutes,
        })
    })();
    let outcome = match checked {
        Ok(agreement) => crate::app::agreements::grant(&state, agreement).await.map(|_| ()),
        Err(error) => Err(error),
    };
    changed(&state, &headers, &session, outcome).await
}

/// `POST /admin/agreements/{id}/revoke` (form: csrf).
pub async fn revoke_agreement(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(agreement) = AgreementId::parse(&id) else { return back_to_admin() };
    let action = format!("/admin/agreements/{id}/revoke");
    let question = "confirm-revoke-agreement";
    if let Some(ask) = confirmed_or_ask(&state, &headers, &session, &form, action, question, "admin-revoke") {
        return ask;
    }
    match crate::app::agreements::revoke(&state, &session.user.member, &agreement).await {
        // Revoked, or no longer live: the admin page shows what is.
        Ok(()) => redirect("/admin", vec![]),
        Err(error) if error.code == crate::error::ErrorCode::NotFound => redirect("/admin", vec![]),
        Err(error) => failure(error.message),
    }
}

/// `POST /admin/members` (form: csrf, name, country, languages, contact): an exchange operator adds a
/// member agency.
pub async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if !session.user.operator {
        return refusal(&state, &headers, Some(&session), "refused-role");
    }
    let checked = (|| {
        let name = karavan_domain::MemberName::parse(&form.get("name")).map_err(ApiError::from)?;
        let country =
            karavan_domain::CountryCode::parse(&form.get("country").to_uppercase()).map_err(ApiError::from)?;
        let languages = form
            .get("languages")
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(karavan_domain::LanguageTag::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::from)?;
        if languages.is_empty() {
            return Err(ApiError::invalid("languages: at least one language tag"));
        }
        let contact = Some(form.get("contact")).filter(|c| !c.is_empty());
        Ok(karavan_store::NewMember { name, country, languages, contact })
    })();
    let outcome = match checked {
        Ok(member) => crate::app::access::add_member(&state, member).await.map(|_| ()),
        Err(error) => Err(error),
    };
    changed(&state, &headers, &session, outcome).await
}

/// `POST /admin/users/{id}/disable` and `/enable` (form: csrf): a disabled user's sessions end at once.
pub async fn set_user_enabled(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/admin", &form, Role::Admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let disable = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return back_to_admin(),
    };
    let Ok(user) = karavan_domain::UserId::parse(&id) else { return back_to_admin() };
    if user == session.user.id {
        return refusal(&state, &headers, Some(&session), "refused-own-account");
    }
    // Disabling ends the user's sessions at once: asked first (enabling again is not).
    if disable
        && let Some(ask) = confirmed_or_ask(
            &state,
            &headers,
            &session,
            &form,
            format!("/admin/users/{user}/disable"),
            "confirm-disable-user",
            "admin-disable",
        )
    {
        return ask;
    }
    match crate::app::access::set_user_disabled(&state, &session.user.member, &user, disable).await {
        Ok(()) => redirect("/admin", vec![]),
        Err(error) if error.code == crate::error::ErrorCode::NotFound => back_to_admin(),
        Err(error) => failure(error.message),
    }
}
