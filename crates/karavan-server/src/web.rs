//! The web newsroom's routes (server-rendered pages): sign-in with sessions in secure cookies and CSRF
//! tokens, sign-out, the UI language switch, and the embedded assets. Pages come from `karavan-web`.
//!
//! Architecture invariant: every web response carries a Content-Security-Policy that allows scripts
//! and styles only from this server (no inline script), and every form that changes state carries a
//! CSRF token checked against the session (or, before sign-in, against a cookie).

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use karavan_domain::Timestamp;
use karavan_store::Session;
use karavan_web::context;
use sha2::{Digest, Sha256};

use crate::outbound::hex;
use crate::{AppState, now, password};

pub const SESSION_COOKIE: &str = "karavan_session";
pub const CSRF_COOKIE: &str = "karavan_csrf";
pub const UI_COOKIE: &str = "karavan_ui";
/// Set once an editor has been told that no translation model is installed.
const MODEL_NOTICE_COOKIE: &str = "karavan_model_notice";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// The Content-Security-Policy of every page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
     object-src 'none'";

fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn secure(state: &AppState) -> bool {
    state.config().public_url.as_deref().is_some_and(|url| url.starts_with("https://"))
}

pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: i64, http_only: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age_seconds}");
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if secure(state) {
        cookie.push_str("; Secure");
    }
    cookie
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The signed-in session of a request, if any.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hash = token_hash(token);
    state.blocking(move |store| store.session(hash, now())).await.ok().flatten()
}

/// The UI language: `?ui=`, then the cookie, then the user's setting, then `Accept-Language`.
pub(crate) fn locale_of(
    state: &AppState,
    headers: &HeaderMap,
    asked: Option<&str>,
    session: Option<&Session>,
) -> &'static str {
    let localizer = state.pages().localizer();
    asked
        .and_then(|tag| localizer.supported(tag))
        .or_else(|| cookie(headers, UI_COOKIE).and_then(|tag| localizer.supported(tag)))
        .or_else(|| session.and_then(|s| s.user.locale.as_deref()).and_then(|tag| localizer.supported(tag)))
        .unwrap_or_else(|| {
            localizer.negotiate(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or(""))
        })
}

/// A page response with the security headers every page carries.
pub(crate) fn page(status: StatusCode, html: String, cookies: Vec<String>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

pub(crate) fn redirect(to: &str, cookies: Vec<String>) -> Response {
    let mut response = page(StatusCode::SEE_OTHER, String::new(), cookies);
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub(crate) fn failure(error: String) -> Response {
    tracing::error!(%error, "a web page failed");
    page(StatusCode::INTERNAL_SERVER_ERROR, "<!doctype html><title>Error</title><p>Internal error.</p>".into(), vec![])
}

/// A refusal page (403) in the UI language: `message` is a message id (`refused-stale-form`,
/// `refused-role`, `admin-forbidden`, …), said in the page with the newsroom around it.
pub(crate) fn refusal(state: &AppState, headers: &HeaderMap, session: Option<&Session>, message: &str) -> Response {
    let locale = locale_of(state, headers, None, session);
    let text = state.pages().localizer().message(locale, message, &[]);
    said_page(state, headers, session, StatusCode::FORBIDDEN, ("refused-title", text))
}

/// A page in the newsroom that says `text` (already in the UI language) with `status`: a refusal, or
/// a form's error where the form has no page of its own to show it on.
pub(crate) fn said_page(
    state: &AppState,
    headers: &HeaderMap,
    session: Option<&Session>,
    status: StatusCode,
    (title, text): (&str, String),
) -> Response {
    let locale = locale_of(state, headers, None, session);
    let title = state.pages().localizer().message(locale, title, &[]);
    let context = match session {
        Some(session) => {
            context! { user => signed_in(session), csrf => session.csrf.clone(), message => text, title => title }
        }
        None => context! { message => text, title => title },
    };
    match state.pages().render("refused.html", locale, context) {
        Ok(html) => page(status, html, vec![]),
        Err(error) => failure(error),
    }
}

/// "Too large: at most 4 MB …" in the UI language, for the server's body limit.
fn upload_too_large(state: &AppState, locale: &str) -> String {
    let megabytes = state.config.max_body_bytes as f64 / (1024.0 * 1024.0);
    let size = if megabytes >= 1.0 { format!("{megabytes:.0} MB") } else { format!("{megabytes:.2} MB") };
    state.pages().localizer().message(locale, "publish-upload-too-large", &[("size", &size)])
}

/// A newsroom form (not the API, a feed or an asset) whose declared body is over the server's limit:
/// a page in the UI language that says so and what the limit is, instead of the API's JSON error.
pub(crate) async fn too_large_page(state: &AppState, headers: &HeaderMap) -> Response {
    let session = session_of(state, headers).await;
    let locale = locale_of(state, headers, None, session.as_ref());
    let text = upload_too_large(state, locale);
    said_page(state, headers, session.as_ref(), StatusCode::PAYLOAD_TOO_LARGE, ("error-title", text))
}

/// Whether a path is one of the newsroom's pages or forms (its errors are pages, not JSON).
pub(crate) fn is_newsroom_path(path: &str) -> bool {
    let machine = ["/v1/", "/feeds/", "/assets/"].iter().any(|prefix| path.starts_with(prefix))
        || matches!(path, "/healthz" | "/readyz" | "/metrics");
    !machine
}

/// What a confirmation step asks, as message ids said in the UI language: the question and the
/// button; the form's action, where Cancel goes, and an optional field to fill in on the step (a
/// kill's reason).
pub(crate) struct Confirm<'a> {
    pub action: String,
    pub question: &'a str,
    pub button: &'a str,
    pub back: String,
    /// (name, label id, id of the message when left empty): a required field shown on the step, its
    /// value kept.
    pub input: Option<(&'a str, &'a str, &'a str)>,
}

/// The confirmation step of a destructive form: unless the form carries `confirm=yes` (and, where the
/// step asks for one, a non-empty field), the page asks, with every field of the form carried over.
/// `None`: confirmed, go on.
pub(crate) fn unconfirmed(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    form: &Form,
    confirm: Confirm<'_>,
) -> Option<Response> {
    let filled = confirm.input.as_ref().is_none_or(|(name, _, _)| !form.get(name).is_empty());
    if form.get("confirm") == "yes" && filled {
        return None;
    }
    let locale = locale_of(state, headers, None, Some(session));
    let message = |id: &str| state.pages().localizer().message(locale, id, &[]);
    let input_name = confirm.input.as_ref().map(|(name, _, _)| *name);
    let hidden: Vec<(String, String)> =
        form.0.iter().filter(|(key, _)| key != "confirm" && Some(key.as_str()) != input_name).cloned().collect();
    let input = confirm.input.map(|(name, label, error)| {
        // Asked for and left empty: say so at the field.
        let error = (form.get("confirm") == "yes").then(|| message(error));
        context! { name => name, label => message(label), value => form.get(name), error => error }
    });
    let context = context! {
        user => signed_in(session), csrf => session.csrf.clone(), action => confirm.action,
        question => message(confirm.question), button => message(confirm.button), back => confirm.back,
        hidden => hidden, input => input,
    };
    let status = if form.get("confirm") == "yes" { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Some(match state.pages().render("confirm.html", locale, context) {
        Ok(html) => page(status, html, vec![]),
        Err(error) => failure(error),
    })
}

/// A submitted form (`application/x-www-form-urlencoded`); an unreadable body is an empty form.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(bytes: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub(crate) fn read(body: Result<Bytes, BytesRejection>) -> Form {
        body.map(|bytes| Form::parse(&bytes)).unwrap_or(Form(Vec::new()))
    }

    /// A field as typed (passwords keep their spaces); empty when absent.
    pub(crate) fn raw(&self, name: &str) -> String {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_default()
    }

    /// A field, trimmed; empty when absent.
    pub(crate) fn get(&self, name: &str) -> String {
        self.raw(name).trim().to_string()
    }

    /// Every value of a repeated field (checkboxes).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Whether the form carries the session's CSRF token.
    pub(crate) fn carries(&self, session: &Session) -> bool {
        self.get("csrf") == session.csrf
    }
}

/// The session behind a state-changing form: signed in (else a redirect to sign in and come back to
/// `path`), the form carrying its CSRF token, and the user holding `role` (else 403).
pub(crate) async fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    form: &Form,
    role: karavan_domain::Role,
) -> Result<Session, Response> {
    let session = require_session(state, headers, path).await?;
    if !form.carries(&session) {
        return Err(refusal(state, headers, Some(&session), "refused-stale-form"));
    }
    if session.user.role < role {
        return Err(refusal(state, headers, Some(&session), "refused-role"));
    }
    Ok(session)
}

/// Query parameters of a page: `ui` (the language switch) and the others, as given.
pub(crate) fn query_pairs(query: &RawQuery) -> Vec<(String, String)> {
    query.0.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// Remembers a language chosen with `?ui=`: in a cookie, and for a signed-in user in their settings.
pub(crate) async fn remember_language(state: &AppState, asked: Option<&str>, session: Option<&Session>) -> Vec<String> {
    let Some(code) = asked.and_then(|tag| state.pages().localizer().supported(tag)) else {
        return Vec::new();
    };
    if let Some(session) = session {
        let locale = Some(code.to_string());
        if let Err(error) =
            crate::app::access::set_user_locale(state, &session.user.member, &session.user.id, locale).await
        {
            tracing::warn!(error = %error.message, "could not remember the UI language");
        }
    }
    vec![set_cookie(state, UI_COOKIE, code, 365 * 24 * 3600, false)]
}

/// A settings page's visitor: signed in (else the redirect to sign in), with the page's query; a
/// language switch (`?ui=`) is remembered and answered with a redirect to the page without it, so the
/// page shows in the language chosen.
pub(crate) async fn settings_visitor(
    state: &AppState,
    headers: &HeaderMap,
    query: &RawQuery,
    path: &str,
) -> Result<(Session, Vec<(String, String)>), Response> {
    let session = require_session(state, headers, path).await?;
    let pairs = query_pairs(query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let cookies = remember_language(state, asked, Some(&session)).await;
    if !cookies.is_empty() {
        return Err(redirect(path, cookies));
    }
    Ok((session, pairs))
}

/// A local path to return to after sign-in; anything else becomes `/`.
fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.contains(['\r', '\n']) {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// `GET /`: the newsroom (for now its shell), or the sign-in page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let Some(session) = session_of(&state, &headers).await else {
        let cookies = remember_language(&state, asked, None).await;
        return redirect("/login?next=%2F", cookies);
    };
    let cookies = remember_language(&state, asked, Some(&session)).await;
    let locale = locale_of(&state, &headers, asked, Some(&session));
    let zone = session.user.time_zone.as_deref();
    // Filters (agency, language, subject, urgency, day), for the list and its live stream; each one
    // that reads is kept in the URL of every link (paging, the live stream, the language switch).
    let value =
        |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let filters = WireFilters::read(&value, session.user.time_zone.as_deref());
    let mut list = karavan_store::ListQuery::newest(WIRE_PAGE);
    // A killed item stays on the wire as its kill notice, marked.
    list.include_kills = true;
    filters.apply(&mut list);
    let filter_pairs = filters.pairs();
    let filtered = !filter_pairs.is_empty();
    let filter_query = encode_query(&filter_pairs);
    // Paging to older items: `after=` a row's cursor, as the API pages (`after=`).
    let after = karavan_store::Cursor::parse_token(&value("after"));
    if let Some(cursor) = after {
        list.page = karavan_store::Page::NewestFirst(Some(cursor));
    }
    // Headlines in the reader's language (the UI language) where a machine translation is stored.
    let reading = locale.to_string();
    let viewer = session.user.member.clone();
    let models = std::sync::Arc::clone(state.language());
    let at_now = now();
    let listed = state
        .blocking(move |store| {
            let members = store.members()?;
            let listed = store.list(&viewer, &list, at_now)?;
            let versions: Vec<&karavan_store::StoredVersion> = listed.entries.iter().map(|e| &e.version).collect();
            let translated = crate::translation::listed_headlines(store, &models, &viewer, &versions, &reading)?;
            Ok((listed, members, translated))
        })
        .await;
    let (listed, members, translated) = match listed {
        Ok(found) => found,
        Err(error) => return failure(error.message),
    };
    let names = crate::wire::member_names(&members);
    let members: Vec<karavan_web::Value> =
        members.iter().map(|m| context! { id => m.id.as_str(), name => m.name.as_str() }).collect();
    let viewer = &session.user.member;
    let items: Vec<karavan_web::Value> = listed
        .entries
        .iter()
        .map(|entry| {
            let version = &entry.version;
            let document = &version.document;
            let text =
                |key: &str| document.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
            let original =
                crate::search::texts(document, "headlines").into_iter().next().unwrap_or_else(|| version.uri.clone());
            let at = document
                .get("versionCreated")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| version.committed_at.to_rfc3339());
            // Only the owner lists an item before its embargo ends.
            let embargoed = (&version.owner == viewer && version.available_at > at_now)
                .then(|| local_time(locale, zone, &version.available_at.to_rfc3339()));
            let translation = translated.get(&version.seq);
            let language = text("language");
            context! {
                id => version.item_id.as_str(),
                cursor => entry.cursor.to_token(),
                event => crate::stream::wire_event(entry).as_str(),
                headline => translation.map(|(h, _)| h.clone()).unwrap_or_else(|| original.clone()),
                headline_language => if translation.is_some() { locale.to_string() } else { language.clone() },
                original => original,
                model => translation.map(|(_, m)| m.clone()),
                member => names.get(version.owner.as_str()).cloned().unwrap_or_default(),
                language => language,
                urgency => document.get("urgency").and_then(serde_json::Value::as_u64),
                embargoed => embargoed,
                at_text => local_time(locale, zone, &at),
                at => at,
            }
        })
        .collect();
    let older = match (&listed.next, listed.entries.len() as u32 >= WIRE_PAGE) {
        (Some(next), true) => {
            let mut pairs = filter_pairs.clone();
            pairs.push(("after".into(), next.to_token()));
            Some(format!("/{}", encode_query(&pairs)))
        }
        _ => None,
    };
    let user = signed_in(&session);
    // The live stream follows the same filters; a day in the past has nothing new to stream.
    let live = after.is_none() && filters.day.is_none();
    let stream_query = encode_query(&filters.stream_pairs());
    let context = context! {
        user => user, csrf => session.csrf, items => items, filters => filters.context(),
        members => members, topics => topic_options(&state, locale),
        filter_query => filter_query, filtered => filtered, older => older, paged => after.is_some(),
        newest => format!("/{filter_query}"), stream => live.then(|| format!("/wire/stream{stream_query}")),
    };
    match state.pages().render("home.html", locale, context) {
        Ok(html) => page(StatusCode::OK, html, cookies),
        Err(error) => failure(error),
    }
}

/// Rows per page of the wire.
const WIRE_PAGE: u32 = 50;

/// `?a=b&c=d` for pairs of a query, or nothing for none.
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish())
    }
}

/// The wire desk's filters as read from its URL; a value that does not read is left out (the page
/// shows the unfiltered choice for it) rather than refused.
#[derive(Debug, Default)]
struct WireFilters {
    member: Option<karavan_domain::MemberId>,
    lang: Option<String>,
    /// A subject key: a Media Topic's QCode from the picker, or any key an agreement could name.
    subject: Option<String>,
    urgency: Option<(String, (u8, u8))>,
    /// A day (`YYYY-MM-DD`) in the reader's time zone, and its offset (`tz`, minutes behind UTC as
    /// browsers give it).
    day: Option<(String, i64)>,
    /// Kill notices only (`kills=only`).
    kills: bool,
    /// The reader's own time zone setting, which a day follows rather than the browser's offset.
    zone: Option<String>,
}

impl WireFilters {
    fn read(value: &dyn Fn(&str) -> String, zone: Option<&str>) -> WireFilters {
        let member = karavan_domain::MemberId::parse(&value("member")).ok();
        let lang = Some(value("lang")).filter(|l| karavan_domain::LanguageTag::parse(l).is_ok());
        let subject = Some(value("subject")).filter(|s| !s.is_empty() && s.chars().count() <= 200);
        let urgency = crate::items::parse_urgency(&value("urgency")).ok().map(|range| (value("urgency"), range));
        let offset = value("tz").parse::<i64>().ok().filter(|m| m.abs() <= 16 * 60).unwrap_or(0);
        let day = Some(value("day")).filter(|d| day_start(d).is_some()).map(|d| (d, offset));
        let kills = value("kills") == "only";
        WireFilters { member, lang, subject, urgency, day, kills, zone: zone.map(str::to_string) }
    }

    fn apply(&self, list: &mut karavan_store::ListQuery) {
        list.owner = self.member.clone();
        list.languages = self.lang.iter().cloned().collect();
        list.subjects = self.subject.iter().cloned().collect();
        list.urgency = self.urgency.as_ref().map(|(_, range)| *range);
        list.only_kills = self.kills;
        if let Some((day, offset)) = &self.day {
            let bounds = match &self.zone {
                Some(zone) => crate::zones::day_bounds(zone, day),
                None => day_start(day)
                    .map(|start| start + offset * 60_000_000)
                    .map(|from| (from, from + 24 * 3_600_000_000 - 1)),
            };
            if let Some((from, to)) = bounds {
                list.from = Some(Timestamp(from));
                list.to = Some(Timestamp(to));
            }
        }
    }

    /// The filters the live stream takes (all but the day).
    fn stream_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        if let Some(member) = &self.member {
            pairs.push(("member".to_string(), member.to_string()));
        }
        if let Some(lang) = &self.lang {
            pairs.push(("lang".to_string(), lang.clone()));
        }
        if let Some(subject) = &self.subject {
            pairs.push(("subject".to_string(), subject.clone()));
        }
        if let Some((text, _)) = &self.urgency {
            pairs.push(("urgency".to_string(), text.clone()));
        }
        pairs
    }

    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = self.stream_pairs();
        if let Some((day, offset)) = &self.day {
            pairs.push(("day".to_string(), day.clone()));
            pairs.push(("tz".to_string(), offset.to_string()));
        }
        if self.kills {
            pairs.push(("kills".to_string(), "only".to_string()));
        }
        pairs
    }

    fn context(&self) -> karavan_web::Value {
        context! {
            member => self.member.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            lang => self.lang.clone().unwrap_or_default(),
            subject => self.subject.clone().unwrap_or_default(),
            urgency => self.urgency.as_ref().map(|(text, _)| text.clone()).unwrap_or_default(),
            day => self.day.as_ref().map(|(day, _)| day.clone()).unwrap_or_default(),
            kills => self.kills,
        }
    }
}

/// Midnight UTC of a `YYYY-MM-DD` day, in µs.
fn day_start(day: &str) -> Option<i64> {
    let bytes = day.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    Timestamp::parse_rfc3339("day", &format!("{day}T00:00:00Z")).ok().map(|t| t.micros())
}

/// The top-level Media Topics as a picker offers them: the QCode and the name in the UI language,
/// in the language's alphabetical order of names.
pub(crate) fn topic_options(state: &AppState, locale: &str) -> Vec<karavan_web::Value> {
    let localizer = state.pages().localizer();
    let mut topics: Vec<(String, String)> = karavan_web::topics::MEDIA_TOPICS
        .iter()
        .map(|(code, _)| (karavan_web::topics::qcode(code), karavan_web::topics::name(localizer, locale, code)))
        .collect();
    topics.sort_by_key(|topic| topic.1.to_lowercase());
    topics.into_iter().map(|(key, name)| context! { key => key, name => name }).collect()
}

/// A subject as the reader should see it: a top-level Media Topic by its name in the UI language,
/// any other by its own name (or key).
pub(crate) fn subject_name(state: &AppState, locale: &str, subject: &serde_json::Value) -> Option<String> {
    if let Some(code) = karavan_web::topics::subject_topic(subject) {
        return Some(karavan_web::topics::name(state.pages().localizer(), locale, code));
    }
    ["name", "literal", "uri"]
        .iter()
        .find_map(|field| subject.get(field).and_then(serde_json::Value::as_str))
        .map(str::to_string)
}

/// The sign-in page; `wait_seconds` says how long repeated failures must wait.
fn login_page(
    state: &AppState,
    locale: &str,
    csrf: &str,
    next: &str,
    email: &str,
    failed: bool,
    wait_seconds: Option<u64>,
) -> Result<String, String> {
    state.pages().render(
        "login.html",
        locale,
        context! { csrf => csrf, next => next, email => email, failed => failed, wait_seconds => wait_seconds },
    )
}

/// `GET /login`: the sign-in form, with a fresh CSRF token in a cookie and in the form.
pub async fn login_form(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let next = local_path(pairs.iter().find(|(k, _)| k == "next").map_or("/", |(_, v)| v.as_str()));
    let mut cookies = remember_language(&state, asked, None).await;
    let Some(csrf) = random_hex() else { return failure("no randomness".into()) };
    cookies.push(set_cookie(&state, CSRF_COOKIE, &csrf, 3600, true));
    let locale = locale_of(&state, &headers, asked, None);
    match login_page(&state, locale, &csrf, &next, "", false, None) {
        Ok(html) => page(StatusCode::OK, html, cookies),
        Err(error) => failure(error),
    }
}

/// A hash to verify against when the email is unknown, so that a wrong email and a wrong password
/// take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash("karavan dummy password").unwrap_or_default())
}

/// `POST /login` (form: email, password, csrf, next): starts a session and returns to `next`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return page(
            StatusCode::BAD_REQUEST,
            "<!doctype html><title>Bad request</title><p>Bad request.</p>".into(),
            vec![],
        );
    };
    let form = Form::parse(&body);
    let (email, secret, csrf, next) =
        (form.raw("email"), form.raw("password"), form.raw("csrf"), local_path(&form.raw("next")));
    let locale = locale_of(&state, &headers, None, None);
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or_default().to_string();
    if expected.is_empty() || csrf != expected {
        // The form is stale or forged: show a fresh one.
        let Some(fresh) = random_hex() else { return failure("no randomness".into()) };
        let cookies = vec![set_cookie(&state, CSRF_COOKIE, &fresh, 3600, true)];
        return match login_page(&state, locale, &fresh, &next, &email, false, None) {
            Ok(html) => page(StatusCode::FORBIDDEN, html, cookies),
            Err(error) => failure(error),
        };
    }
    // Repeated failures wait before the password is even looked at (see `throttle`).
    let address = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let keys = crate::throttle::keys(&email, address);
    let lookup_keys = keys.clone();
    let since = Timestamp(now().micros() - crate::throttle::WINDOW.as_micros() as i64);
    let counted = match state.blocking(move |store| store.login_failures(&lookup_keys, since)).await {
        Ok(counted) => counted,
        Err(error) => return failure(error.message),
    };
    if let Some(wait) = crate::throttle::wait(&counted, now()) {
        let seconds = wait.as_secs() + 1;
        tracing::warn!(email = %email, address = ?address, seconds, "sign-in refused: too many failures");
        return match login_page(&state, locale, &expected, &next, &email, true, Some(seconds)) {
            Ok(html) => {
                let mut response = page(StatusCode::TOO_MANY_REQUESTS, html, vec![]);
                if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
                }
                response
            }
            Err(error) => failure(error),
        };
    }
    let lookup = email.clone();
    let user = state.blocking(move |store| store.user_by_email(&lookup)).await.ok().flatten();
    let stored = user.as_ref().filter(|u| u.disabled_at.is_none()).map(|u| u.password_hash.clone());
    let verified = state
        .compute(move || match stored {
            Some(hash) => password::verify(&hash, &secret),
            None => {
                password::verify(dummy_hash(), &secret);
                false
            }
        })
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!(email = %email, address = ?address, "a sign-in failed");
        let (failed_keys, at) = (keys.clone(), now());
        let forget_before = Timestamp(at.micros() - crate::throttle::WINDOW.as_micros() as i64);
        if let Err(error) =
            state.blocking(move |store| store.record_login_failure(failed_keys, at, forget_before)).await
        {
            return failure(error.message);
        }
        return match login_page(&state, locale, &expected, &next, &email, true, None) {
            Ok(html) => page(StatusCode::UNAUTHORIZED, html, vec![]),
            Err(error) => failure(error),
        };
    };
    let (Some(token), Some(session_csrf)) = (random_hex(), random_hex()) else {
        return failure("no randomness".into());
    };
    let hash = token_hash(&token);
    let expires = Timestamp(now().micros() + SESSION_HOURS * 3_600_000_000);
    let id = user.id.clone();
    if let Err(error) = state.blocking(move |store| store.create_session(&id, hash, &session_csrf, expires)).await {
        return failure(error.message);
    }
    tracing::info!(user = %user.id, member = %user.member, "signed in");
    let forget = crate::throttle::keys_to_forget(&keys);
    if let Err(error) = state.blocking(move |store| store.clear_login_failures(forget)).await {
        tracing::warn!(error = %error.message, "could not forget the failed sign-ins");
    }
    let cookies = vec![
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_HOURS * 3600, true),
        set_cookie(&state, CSRF_COOKIE, "", 0, true),
    ];
    redirect(&next, cookies)
}

/// `POST /logout` (form: csrf): ends the session.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    if let Some(session) = session_of(&state, &headers).await {
        if !form.carries(&session) {
            return refusal(&state, &headers, Some(&session), "refused-stale-form");
        }
        if let Some(token) = cookie(&headers, SESSION_COOKIE) {
            let hash = token_hash(token);
            if let Err(error) = state.blocking(move |store| store.end_session(hash)).await {
                return failure(error.message);
            }
        }
    }
    redirect("/login", vec![set_cookie(&state, SESSION_COOKIE, "", 0, true)])
}

/// The signed-in session, or a redirect to sign in and come back to `path`.
pub(crate) async fn require_session(state: &AppState, headers: &HeaderMap, path: &str) -> Result<Session, Response> {
    match session_of(state, headers).await {
        Some(session) => Ok(session),
        None => {
            let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
            Err(redirect(&format!("/login?next={next}"), vec![]))
        }
    }
}

/// The shared context of a signed-in page.
pub(crate) fn signed_in(session: &Session) -> karavan_web::Value {
    context! {
        name => session.user.display_name.clone(), role => session.user.role.as_str(),
        time_zone => session.user.time_zone.clone(),
    }
}

/// An RFC 3339 time as the UI language writes it, in the user's time zone (UTC without one: the
/// browser's zone is applied by the page's script).
pub(crate) fn local_time(locale: &str, zone: Option<&str>, at: &str) -> String {
    match Timestamp::parse_rfc3339("at", at) {
        Ok(time) => {
            let (offset, label) = crate::zones::local(zone, time.micros());
            karavan_web::format::date_time_in(locale, time.micros(), offset, &label)
        }
        Err(_) => at.to_string(),
    }
}

/// `GET /items/{id}`: one item as its reader may see it, its body sanitised, with its versions.
pub async fn item_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    let session = match require_session(&state, &headers, &format!("/items/{id}")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let mut cookies = remember_language(&state, asked, Some(&session)).await;
    let locale = locale_of(&state, &headers, asked, Some(&session));
    let zone = session.user.time_zone.as_deref();
    let user = signed_in(&session);
    let not_found = |state: &AppState| match state.pages().render(
        "not_found.html",
        locale,
        context! { user => user.clone(), csrf => session.csrf.clone() },
    ) {
        Ok(html) => page(StatusCode::NOT_FOUND, html, vec![]),
        Err(error) => failure(error),
    };
    let Ok(item_id) = karavan_domain::ItemId::parse(&id) else { return not_found(&state) };
    let viewer = session.user.member.clone();
    // `?lang=`: the item in one of the languages the member reads (or any other), machine-translated.
    let lang = pairs
        .iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| karavan_domain::LanguageTag::parse(v).ok())
        .map(|tag| tag.as_str().to_string());
    let context = state.read_context();
    let read = state
        .blocking(move |store| {
            let read = store.item(&viewer, &item_id, now())?;
            let versions = match &read {
                karavan_store::ItemRead::Visible(..) => store.versions(&viewer, &item_id, now())?.unwrap_or_default(),
                _ => Vec::new(),
            };
            let names: std::collections::HashMap<String, String> = crate::wire::member_names(&store.members()?);
            let read_languages = store.read_languages(&viewer)?;
            // Its story, as this agency sees it: the title and how many items.
            let story = match &read {
                karavan_store::ItemRead::Visible(..) => {
                    crate::stories::view::story_of_item(store, &viewer, &item_id, now())?.map(|story| {
                        (
                            story.id.to_string(),
                            story.title().headline.clone(),
                            story.title().language.clone(),
                            story.items.len(),
                        )
                    })
                }
                _ => None,
            };
            // The head is made now if need be; the body is left to the workers (its job goes first).
            let translated = match (&read, lang.as_deref()) {
                (karavan_store::ItemRead::Visible(version, _), Some(lang)) => {
                    Some(crate::translation::translated(store, &context, &viewer, version, lang))
                }
                _ => None,
            };
            Ok((read, versions, names, read_languages, translated, story))
        })
        .await;
    let (read, versions, names, read_languages, translated, story) = match read {
        Ok(found) => found,
        Err(error) => return failure(error.message),
    };
    // A version's language, headline and time (its commit where it names none).
    let describe = |version: &karavan_store::StoredVersion| {
        let (language, headline, at) = describe_document(&version.document, &version.uri);
        let at = if at.is_empty() { version.committed_at.to_rfc3339() } else { at };
        (language, headline, at)
    };
    let (html, status) = match read {
        karavan_store::ItemRead::Visible(mut version, right) => {
            let original_language =
                version.document.get("language").and_then(serde_json::Value::as_str).map(str::to_string);
            let original = version.document.clone();
            // A translation replaces the text shown (its head, and its body once done), and says so.
            let (translation, translate_failed) = match translated {
                Some(Ok(Some(translated))) => {
                    version.document = crate::translation::translated_document(&version, &translated.translation, None);
                    (Some(translation_context(&state, locale, &translated)), false)
                }
                Some(Ok(None)) | None => (None, false),
                Some(Err(error)) => {
                    tracing::info!(error = %error.message, item = %version.item_id, "item page: no translation");
                    (None, true)
                }
            };
            // The language check, the text in another script if asked, and similar stories.
            let script =
                pairs.iter().find(|(k, _)| k == "script").and_then(|(_, v)| karavan_script::Script::from_subtag(v));
            let models = std::sync::Arc::clone(state.language());
            let mut document = version.document.clone();
            let checked_original = original.clone();
            let checked = state
                .compute(move || {
                    let check = crate::language::language_check(&models, &checked_original);
                    let detected = check.as_ref().and_then(|c| c["detected"].as_str()).map(str::to_string);
                    let language = document.get("language").and_then(serde_json::Value::as_str).map(str::to_string);
                    let convertible =
                        language.or(detected.clone()).and_then(|l| karavan_script::Language::from_tag(&l));
                    let converted = match script {
                        Some(script) => {
                            crate::language::convert_script(&mut document, script, detected.as_deref()).is_ok()
                        }
                        None => false,
                    };
                    (check, convertible, converted.then_some(document))
                })
                .await;
            let (check, convertible, converted) = checked.unwrap_or((None, None, None));
            if let Some(converted) = converted {
                version.document = converted;
            }
            let similar_request =
                karavan_search::SearchRequest { text: None, limit: 5, ..karavan_search::SearchRequest::text("") };
            let similar = crate::semantic::similar_to(&state, session.user.member.clone(), &version, similar_request)
                .await
                .ok()
                .map(|found| found.hits.iter().map(|hit| hit_row(&hit.version, &names)).collect::<Vec<_>>());
            let scripts: Vec<&str> = match convertible {
                Some(karavan_script::Language::Kyrgyz | karavan_script::Language::Tajik) => vec!["Latn"],
                Some(_) => vec!["Latn", "Cyrl"],
                None => Vec::new(),
            };
            let document = &version.document;
            let (language, headline, at) = describe(&version);
            let body = body_html(document);
            let subjects: Vec<String> = document
                .get("subjects")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| subject_name(&state, locale, s))
                .collect();
            let genres: Vec<String> = document
                .get("genres")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|g| match karavan_web::topics::genre_of(g) {
                    Some(genre) => Some(state.pages().localizer().message(locale, &format!("genre-{genre}"), &[])),
                    None => g.get("name").and_then(serde_json::Value::as_str).map(str::to_string),
                })
                .collect();
            // Shown beside a translation: the original as published.
            let original_side = translation.as_ref().map(|_| {
                let (language, headline, _) = describe_document(&original, &version.uri);
                context! {
                    language => language, headline => headline,
                    description => crate::search::texts(&original, "descriptions").into_iter().next(),
                    body => karavan_web::safe(body_html(&original)),
                }
            });
            // Republishing: the text with the credit line, where the viewer's right allows it.
            let member_name = names.get(version.owner.as_str()).cloned().unwrap_or_default();
            let credit = credit_line(&state, locale, &original, &member_name);
            let can_republish = right == karavan_domain::Right::Republish;
            // Said once to an editor (the browser remembers it was told); the translation settings
            // page always says it.
            let no_model = session.user.role >= karavan_domain::Role::Editor
                && state.translations().installed_model().is_none()
                && cookie(&headers, MODEL_NOTICE_COOKIE).is_none();
            let embargo = document
                .get("embargoedUntil")
                .and_then(serde_json::Value::as_str)
                .map(|at| local_time(locale, zone, at));
            // The languages the member reads, to read the item in (not its own).
            let read_in: Vec<String> = read_languages
                .into_iter()
                .filter(|l| original_language.as_deref().is_none_or(|o| !karavan_domain::same_language(o, l)))
                .collect();
            if no_model && !read_in.is_empty() {
                cookies.push(set_cookie(&state, MODEL_NOTICE_COOKIE, "told", 90 * 24 * 3600, true));
            }
            let body_language = match &translation {
                Some((_, true)) => original_language.clone().unwrap_or_default(),
                _ => language.clone(),
            };
            let item = context! {
                id => version.item_id.as_str(),
                headline => headline,
                language => language,
                body_language => body_language,
                // The versions' headlines and differences are the original's.
                source_language => original_language.clone().unwrap_or_else(|| language.clone()),
                read_in => read_in,
                translation => translation.map(|(context, _)| context),
                translate_failed => translate_failed,
                member => names.get(version.owner.as_str()).cloned().unwrap_or_default(),
                at_text => local_time(locale, zone, &at),
                at => at,
                urgency => document.get("urgency").and_then(serde_json::Value::as_u64),
                version => version.version.clone(),
                embargo => embargo,
                byline => document.get("by").and_then(serde_json::Value::as_str),
                description => crate::search::texts(document, "descriptions").into_iter().next(),
                body => karavan_web::safe(body),
                right => right.as_str(),
                usage => document.get("usageTerms").and_then(serde_json::Value::as_str),
                subjects => subjects,
                genres => genres,
                slugline => document.get("slugline").and_then(serde_json::Value::as_str),
                located => document.get("located").and_then(serde_json::Value::as_str),
                original => original_side,
                credit => credit,
                can_republish => can_republish,
                no_model => no_model,
                check => check.map(|c| context! {
                    declared => c["declared"].as_str().map(str::to_string),
                    detected => c["detected"].as_str().unwrap_or_default().to_string(),
                    confidence => format!("{:.2}", c["confidence"].as_f64().unwrap_or_default()),
                    contradicts => c["contradicts"].as_bool().unwrap_or(false),
                }),
                scripts => scripts,
                script => script.map(|s| s.subtag()),
                similar => similar,
                story => story.as_ref().map(|(id, title, language, size)| context! {
                    id => id, title => title, language => language, size => size,
                }),
            };
            // Each version with its word differences from the one before (headline and text).
            let plain = |v: &karavan_store::StoredVersion| crate::language::item_text(&v.document);
            let mut history: Vec<karavan_web::Value> = Vec::new();
            for (index, v) in versions.iter().enumerate() {
                let (_, headline, at) = describe(v);
                let (diff, previous) = match index.checked_sub(1).map(|p| &versions[p]) {
                    Some(before) => {
                        let runs = karavan_web::diff::words(&plain(before), &plain(v));
                        (Some(karavan_web::safe(karavan_web::diff::to_html(&runs))), Some(before.version.clone()))
                    }
                    None => (None, None),
                };
                history.push(context! {
                    version => v.version.clone(), headline => headline, at_text => local_time(locale, zone, &at), at => at,
                    diff => diff, previous => previous,
                });
            }
            history.reverse();
            let can_edit = version.owner == session.user.member && session.user.role >= karavan_domain::Role::Editor;
            let context = context! { user => user, csrf => session.csrf.clone(), item => item, versions => history, killed => false, can_edit => can_edit };
            (state.pages().render("item.html", locale, context), StatusCode::OK)
        }
        karavan_store::ItemRead::Killed(notice) => {
            let (language, headline, _) = describe(&notice);
            let ednote = notice.document.get("edNote").and_then(serde_json::Value::as_str).map(str::to_string);
            let item = context! { headline => headline, language => language, ednote => ednote };
            let context = context! { user => user, csrf => session.csrf.clone(), item => item, killed => true };
            (state.pages().render("item.html", locale, context), StatusCode::GONE)
        }
        karavan_store::ItemRead::NotFound => return not_found(&state),
    };
    match html {
        Ok(html) => page(status, html, cookies),
        Err(error) => failure(error),
    }
}

/// An item's body as HTML to show: HTML bodies sanitised, plain ones escaped into paragraphs.
fn body_html(document: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut body = String::new();
    for entry in document.get("bodies").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let value = entry.get("value").and_then(serde_json::Value::as_str).unwrap_or_default();
        let html = entry.get("contentType").and_then(serde_json::Value::as_str).is_some_and(|t| t.contains("html"));
        body.push_str(&if html { karavan_web::sanitize(value) } else { karavan_web::text_to_html(value) });
    }
    body
}

/// An item's language, headline (its URI when it has none) and time.
fn describe_document(document: &serde_json::Map<String, serde_json::Value>, uri: &str) -> (String, String, String) {
    let language = document.get("language").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    let headline = crate::search::texts(document, "headlines").into_iter().next().unwrap_or_else(|| uri.to_string());
    let at = document.get("versionCreated").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    (language, headline, at)
}

/// The credit line a republished copy carries: the copyright holder the item names (else its
/// agency), its copyright notice and usage terms, said in the UI language.
fn credit_line(
    state: &AppState,
    locale: &str,
    document: &serde_json::Map<String, serde_json::Value>,
    member: &str,
) -> String {
    let field =
        |key: &str| document.get(key).and_then(serde_json::Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let holder = field("copyrightHolder").unwrap_or(member);
    let mut credit = state.pages().localizer().message(locale, "item-credit", &[("name", holder)]);
    for extra in [field("copyrightNotice"), field("usageTerms")].into_iter().flatten() {
        credit.push_str(" — ");
        credit.push_str(extra);
    }
    credit
}

/// `GET /items/{id}/ninjs`: the item as ninjs 3.1, downloaded with the session's visibility.
pub async fn item_ninjs(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    item_download(state, headers, id, false).await
}

/// `GET /items/{id}/newsml`: the item as NewsML-G2, downloaded with the session's visibility.
pub async fn item_newsml(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    item_download(state, headers, id, true).await
}

async fn item_download(state: AppState, headers: HeaderMap, id: String, newsml: bool) -> Response {
    let session = match require_session(&state, &headers, &format!("/items/{id}")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(item_id) = karavan_domain::ItemId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such item").into_response();
    };
    let viewer = session.user.member.clone();
    let context = state.read_context();
    let as_ = crate::wire::ReadAs { newsml, ..Default::default() };
    let read = state.blocking(move |store| crate::wire::read_item(store, &context, &viewer, &item_id, as_)).await;
    match read.and_then(|read| read) {
        Ok((karavan_store::ItemRead::Visible(version, _), export, _)) => {
            let (body, content_type, extension) = match export {
                Some((xml, media_type)) => (xml, media_type, "xml"),
                None => (crate::wire::ninjs(&version).to_string(), "application/json", "json"),
            };
            let disposition = format!("attachment; filename=\"{}.{extension}\"", version.item_id);
            let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok((karavan_store::ItemRead::Killed(_), _, _)) => (StatusCode::GONE, "the item was killed").into_response(),
        Ok((karavan_store::ItemRead::NotFound, _, _)) => (StatusCode::NOT_FOUND, "no such item").into_response(),
        Err(error) => failure(error.message),
    }
}

/// The parameters of a search page, in its URL order; each filter that is set is a facet one can
/// remove, and the rest of the page's links keep them all.
const SEARCH_PARAMETERS: [&str; 8] = ["q", "lang", "member", "subject", "from", "to", "sort", "mode"];

/// `GET /search?q=&lang=&member=&subject=&from=&to=&sort=&mode=`: search over what the user's member
/// may see, with clickable facets (agency, language, subject by name, days) and snippets (the query
/// language and checks of `GET /v1/search`). Without words it browses by the filters, newest first.
pub async fn search_page(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let pairs = query_pairs(&query);
    let path = match &query.0 {
        Some(raw) => format!("/search?{raw}"),
        None => "/search".to_string(),
    };
    let session = match require_session(&state, &headers, &path).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let value =
        |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let cookies = remember_language(&state, asked, Some(&session)).await;
    let locale = locale_of(&state, &headers, asked, Some(&session));
    let zone = session.user.time_zone.as_deref();
    // The members once: for the member filter, and to name the publishers of hits and facets.
    let members = state.blocking(|store| store.members()).await.unwrap_or_default();
    let names = crate::wire::member_names(&members);
    // The page's own parameters as given (empty ones left out).
    let search_pairs: Vec<(String, String)> = SEARCH_PARAMETERS
        .iter()
        .filter(|name| !value(name).is_empty())
        .map(|name| (name.to_string(), value(name)))
        .collect();
    let (q, sort, mode) = (value("q"), value("sort"), value("mode"));
    // A search runs with words, or with any filter (browsing).
    let searched = pairs.iter().any(|(k, _)| k == "q")
        || search_pairs.iter().any(|(k, _)| !["sort", "mode", "q"].contains(&k.as_str()));
    // A link to this search with one parameter set to another value (or removed).
    let with = |name: &str, to: Option<&str>| -> String {
        let mut pairs: Vec<(String, String)> = search_pairs.iter().filter(|(k, _)| k != name).cloned().collect();
        if let Some(to) = to {
            pairs.push((name.to_string(), to.to_string()));
        }
        if !pairs.iter().any(|(k, _)| k == "q") {
            pairs.insert(0, ("q".to_string(), String::new()));
        }
        format!("/search{}", encode_query(&pairs))
    };
    let mut error: Option<String> = None;
    let mut hits: Vec<karavan_web::Value> = Vec::new();
    let mut total = 0u64;
    let mut next_page: Option<String> = None;
    let mut facets = context! {};
    if searched {
        let mut request_pairs: Vec<(String, String)> =
            search_pairs.iter().filter(|(k, _)| k != "mode" && k != "q").cloned().collect();
        // Browsing (no words): newest first.
        if !q.is_empty() {
            request_pairs.push(("q".to_string(), q.clone()));
        } else if sort.is_empty() {
            request_pairs.push(("sort".to_string(), "date".to_string()));
        }
        // Days are the reader's: `from` and `to` are dates (the start of `from`, the end of `to`).
        for (key, value) in request_pairs.iter_mut() {
            if let (Some(start), "from" | "to") = (day_start(value), key.as_str()) {
                let at = if key == "from" { start } else { start + 24 * 3_600_000_000 - 1 };
                *value = Timestamp(at).to_rfc3339();
            }
        }
        let mut params = crate::params::Params::from_pairs(request_pairs);
        let cursor = Some(value("cursor")).filter(|c| !c.is_empty());
        let mode_text = mode.clone();
        let outcome = async {
            let mut request = crate::search::parse_search_query(&mut params)?;
            params.finish()?;
            request.limit = 50;
            crate::search::apply_cursor(&mut request, cursor.as_deref())?;
            let mode = crate::semantic::Mode::parse(Some(mode_text.as_str()).filter(|m| !m.is_empty()))?;
            // Words are needed to rank by meaning; browsing lists by the filters alone.
            let mode = if request.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                crate::semantic::Mode::Keyword
            } else {
                mode
            };
            crate::search::search_in_mode(&state, session.user.member.clone(), request, mode).await
        }
        .await;
        match outcome {
            Ok(results) => {
                total = results.total as u64;
                // The next page: the same search from the answer's cursor.
                if let Some(next) = results.next.as_deref() {
                    let mut pairs = search_pairs.clone();
                    pairs.push(("cursor".to_string(), next.to_string()));
                    next_page = Some(format!("/search{}", encode_query(&pairs)));
                }
                for hit in &results.hits {
                    let document = &hit.version.document;
                    let at = document.get("versionCreated").and_then(serde_json::Value::as_str).unwrap_or_default();
                    hits.push(context! {
                        id => hit.version.item_id.as_str(),
                        headline => crate::search::texts(document, "headlines").into_iter().next().unwrap_or_default(),
                        language => document.get("language").and_then(serde_json::Value::as_str).unwrap_or_default(),
                        member => names.get(hit.version.owner.as_str()).cloned().unwrap_or_default(),
                        at_text => local_time(locale, zone, at),
                        at => at,
                        // tantivy escapes the text and adds only <b>; sanitised all the same.
                        snippet => karavan_web::safe(karavan_web::sanitize(&hit.snippet)),
                    });
                }
                let localizer = state.pages().localizer();
                let facet = |name: &str, key: &str, label: String, count: u64| {
                    let current = value(name) == key;
                    context! {
                        label => label, count => count, current => current,
                        href => if current { with(name, None) } else { with(name, Some(key)) },
                    }
                };
                let member_facets: Vec<karavan_web::Value> = results
                    .facets
                    .members
                    .iter()
                    .map(|(id, n)| facet("member", id, names.get(id).cloned().unwrap_or_else(|| id.clone()), *n))
                    .collect();
                let language_facets: Vec<karavan_web::Value> =
                    results.facets.languages.iter().map(|(code, n)| facet("lang", code, code.clone(), *n)).collect();
                // Subjects: the Media Topics by name in the UI language (others by their key), each
                // topic once (an item carries its QCode and its URI).
                let mut seen = std::collections::HashSet::new();
                let subject_facets: Vec<karavan_web::Value> = results
                    .facets
                    .subjects
                    .iter()
                    .filter_map(|(key, n)| {
                        let (key, label) = match karavan_web::topics::topic_code(key) {
                            Some(code) => {
                                (karavan_web::topics::qcode(code), karavan_web::topics::name(localizer, locale, code))
                            }
                            None if key.starts_with("http") => return None,
                            None => (key.clone(), key.clone()),
                        };
                        seen.insert(key.clone()).then(|| facet("subject", &key, label, *n))
                    })
                    .take(20)
                    .collect();
                // Days, newest first: a histogram whose bars pick that day.
                let most = results.facets.days.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
                let days: Vec<karavan_web::Value> = results
                    .facets
                    .days
                    .iter()
                    .rev()
                    .take(31)
                    .map(|(start, n)| {
                        let day = Timestamp(*start).to_rfc3339().chars().take(10).collect::<String>();
                        let mut pairs: Vec<(String, String)> =
                            search_pairs.iter().filter(|(k, _)| k != "from" && k != "to").cloned().collect();
                        if !pairs.iter().any(|(k, _)| k == "q") {
                            pairs.insert(0, ("q".to_string(), String::new()));
                        }
                        pairs.push(("from".to_string(), day.clone()));
                        pairs.push(("to".to_string(), day.clone()));
                        context! {
                            label => karavan_web::format::date(locale, *start), count => *n,
                            width => (*n * 10 / most).max(1) * 10, href => format!("/search{}", encode_query(&pairs)),
                            current => value("from") == day && value("to") == day,
                        }
                    })
                    .collect();
                facets = context! {
                    member => member_facets, language => language_facets, subject => subject_facets, days => days,
                };
            }
            Err(api_error) => error = Some(api_error_text(&state, locale, &api_error)),
        }
    }
    // The filters in use, each with a link that removes it.
    let topic_name = |key: &str| {
        karavan_web::topics::topic_code(key)
            .map(|code| karavan_web::topics::name(state.pages().localizer(), locale, code))
    };
    let active: Vec<karavan_web::Value> = ["member", "lang", "subject", "from", "to"]
        .iter()
        .filter(|name| !value(name).is_empty())
        .map(|name| {
            let shown = match *name {
                "member" => names.get(&value(name)).cloned().unwrap_or_else(|| value(name)),
                "subject" => topic_name(&value(name)).unwrap_or_else(|| value(name)),
                _ => value(name),
            };
            let label = match *name {
                "from" => format!("{} {shown}", state.pages().localizer().message(locale, "search-from", &[])),
                "to" => format!("{} {shown}", state.pages().localizer().message(locale, "search-to", &[])),
                _ => shown,
            };
            context! { label => label, href => with(name, None) }
        })
        .collect();
    let all_members: Vec<karavan_web::Value> =
        members.iter().map(|m| context! { id => m.id.as_str(), name => m.name.as_str() }).collect();
    let member = session.user.member.clone();
    let saved: Vec<karavan_web::Value> = match state.blocking(move |store| store.saved_searches(&member)).await {
        Ok(saved) => saved
            .iter()
            .map(|s| {
                let query: String =
                    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&s.query).finish();
                let mode = s.query.iter().find(|(k, _)| k == "mode").map(|(_, v)| v.clone());
                context! { id => s.id.as_str(), name => s.name.clone(), query => query, mode => mode }
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let context = context! {
        saved => saved, members => all_members, member => value("member"), subject => value("subject"),
        topics => topic_options(&state, locale), from => value("from"),
        custom_subject => Some(value("subject")).filter(|s| !s.is_empty() && !s.starts_with("medtop:")), to => value("to"), active => active,
        user => signed_in(&session), csrf => session.csrf.clone(), q => q, lang => value("lang"), sort => sort,
        mode => if mode.is_empty() { "keyword".to_string() } else { mode.clone() },
        searched => searched, error => error, hits => hits, total => karavan_web::format::number(locale, total),
        count => total, facets => facets, next_page => next_page,
        can_edit => session.user.role >= karavan_domain::Role::Editor,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    match state.pages().render("search.html", locale, context) {
        Ok(html) => page(status, html, cookies),
        Err(error) => failure(error),
    }
}

/// An API error as the newsroom says it: its code's message in the UI language, and the API's own
/// detail (which names the field) after it.
pub(crate) fn api_error_text(state: &AppState, locale: &str, error: &crate::error::ApiError) -> String {
    let localizer = state.pages().localizer();
    let said = localizer.message(locale, &format!("error-{}", error.code.as_str()), &[]);
    if error.message.is_empty() {
        said
    } else {
        format!("{said} {}", localizer.message(locale, "error-detail", &[("name", &error.message)]))
    }
}

fn subscription_row(subscription: &karavan_store::Subscription) -> karavan_web::Value {
    let query: Vec<String> = subscription.spec.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    context! {
        id => subscription.id.as_str(),
        name => subscription.spec.name.clone(),
        query => query.join(" "),
        events => subscription.spec.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        webhook => subscription.spec.webhook.as_ref().map(|w| w.url.clone()),
        q => subscription.spec.query.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone()).unwrap_or_default(),
        lang => subscription.spec.query.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.clone()).unwrap_or_default(),
    }
}

/// A search hit or similar item as a row of a page: its id, headline, language and member's name.
fn hit_row(
    version: &karavan_store::StoredVersion,
    names: &std::collections::HashMap<String, String>,
) -> karavan_web::Value {
    let document = &version.document;
    context! {
        id => version.item_id.as_str(),
        headline => crate::search::texts(document, "headlines").into_iter().next().unwrap_or_default(),
        language => document.get("language").and_then(serde_json::Value::as_str).unwrap_or_default(),
        member => names.get(version.owner.as_str()).cloned().unwrap_or_default(),
    }
}

/// What a subscription form asks for, as the use case takes it.
/// An error of a subscription form as an editor should read it: a webhook address the server will
/// not call is said in the UI language, without the API's wording (which names a server option).
fn subscription_error(state: &AppState, locale: &str, form: &Form, error: crate::error::ApiError) -> String {
    let webhook = form.get("webhook");
    let allow_private = state.config().distribution.outbound.allow_private;
    if !webhook.is_empty() && crate::outbound::check_url(&webhook, allow_private).is_err() {
        return state.pages().localizer().message(locale, "subs-webhook-refused", &[]);
    }
    error.message
}

fn subscription_input(form: &Form) -> crate::app::subscriptions::SubscriptionInput {
    let query = ["q", "lang"]
        .into_iter()
        .filter(|name| !form.get(name).is_empty())
        .map(|name| (name.to_string(), form.get(name)))
        .collect();
    let webhook = Some(form.get("webhook"))
        .filter(|url| !url.is_empty())
        .map(|url| crate::app::subscriptions::WebhookInput { url, secret: None });
    crate::app::subscriptions::SubscriptionInput {
        name: form.get("name"),
        query,
        events: Some(form.all("events").map(str::to_string).collect()),
        format: None,
        webhook,
    }
}

/// Renders the subscriptions page with what the member has, and the outcome of a creation.
async fn subscriptions_page(
    state: &AppState,
    session: &Session,
    locale: &str,
    status: StatusCode,
    extra: (Option<karavan_web::Value>, Option<String>, karavan_web::Value),
    cookies: Vec<String>,
) -> Response {
    let member = session.user.member.clone();
    let subscriptions = match state.blocking(move |store| store.subscriptions(&member)).await {
        Ok(found) => found,
        Err(error) => return failure(error.message),
    };
    let (created, error, form) = extra;
    let context = context! {
        user => signed_in(session), csrf => session.csrf.clone(),
        subscriptions => subscriptions.iter().map(subscription_row).collect::<Vec<_>>(),
        can_edit => session.user.role >= karavan_domain::Role::Editor,
        created => created, error => error, form => form,
    };
    match state.pages().render("subscriptions.html", locale, context) {
        Ok(html) => page(status, html, cookies),
        Err(error) => failure(error),
    }
}

/// `GET /subscriptions`: the member's subscriptions and a form to create one.
pub async fn subscriptions_list(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let session = match require_session(&state, &headers, "/subscriptions").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let cookies = remember_language(&state, asked, Some(&session)).await;
    let locale = locale_of(&state, &headers, asked, Some(&session));
    subscriptions_page(&state, &session, locale, StatusCode::OK, (None, None, context! {}), cookies).await
}

/// `POST /subscriptions` (form: csrf, name, q, lang, events…, webhook): creates a subscription, checked
/// exactly as `POST /v1/subscriptions` checks it, and shows its feed URL once.
pub async fn subscriptions_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match require_session(&state, &headers, "/subscriptions").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    let form = Form::read(body);
    if !form.carries(&session) {
        return refusal(&state, &headers, Some(&session), "refused-stale-form");
    }
    let values = context! { name => form.get("name"), q => form.get("q"), lang => form.get("lang"), webhook => form.get("webhook") };
    if session.user.role < karavan_domain::Role::Editor {
        let message = state.pages().localizer().message(locale, "subs-forbidden", &[]);
        return subscriptions_page(
            &state,
            &session,
            locale,
            StatusCode::FORBIDDEN,
            (None, Some(message), values),
            vec![],
        )
        .await;
    }
    let created = crate::app::subscriptions::create(&state, &session.user.member, subscription_input(&form)).await;
    match created {
        Ok(crate::app::subscriptions::Saved { feed_url, secret, .. }) => {
            let created = context! { feed_url => feed_url, secret => secret };
            subscriptions_page(
                &state,
                &session,
                locale,
                StatusCode::CREATED,
                (Some(created), None, context! {}),
                vec![],
            )
            .await
        }
        Err(error) => {
            let status = error.code.status();
            subscriptions_page(
                &state,
                &session,
                locale,
                status,
                (None, Some(subscription_error(&state, locale, &form, error)), values),
                vec![],
            )
            .await
        }
    }
}

/// `GET /subscriptions/{id}`: one subscription and its delivery log.
pub async fn subscription_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    // `?ui=` switches and remembers the UI language here too.
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    if let (Some(asked), Ok(subscription)) = (asked, karavan_domain::SubscriptionId::parse(&id)) {
        let session = session_of(&state, &headers).await;
        let cookies = remember_language(&state, Some(asked), session.as_ref()).await;
        if !cookies.is_empty() {
            return redirect(&format!("/subscriptions/{}", subscription.as_str()), cookies);
        }
    }
    subscription_detail_page(state, headers, id, StatusCode::OK, DetailShown::default()).await
}

/// What a subscription's page shows once, beside the subscription: an error of its form, a new feed
/// URL, a test delivery's outcome.
#[derive(Default)]
struct DetailShown {
    error: Option<String>,
    feed_url: Option<String>,
    tested: Option<karavan_web::Value>,
}

async fn subscription_detail_page(
    state: AppState,
    headers: HeaderMap,
    id: String,
    status: StatusCode,
    shown: DetailShown,
) -> Response {
    let DetailShown { error, feed_url, tested } = shown;
    let session = match require_session(&state, &headers, &format!("/subscriptions/{id}")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    let zone = session.user.time_zone.as_deref();
    let member = session.user.member.clone();
    let found = match karavan_domain::SubscriptionId::parse(&id) {
        Ok(id) => {
            state
                .blocking(move |store| {
                    let Some(subscription) = store.subscription(&member, &id)? else { return Ok(None) };
                    let deliveries = store.deliveries(&subscription.id, now(), None, 100)?;
                    Ok(Some((subscription, deliveries)))
                })
                .await
        }
        Err(_) => Ok(None),
    };
    let (subscription, deliveries) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return match state.pages().render(
                "not_found.html",
                locale,
                context! { user => signed_in(&session), csrf => session.csrf.clone() },
            ) {
                Ok(html) => page(StatusCode::NOT_FOUND, html, vec![]),
                Err(error) => failure(error),
            };
        }
        Err(error) => return failure(error.message),
    };
    let rows: Vec<karavan_web::Value> = deliveries
        .iter()
        .map(|d| {
            let at = d.listed_at.to_rfc3339();
            context! {
                at_text => local_time(locale, zone, &at), at => at, event => d.kind.as_str(), item => d.item_id.as_str(), state => d.state.as_str(),
                attempts => d.attempts.iter().map(|a| context! {
                    status => a.status, latency => format!("{:.1}", a.latency_micros as f64 / 1000.0), error => a.error.clone(),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let can_edit = session.user.role >= karavan_domain::Role::Editor;
    let context = context! {
        user => signed_in(&session), csrf => session.csrf.clone(), subscription => subscription_row(&subscription),
        deliveries => rows, can_edit => can_edit, error => error, feed_url => feed_url, tested => tested,
    };
    match state.pages().render("subscription.html", locale, context) {
        Ok(html) => page(status, html, vec![]),
        Err(error) => failure(error),
    }
}

/// The publishing form's page: the form's values, an error for the whole form, messages at its
/// fields (`invalid`: field name → message), a preview, setting `cookies`.
struct PublishPage {
    status: StatusCode,
    form: karavan_web::Value,
    error: Option<String>,
    invalid: karavan_web::Value,
    preview: Option<karavan_web::Value>,
    /// What an upload published, file by file.
    uploaded: Option<Vec<karavan_web::Value>>,
    cookies: Vec<String>,
}

impl PublishPage {
    fn new(status: StatusCode, form: karavan_web::Value) -> PublishPage {
        PublishPage {
            status,
            form,
            error: None,
            invalid: context! {},
            preview: None,
            uploaded: None,
            cookies: Vec::new(),
        }
    }

    fn render(self, state: &AppState, session: &Session, locale: &str) -> Response {
        let context = context! {
            user => signed_in(session), csrf => session.csrf.clone(), form => self.form, error => self.error,
            invalid => self.invalid, preview => self.preview, topics => topic_options(state, locale),
            uploaded => self.uploaded, max_upload => state.config.max_body_bytes,
            upload_too_large => upload_too_large(state, locale),
            genres => karavan_web::topics::GENRES.iter().map(|genre| context! {
                key => genre, name => state.pages().localizer().message(locale, &format!("genre-{genre}"), &[]),
            }).collect::<Vec<_>>(),
        };
        match state.pages().render("publish.html", locale, context) {
            Ok(html) => page(self.status, html, self.cookies),
            Err(error) => failure(error),
        }
    }
}

/// What the publishing form holds, read from a submitted form or from an item to correct.
#[derive(Debug, Default, serde::Serialize)]
struct PublishFields {
    item: String,
    uri: String,
    headline: String,
    summary: String,
    byline: String,
    slugline: String,
    genre: String,
    place: String,
    language: String,
    urgency: u64,
    /// Media Topic QCodes picked.
    topics: Vec<String>,
    /// Other subjects, comma-separated names.
    subjects: String,
    embargo: String,
    usage: String,
    body: String,
}

impl PublishFields {
    fn from_form(form: &Form) -> PublishFields {
        PublishFields {
            item: form.get("item"),
            uri: form.get("uri"),
            headline: form.get("headline"),
            summary: form.get("summary"),
            byline: form.get("byline"),
            slugline: form.get("slugline"),
            genre: form.get("genre"),
            place: form.get("place"),
            language: form.get("language"),
            urgency: form.get("urgency").parse::<u64>().ok().filter(|u| (1..=9).contains(u)).unwrap_or(4),
            topics: form
                .all("topic")
                .filter_map(karavan_web::topics::topic_code)
                .map(karavan_web::topics::qcode)
                .collect(),
            subjects: form.get("subjects"),
            embargo: form.get("embargo"),
            usage: form.get("usage"),
            body: form.get("body"),
        }
    }

    /// The fields of a stored item, for its correction.
    fn from_item(version: &karavan_store::StoredVersion) -> PublishFields {
        let document = &version.document;
        let text = |key: &str| document.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let body: String = document
            .get("bodies")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("value").and_then(serde_json::Value::as_str))
            .map(karavan_web::sanitize)
            .collect();
        let subjects: Vec<&serde_json::Value> =
            document.get("subjects").and_then(serde_json::Value::as_array).into_iter().flatten().collect();
        let topics: Vec<String> = subjects
            .iter()
            .filter_map(|s| karavan_web::topics::subject_topic(s))
            .map(karavan_web::topics::qcode)
            .collect();
        let others: Vec<String> = subjects
            .iter()
            .filter(|s| karavan_web::topics::subject_topic(s).is_none())
            .filter_map(|s| s.get("name").and_then(serde_json::Value::as_str).map(str::to_string))
            .collect();
        let embargo = text("embargoedUntil");
        PublishFields {
            item: version.item_id.to_string(),
            uri: version.uri.clone(),
            headline: crate::search::texts(document, "headlines").into_iter().next().unwrap_or_default(),
            summary: crate::search::texts(document, "descriptions").into_iter().next().unwrap_or_default(),
            byline: text("by"),
            slugline: text("slugline"),
            genre: document
                .get("genres")
                .and_then(serde_json::Value::as_array)
                .and_then(|genres| genres.iter().find_map(karavan_web::topics::genre_of))
                .unwrap_or_default()
                .to_string(),
            place: text("located"),
            language: text("language"),
            urgency: document.get("urgency").and_then(serde_json::Value::as_u64).unwrap_or(4),
            topics,
            subjects: others.join(", "),
            // `datetime-local` takes "YYYY-MM-DDTHH:MM" (the form says UTC).
            embargo: embargo.get(..16).map(str::to_string).unwrap_or_default(),
            usage: text("usageTerms"),
            body,
        }
    }

    fn value(&self) -> karavan_web::Value {
        karavan_web::Value::from_serialize(self)
    }

    /// The ninjs 3.1 document of the form, over `base` (the item corrected, whose other fields are
    /// kept) or a new one.
    fn document(&self, uri: &str, base: Option<&serde_json::Map<String, serde_json::Value>>) -> serde_json::Value {
        let mut document = serde_json::Map::new();
        if let Some(base) = base {
            document = base.clone();
            // The store numbers the new version and times it.
            for key in ["version", "versionCreated", "pubStatus", "embargoedUntil"] {
                document.remove(key);
            }
        }
        let mut set = |key: &str, value: serde_json::Value| {
            document.insert(key.to_string(), value);
        };
        set("uri", uri.into());
        set("type", document_type(base));
        set("language", self.language.clone().into());
        set("headlines", serde_json::json!([{ "value": self.headline }]));
        set(
            "bodies",
            serde_json::json!([{ "role": "main", "contentType": "text/html", "value": karavan_web::sanitize(&self.body) }]),
        );
        set("urgency", self.urgency.into());
        let mut optional = |key: &str, value: Option<serde_json::Value>| match value {
            Some(value) => {
                document.insert(key.to_string(), value);
            }
            None => {
                document.remove(key);
            }
        };
        let text =
            |value: &str| Some(value.trim()).filter(|v| !v.is_empty()).map(|v| serde_json::Value::String(v.into()));
        optional("descriptions", text(&self.summary).map(|v| serde_json::json!([{ "role": "summary", "value": v }])));
        optional("by", text(&self.byline));
        optional("slugline", text(&self.slugline));
        optional("located", text(&self.place));
        optional("usageTerms", text(&self.usage));
        let genres: Vec<serde_json::Value> = karavan_web::topics::genre(&self.genre).into_iter().collect();
        optional("genres", (!genres.is_empty()).then(|| serde_json::Value::Array(genres)));
        let mut subjects: Vec<serde_json::Value> = self
            .topics
            .iter()
            .filter_map(|key| karavan_web::topics::topic_code(key))
            .filter_map(karavan_web::topics::subject)
            .collect();
        subjects.extend(
            self.subjects.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| serde_json::json!({ "name": s })),
        );
        optional("subjects", (!subjects.is_empty()).then(|| serde_json::Value::Array(subjects)));
        if !self.embargo.is_empty() {
            // `datetime-local` gives "YYYY-MM-DDTHH:MM"; the form says UTC.
            let text = &self.embargo;
            let text =
                if text.len() == 16 { format!("{text}:00Z") } else { format!("{}Z", text.trim_end_matches('Z')) };
            optional("embargoedUntil", Some(text.into()));
        }
        serde_json::Value::Object(document)
    }
}

/// The ninjs type a correction keeps (text for a new item).
fn document_type(base: Option<&serde_json::Map<String, serde_json::Value>>) -> serde_json::Value {
    base.and_then(|b| b.get("type").cloned()).unwrap_or_else(|| "text".into())
}

/// `GET /publish` (`?correct=ITEM_ID` to correct an item): the publishing form.
pub async fn publish_form(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let session = match require_session(&state, &headers, "/publish").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.as_str());
    let cookies = remember_language(&state, asked, Some(&session)).await;
    let locale = locale_of(&state, &headers, asked, Some(&session));
    if session.user.role < karavan_domain::Role::Editor {
        let message = state.pages().localizer().message(locale, "publish-forbidden", &[]);
        let mut page = PublishPage::new(StatusCode::FORBIDDEN, context! {});
        (page.error, page.cookies) = (Some(message), cookies);
        return page.render(&state, &session, locale);
    }
    let Some(correct) = pairs.iter().find(|(k, _)| k == "correct").map(|(_, v)| v.clone()) else {
        // A new item is in the member's first language unless the editor picks another.
        let member = session.user.member.clone();
        let member = state.blocking(move |store| store.member(&member)).await.ok().flatten();
        let languages: Vec<String> =
            member.map(|m| m.languages.iter().map(|l| l.as_str().to_string()).collect()).unwrap_or_default();
        let fields =
            PublishFields { language: form_language(&languages).to_string(), urgency: 4, ..Default::default() };
        let mut page = PublishPage::new(StatusCode::OK, fields.value());
        page.cookies = cookies;
        return page.render(&state, &session, locale);
    };
    match correctable(&state, &session, &correct).await {
        Some(version) => {
            let mut page = PublishPage::new(StatusCode::OK, PublishFields::from_item(&version).value());
            page.cookies = cookies;
            page.render(&state, &session, locale)
        }
        None => match state.pages().render(
            "not_found.html",
            locale,
            context! { user => signed_in(&session), csrf => session.csrf.clone() },
        ) {
            Ok(html) => page(StatusCode::NOT_FOUND, html, vec![]),
            Err(error) => failure(error),
        },
    }
}

/// The current version of one of the member's own items, to correct.
async fn correctable(state: &AppState, session: &Session, id: &str) -> Option<karavan_store::StoredVersion> {
    let viewer = session.user.member.clone();
    let id = karavan_domain::ItemId::parse(id).ok()?;
    match state.blocking(move |store| store.item(&viewer, &id, now())).await.ok()? {
        karavan_store::ItemRead::Visible(version, _) if version.owner == session.user.member => Some(version),
        _ => None,
    }
}

/// `POST /publish` (form: csrf, item and uri for a correction, headline, summary, byline, slugline,
/// genre, place, language, urgency, topic…, subjects, embargo, usage, body; `action=preview` to see it
/// first): builds a ninjs 3.1 item, its body HTML sanitised, and publishes it through the API's path.
/// A correction starts from the item as stored, so fields the form does not show are kept.
pub async fn publish_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match require_session(&state, &headers, "/publish").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    let form = Form::read(body);
    if !form.carries(&session) {
        return refusal(&state, &headers, Some(&session), "refused-stale-form");
    }
    let fields = PublishFields::from_form(&form);
    if session.user.role < karavan_domain::Role::Editor {
        let mut page = PublishPage::new(StatusCode::FORBIDDEN, fields.value());
        page.error = Some(state.pages().localizer().message(locale, "publish-forbidden", &[]));
        return page.render(&state, &session, locale);
    }
    // Required fields, with the message at the field: a headline of more than spaces, and a text.
    let mut invalid = std::collections::BTreeMap::new();
    if fields.headline.trim().is_empty() {
        invalid.insert("headline", state.pages().localizer().message(locale, "publish-headline-required", &[]));
    }
    if visible_text(&karavan_web::sanitize(&fields.body)).trim().is_empty() {
        invalid.insert("body", state.pages().localizer().message(locale, "publish-body-required", &[]));
    }
    if !invalid.is_empty() {
        let mut page = PublishPage::new(StatusCode::UNPROCESSABLE_ENTITY, fields.value());
        page.invalid = karavan_web::Value::from_serialize(&invalid);
        return page.render(&state, &session, locale);
    }
    // A correction: the item as stored (the member's own), whose URI the new version keeps.
    let base = if fields.item.is_empty() {
        None
    } else {
        match correctable(&state, &session, &fields.item).await {
            Some(version) => Some(version),
            None => return refusal(&state, &headers, Some(&session), "refused-role"),
        }
    };
    let uri = match &base {
        Some(version) => version.uri.clone(),
        None if !fields.uri.is_empty() => fields.uri.clone(),
        None => match crate::subscriptions::random_token("urn:karavan:web:") {
            Ok(uri) => uri,
            Err(error) => return failure(error.message),
        },
    };
    let document = fields.document(&uri, base.as_ref().map(|v| &v.document));
    if form.get("action") == "preview" {
        // The item as partners will see it, not published; the form keeps every field.
        let shown = document.as_object().cloned().unwrap_or_default();
        let preview = context! {
            headline => fields.headline.clone(),
            summary => Some(fields.summary.clone()).filter(|s| !s.is_empty()),
            byline => Some(fields.byline.clone()).filter(|s| !s.is_empty()),
            language => fields.language.clone(),
            body => karavan_web::safe(body_html(&shown)),
            subjects => shown.get("subjects").and_then(serde_json::Value::as_array).into_iter().flatten()
                .filter_map(|s| subject_name(&state, locale, s)).collect::<Vec<_>>(),
        };
        let mut page = PublishPage::new(StatusCode::OK, fields.value());
        page.preview = Some(preview);
        return page.render(&state, &session, locale);
    }
    let owner = session.user.member.clone();
    let original = document.to_string();
    // The form becomes a ninjs 3.1 document, read and stored exactly as an API publish is.
    let read =
        move || crate::publish::new_version(&owner, &document, original, Some(karavan_ninjs::NinjsVersion::V3_1));
    let published = crate::app::publishing::read_and_publish(&state, read).await;
    match published {
        Ok(outcome) => redirect(&format!("/items/{}", outcome.stored().item_id), vec![]),
        Err(error) => {
            let mut page = PublishPage::new(error.code.status(), fields.value());
            page.error = Some(api_error_text(&state, locale, &error));
            page.render(&state, &session, locale)
        }
    }
}

/// The most files one upload takes.
const MAX_UPLOAD_FILES: usize = 20;

/// `POST /publish/upload` (multipart: csrf, files…): publishes every item of each ninjs or NewsML-G2
/// file (or NewsML 1, RSS, Atom) as the API's import reads them: a file is read whole before anything of
/// it is stored, so a bad item refuses its file (said with the file's name), not the others. The
/// upload as a whole is bounded by the server's body limit.
pub async fn publish_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let session = match require_session(&state, &headers, "/publish").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    let localizer = state.pages().localizer();
    let mut csrf = String::new();
    let mut files: Vec<(String, Bytes)> = Vec::new();
    let mut unreadable = None;
    if let Ok(mut multipart) = multipart {
        loop {
            match multipart.next_field().await {
                Ok(Some(field)) => match field.name() {
                    Some("csrf") => csrf = field.text().await.unwrap_or_default(),
                    Some("files") if files.len() < MAX_UPLOAD_FILES => {
                        let name = field.file_name().unwrap_or("file").chars().take(200).collect::<String>();
                        match field.bytes().await {
                            Ok(bytes) if !bytes.is_empty() => files.push((name, bytes)),
                            Ok(_) => {}
                            Err(error) => {
                                unreadable = Some(error.body_text());
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(error) => {
                    unreadable = Some(error.body_text());
                    break;
                }
            }
        }
    }
    if csrf != session.csrf {
        return refusal(&state, &headers, Some(&session), "refused-stale-form");
    }
    if session.user.role < karavan_domain::Role::Editor {
        return refusal(&state, &headers, Some(&session), "refused-role");
    }
    let mut uploaded: Vec<karavan_web::Value> = Vec::new();
    let mut failed = false;
    if let Some(error) = unreadable {
        let error = crate::error::ApiError::new(crate::error::ErrorCode::InvalidRequest, error);
        uploaded.push(context! { name => "", error => api_error_text(&state, locale, &error) });
        failed = true;
    }
    for (name, bytes) in files {
        let owner = session.user.member.clone();
        let read = state.compute(move || crate::import::read_document(&owner, &bytes)).await;
        let outcome = match read.and_then(|read| read) {
            Ok(versions) => crate::app::publishing::publish_all(&state, versions).await.map(|stored| stored.len()),
            Err(error) => Err(error),
        };
        uploaded.push(match outcome {
            Ok(count) => {
                let said = localizer.message(locale, "publish-upload-done", &[("count", &count.to_string())]);
                context! { name => name, said => said }
            }
            Err(error) => {
                failed = true;
                let said = localizer.message(locale, "publish-upload-failed", &[("name", &name)]);
                context! { name => name, said => said, error => api_error_text(&state, locale, &error) }
            }
        });
    }
    let member = session.user.member.clone();
    let member = state.blocking(move |store| store.member(&member)).await.ok().flatten();
    let languages: Vec<String> =
        member.map(|m| m.languages.iter().map(|l| l.as_str().to_string()).collect()).unwrap_or_default();
    let fields = PublishFields { language: form_language(&languages).to_string(), urgency: 4, ..Default::default() };
    let status = if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let mut page = PublishPage::new(status, fields.value());
    page.uploaded = Some(uploaded);
    page.render(&state, &session, locale)
}

/// The publishing form's language for a member's languages: the first one the form offers (Uzbek in
/// its Latin script), English when it offers none of them.
fn form_language(languages: &[String]) -> &'static str {
    const OFFERED: [&str; 9] = ["zh", "ru", "kk", "ky", "tg", "tk", "uz-Latn", "uz-Cyrl", "en"];
    languages
        .iter()
        .find_map(|language| {
            let language = language.to_ascii_lowercase();
            let wanted = match language.split(['-', '_']).next().unwrap_or_default() {
                "uz" if language.contains("cyrl") => "uz-Cyrl",
                "uz" => "uz-Latn",
                primary => primary,
            };
            OFFERED.iter().copied().find(|offered| offered.eq_ignore_ascii_case(wanted))
        })
        .unwrap_or("en")
}

/// The text of sanitised HTML, without its tags (to tell an empty body).
fn visible_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
}

/// `POST /items/{id}/kill` (form: csrf, reason): kills one of the member's items.
pub async fn item_kill(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session =
        match form_session(&state, &headers, &format!("/items/{id}"), &form, karavan_domain::Role::Editor).await {
            Ok(session) => session,
            Err(response) => return response,
        };
    let Ok(item_id) = karavan_domain::ItemId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such item").into_response();
    };
    // A kill asks once more, with its reason (partners read it) required.
    let confirm = Confirm {
        action: format!("/items/{id}/kill"),
        question: "confirm-kill",
        button: "publish-kill",
        back: format!("/items/{id}"),
        input: Some(("reason", "publish-kill-reason", "confirm-kill-reason-required")),
    };
    if let Some(ask) = unconfirmed(&state, &headers, &session, &form, confirm) {
        return ask;
    }
    let reason = Some(form.get("reason")).filter(|r| !r.is_empty());
    match crate::app::publishing::kill(&state, &session.user.member, item_id, reason).await {
        Ok(_) => redirect(&format!("/items/{id}"), vec![]),
        Err(error) => (error.code.status(), error.message).into_response(),
    }
}

/// `POST /search/save` (form: csrf, name, q, lang, sort, member, subject, from, to, mode): saves the
/// search for the user's member, with its ranking mode; days are kept as the page's dates.
pub async fn search_save(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/search", &form, karavan_domain::Role::Editor).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let mut pairs: Vec<(String, String)> = SEARCH_PARAMETERS
        .iter()
        .filter(|name| !form.get(name).is_empty())
        .map(|name| (name.to_string(), form.get(name)))
        .collect();
    // The words may be empty (a browse by filters); a keyword mode is the default and not kept.
    pairs.retain(|(k, v)| !(k == "mode" && v == "keyword"));
    let back = encode_query(&pairs);
    // A saved search is run by the API too: its days become times there.
    let stored: Vec<(String, String)> = pairs
        .iter()
        .map(|(key, value)| match (key.as_str(), day_start(value)) {
            ("from", Some(start)) => (key.clone(), Timestamp(start).to_rfc3339()),
            ("to", Some(start)) => (key.clone(), Timestamp(start + 24 * 3_600_000_000 - 1).to_rfc3339()),
            _ => (key.clone(), value.clone()),
        })
        .collect();
    match crate::app::saved_searches::save(&state, &session.user.member, &form.get("name"), stored).await {
        Ok(_) => redirect(&format!("/search{back}"), vec![]),
        Err(error) => {
            let locale = locale_of(&state, &headers, None, Some(&session));
            let text = api_error_text(&state, locale, &error);
            said_page(&state, &headers, Some(&session), error.code.status(), ("error-title", text))
        }
    }
}

/// `POST /search/saved/{id}/delete` (form: csrf, confirm): deletes one of the member's saved
/// searches, after a confirmation step.
pub async fn search_saved_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(&state, &headers, "/search", &form, karavan_domain::Role::Editor).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(saved_id) = karavan_domain::SavedSearchId::parse(&id) else {
        return redirect("/search", vec![]);
    };
    let confirm = Confirm {
        action: format!("/search/saved/{}/delete", saved_id.as_str()),
        question: "confirm-delete-saved-search",
        button: "search-saved-delete",
        back: "/search".to_string(),
        input: None,
    };
    let (core, member) = (state.clone(), session.user.member.clone());
    delete_after_confirming(&state, &headers, &session, &form, confirm, "/search", || async move {
        crate::app::saved_searches::delete(&core, &member, &saved_id).await
    })
    .await
}

/// A deletion behind its confirmation step: asks first, then deletes; deleted or already gone, the
/// user goes to `done`.
async fn delete_after_confirming<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    form: &Form,
    confirm: Confirm<'_>,
    done: &str,
    delete: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = crate::error::ApiResult<()>>,
{
    if let Some(ask) = unconfirmed(state, headers, session, form, confirm) {
        return ask;
    }
    match delete().await {
        Ok(()) => redirect(done, vec![]),
        Err(error) if error.code == crate::error::ErrorCode::NotFound => redirect(done, vec![]),
        Err(error) => failure(error.message),
    }
}

/// `POST /subscriptions/{id}` (the edit form): changes the subscription, checked like
/// `PUT /v1/subscriptions/{id}` (the webhook keeps its secret).
pub async fn subscription_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(
        &state,
        &headers,
        &format!("/subscriptions/{id}"),
        &form,
        karavan_domain::Role::Editor,
    )
    .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(subscription_id) = karavan_domain::SubscriptionId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such subscription").into_response();
    };
    let updated =
        crate::app::subscriptions::update(&state, &session.user.member, &subscription_id, subscription_input(&form))
            .await;
    match updated {
        Ok(_) => redirect(&format!("/subscriptions/{id}"), vec![]),
        Err(error) if error.code == crate::error::ErrorCode::NotFound => {
            (StatusCode::NOT_FOUND, "no such subscription").into_response()
        }
        Err(error) => {
            let (status, locale) = (error.code.status(), locale_of(&state, &headers, None, Some(&session)));
            let message = subscription_error(&state, locale, &form, error);
            let shown = DetailShown { error: Some(message), ..Default::default() };
            subscription_detail_page(state, headers, id, status, shown).await
        }
    }
}

/// `POST /subscriptions/{id}/feed-token`: a new feed URL, shown once (the old one stops working).
pub async fn subscription_rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(
        &state,
        &headers,
        &format!("/subscriptions/{id}"),
        &form,
        karavan_domain::Role::Editor,
    )
    .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(subscription_id) = karavan_domain::SubscriptionId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such subscription").into_response();
    };
    // The old feed address stops working for everyone reading it: asked first.
    let confirm = Confirm {
        action: format!("/subscriptions/{subscription_id}/feed-token"),
        question: "confirm-rotate-feed-token",
        button: "subs-rotate",
        back: format!("/subscriptions/{subscription_id}"),
        input: None,
    };
    if let Some(ask) = unconfirmed(&state, &headers, &session, &form, confirm) {
        return ask;
    }
    match crate::app::subscriptions::rotate_feed_token(&state, &session.user.member, &subscription_id).await {
        Ok(url) => {
            let shown = DetailShown { feed_url: Some(url), ..Default::default() };
            subscription_detail_page(state, headers, id, StatusCode::OK, shown).await
        }
        Err(error) if error.code == crate::error::ErrorCode::NotFound => {
            (StatusCode::NOT_FOUND, "no such subscription").into_response()
        }
        Err(error) => failure(error.message),
    }
}

/// `POST /subscriptions/{id}/test` (form: csrf): sends a signed test event to the webhook now and
/// shows what became of it (status, latency, error) on the subscription's page.
pub async fn subscription_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let path = format!("/subscriptions/{id}");
    let session = match form_session(&state, &headers, &path, &form, karavan_domain::Role::Editor).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(subscription_id) = karavan_domain::SubscriptionId::parse(&id) else {
        return redirect("/subscriptions", vec![]);
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    let tested = crate::app::subscriptions::test_delivery(&state, &session.user.member, &subscription_id).await;
    let shown = match tested {
        Ok(outcome) => {
            let latency = format!("{:.0}", outcome.latency_micros as f64 / 1000.0);
            let status = outcome.status.map(|s| s.to_string()).unwrap_or_else(|| "—".to_string());
            let args = [("status", status.as_str()), ("ms", latency.as_str())];
            let localizer = state.pages().localizer();
            let said = if outcome.delivered() {
                localizer.message(locale, "subs-test-delivered", &args)
            } else {
                localizer.message(locale, "subs-test-failed", &args)
            };
            let tested = context! { delivered => outcome.delivered(), said => said, error => outcome.error };
            DetailShown { tested: Some(tested), ..Default::default() }
        }
        Err(error) if error.code == crate::error::ErrorCode::NotFound => return redirect("/subscriptions", vec![]),
        Err(error) => DetailShown { error: Some(api_error_text(&state, locale, &error)), ..Default::default() },
    };
    subscription_detail_page(state, headers, id, StatusCode::OK, shown).await
}

/// `POST /subscriptions/{id}/delete`.
pub async fn subscription_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = Form::read(body);
    let session = match form_session(
        &state,
        &headers,
        &format!("/subscriptions/{id}"),
        &form,
        karavan_domain::Role::Editor,
    )
    .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(subscription_id) = karavan_domain::SubscriptionId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such subscription").into_response();
    };
    let confirm = Confirm {
        action: format!("/subscriptions/{id}/delete"),
        question: "confirm-delete-subscription",
        button: "subs-delete",
        back: format!("/subscriptions/{id}"),
        input: None,
    };
    let (core, member) = (state.clone(), session.user.member.clone());
    delete_after_confirming(&state, &headers, &session, &form, confirm, "/subscriptions", || async move {
        crate::app::subscriptions::delete(&core, &member, &subscription_id).await
    })
    .await
}

/// What the item page says of a translation, and whether its body is still the original's.
fn translation_context(
    state: &AppState,
    locale: &str,
    translated: &crate::translation::Translated,
) -> (karavan_web::Value, bool) {
    let status = &translated.status;
    let pending = status.body != crate::translation::PartStatus::Done;
    let text = translation_status_text(state, locale, status);
    // The page follows the translation's events until the body is done (not after a failure).
    let stream = pending && status.body != crate::translation::PartStatus::Failed;
    let context = context! {
        language => status.language.clone(),
        from => translated.translation.source_language.clone(),
        model => translated.translation.model.clone(),
        pending => pending,
        failed => status.body == crate::translation::PartStatus::Failed,
        status => text,
        stream => stream,
    };
    (context, pending)
}

/// The line that says where a body's translation stands, in the UI language (`None`: done).
fn translation_status_text(
    state: &AppState,
    locale: &str,
    status: &crate::translation::TranslationStatus,
) -> Option<String> {
    use crate::translation::PartStatus;
    let seconds = status.estimated_seconds.map(|s| s.to_string());
    let (id, seconds) = match (status.body, seconds) {
        (PartStatus::Done, _) => return None,
        (PartStatus::Failed, _) => ("item-body-failed", None),
        (PartStatus::Running, Some(seconds)) => ("item-body-running", Some(seconds)),
        (PartStatus::Running, None) => ("item-body-running-unknown", None),
        (PartStatus::Queued | PartStatus::None, Some(seconds)) => ("item-body-queued", Some(seconds)),
        (PartStatus::Queued | PartStatus::None, None) => ("item-body-queued-unknown", None),
    };
    let args: Vec<(&str, &str)> = seconds.as_deref().map(|s| ("seconds", s)).into_iter().collect();
    Some(state.pages().localizer().message(locale, id, &args))
}

/// The longest a page's translation stream stays open (the browser opens it again if need be).
const TRANSLATION_STREAM_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// `GET /items/{id}/translation-events?lang=`: server-sent events for an item page waiting for a
/// body's translation: `status` (`{"text"}`, the status line in the UI language) when it changes, and
/// `done` once the body is translated, or `failed`. The store is read after every translation stored
/// and every two seconds in any case (the bus only wakes).
pub async fn translation_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    let Some(session) = session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let pairs = query_pairs(&query);
    let lang = pairs.iter().find(|(k, _)| k == "lang").and_then(|(_, v)| karavan_domain::LanguageTag::parse(v).ok());
    let (Some(lang), Ok(item_id)) = (lang, karavan_domain::ItemId::parse(&id)) else {
        return (StatusCode::BAD_REQUEST, "an item id and lang=").into_response();
    };
    let locale = locale_of(&state, &headers, None, Some(&session));
    struct Watch {
        state: AppState,
        viewer: karavan_domain::MemberId,
        item_id: karavan_domain::ItemId,
        lang: String,
        locale: &'static str,
        events: crate::bus::Subscriber,
        last: Option<String>,
        first: bool,
        ended: bool,
        until: tokio::time::Instant,
    }
    let watch = Watch {
        events: state.bus().subscribe(),
        state,
        viewer: session.user.member.clone(),
        item_id,
        lang: lang.as_str().to_string(),
        locale,
        last: None,
        first: true,
        ended: false,
        until: tokio::time::Instant::now() + TRANSLATION_STREAM_FOR,
    };
    let events = futures_util::stream::unfold(watch, |mut w| async move {
        use axum::response::sse::Event;
        loop {
            if w.ended || tokio::time::Instant::now() >= w.until {
                return None;
            }
            if !w.first {
                w.events.drain();
                let translated = |event: &crate::bus::Event| matches!(event, crate::bus::Event::Translated { .. });
                w.events.wait_for(std::time::Duration::from_secs(2), translated).await;
            }
            w.first = false;
            let (viewer, item_id, lang) = (w.viewer.clone(), w.item_id.clone(), w.lang.clone());
            let (translations, models) =
                (std::sync::Arc::clone(w.state.translations()), std::sync::Arc::clone(w.state.language()));
            let status = w
                .state
                .blocking(move |store| {
                    Ok(match store.item(&viewer, &item_id, now())? {
                        karavan_store::ItemRead::Visible(version, _) => crate::translation::translation_status(
                            store,
                            &translations,
                            &models,
                            &viewer,
                            &version,
                            &lang,
                        )
                        .ok()
                        .flatten(),
                        _ => None,
                    })
                })
                .await;
            let Ok(Some(status)) = status else { return None };
            let (kind, text) = match status.body {
                crate::translation::PartStatus::Done => ("done", String::new()),
                crate::translation::PartStatus::Failed => {
                    ("failed", translation_status_text(&w.state, w.locale, &status).unwrap_or_default())
                }
                _ => ("status", translation_status_text(&w.state, w.locale, &status).unwrap_or_default()),
            };
            w.ended = kind != "status";
            if kind == "status" && w.last.as_deref() == Some(text.as_str()) {
                continue;
            }
            w.last = Some(text.clone());
            let event = Event::default().event(kind).data(serde_json::json!({ "text": text }).to_string());
            return Some((Ok::<Event, std::convert::Infallible>(event), w));
        }
    });
    axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

/// `GET /wire/headlines?ids=itm_…,itm_…` (at most 50): the stored machine translations of these
/// items' headlines into the UI language, for live wire rows that arrived in another language
/// (`{"headlines": {"itm_…": {"headline", "model", "language"}}}`; an item the user may not see, or
/// without a translation yet, is left out). Nothing is translated on the request.
pub async fn wire_headlines(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let Some(session) = session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    let pairs = query_pairs(&query);
    let ids: Vec<karavan_domain::ItemId> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|id| karavan_domain::ItemId::parse(id.trim()).ok())
        .take(50)
        .collect();
    let locale = locale_of(&state, &headers, None, Some(&session)).to_string();
    let viewer = session.user.member.clone();
    let models = std::sync::Arc::clone(state.language());
    let found = state
        .blocking(move |store| {
            let at = now();
            let mut versions = Vec::new();
            for id in &ids {
                if let karavan_store::ItemRead::Visible(version, _) = store.item(&viewer, id, at)? {
                    versions.push(version);
                }
            }
            let listed: Vec<&karavan_store::StoredVersion> = versions.iter().collect();
            let translated = crate::translation::listed_headlines(store, &models, &viewer, &listed, &locale)?;
            let mut out = serde_json::Map::new();
            for version in &versions {
                if let Some((headline, model)) = translated.get(&version.seq) {
                    out.insert(
                        version.item_id.to_string(),
                        serde_json::json!({ "headline": headline, "model": model, "language": locale }),
                    );
                }
            }
            Ok(out)
        })
        .await;
    match found {
        Ok(found) => {
            let mut response = axum::Json(serde_json::json!({ "headlines": found })).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => failure(error.message),
    }
}

/// `GET /wire/stream`: the live wire (server-sent events) of the signed-in user's member.
pub async fn wire_stream(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let Some(session) = session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    match crate::stream::stream_for(state, session.user.member.clone(), &headers, query).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `GET /assets/{file}`: the embedded stylesheet (and later scripts).
pub async fn assets(Path(file): Path<String>) -> Response {
    match karavan_web::asset(&file) {
        Some((kind, body)) => {
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message id the newsroom's Rust code names (message families built from values included)
    /// exists in every locale: a missing UI string, error message or empty state fails here.
    #[test]
    fn every_message_the_code_names_is_in_every_locale() {
        let localizer = karavan_web::Localizer::load().unwrap();
        let mut named: Vec<String> =
            crate::error::ErrorCode::ALL.iter().map(|code| format!("error-{}", code.as_str())).collect();
        // Literal ids in the newsroom's handlers: quoted words of the UI's message families.
        const FAMILIES: [&str; 16] = [
            "nav-", "wire-", "item-", "search-", "subs-", "publish-", "admin-", "confirm-", "refused-", "error-",
            "filter-", "pane-", "topic-", "genre-", "feed-", "state-",
        ];
        for source in [include_str!("web.rs"), include_str!("web_admin.rs")] {
            for literal in source.split('"').skip(1).step_by(2) {
                let id_like = literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if id_like && FAMILIES.iter().any(|f| literal.starts_with(f)) && !literal.ends_with('-') {
                    named.push(literal.to_string());
                }
            }
        }
        assert!(named.len() > 40, "the scan finds the ids ({})", named.len());
        for (code, _) in karavan_web::LOCALES {
            let ids = localizer.ids(code);
            let missing: Vec<&String> = named.iter().filter(|id| !ids.contains(id)).collect();
            assert!(missing.is_empty(), "locale {code} lacks {missing:?}");
        }
    }

    #[test]
    fn wire_filters_read_what_they_can_and_keep_it_in_the_url() {
        let pairs = [
            ("member", "mbr_0123456789abcdef"),
            ("lang", "kk"),
            ("subject", "medtop:04000000"),
            ("day", "2026-12-07"),
            ("tz", "-300"),
            ("urgency", "1-2"),
        ];
        let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()).unwrap_or_default();
        let filters = WireFilters::read(&value, None);
        let mut list = karavan_store::ListQuery::newest(50);
        filters.apply(&mut list);
        assert_eq!(list.languages, ["kk"]);
        assert_eq!(list.subjects, ["medtop:04000000"]);
        assert_eq!(list.urgency, Some((1, 2)));
        // Almaty's midnight (UTC+5) is 19:00 UTC the day before.
        assert_eq!(list.from.unwrap().to_rfc3339(), "2026-12-06T19:00:00Z");
        assert_eq!(list.to.unwrap().micros() - list.from.unwrap().micros(), 24 * 3_600_000_000 - 1);
        assert!(filters.pairs().iter().any(|(k, v)| k == "day" && v == "2026-12-07"));
        assert!(!filters.stream_pairs().iter().any(|(k, _)| k == "day"), "the live stream has no day");
        // Bad values are left out, not refused.
        let bad = |name: &str| match name {
            "lang" => "not a language!".to_string(),
            "day" => "yesterday".to_string(),
            "urgency" => "12".to_string(),
            _ => String::new(),
        };
        let filters = WireFilters::read(&bad, None);
        assert!(filters.pairs().is_empty());
    }
}
