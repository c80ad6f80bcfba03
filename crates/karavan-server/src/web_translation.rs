//! The web newsroom's translation settings (`/translation`): the languages the agency reads (items in
//! others are translated into them), its glossaries per language pair, and where its translation
//! queue stands. Changes go through the same use cases and checks as `PUT /v1/me/read-languages` and
//! `PUT /v1/glossaries/{from}/{to}`; every form is CSRF-checked and needs the editor role.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use karavan_domain::Role;
use karavan_store::Session;
use karavan_web::context;

use crate::AppState;
use crate::error::ApiError;
use crate::web::{
    Confirm, Form, api_error_text, failure, form_session, locale_of, page, redirect, signed_in, unconfirmed,
};

/// The languages the settings offer to read (Uzbek in both scripts).
const OFFERED: [&str; 9] = ["zh", "ru", "kk", "ky", "tg", "tk", "uz-Latn", "uz-Cyrl", "en"];

/// A glossary typed in a text area: one `source = target` per line (blank lines skipped). A line
/// without ` = ` is named in the error.
fn read_terms(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut terms = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((source, target)) = line.split_once('=') else {
            return Err(ApiError::invalid(format!(
                "terms: line {} has no \"=\" between the term and its translation",
                n + 1
            )));
        };
        terms.push((source.trim().to_string(), target.trim().to_string()));
    }
    Ok(terms)
}

/// The page: what the agency reads, its glossaries (each editable), the queue, and what a form that
/// failed was given (`kept`: the text areas' values, so nothing typed is lost).
async fn settings_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
    kept: karavan_web::Value,
    cookies: Vec<String>,
) -> Response {
    let locale = locale_of(state, headers, None, Some(session));
    let member = session.user.member.clone();
    let loaded = state
        .blocking(move |store| {
            Ok((store.read_languages(&member)?, store.glossaries(&member)?, store.translation_queue(&member)?))
        })
        .await;
    let (reads, glossaries, queue) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return failure(error.message),
    };
    let translations = std::sync::Arc::clone(state.translations());
    let model = state.compute(move || translations.installed_model()).await.ok().flatten();
    let average = |part| state.translations().average_duration(part).map(|d| format!("{:.1}", d.as_secs_f64()));
    let total = queue.total();
    // A new glossary starts from another language into the first one the agency reads.
    let kept = if kept.get_attr("to").is_ok_and(|to| !to.is_undefined()) {
        kept
    } else {
        let to = reads.first().cloned().unwrap_or_else(|| "en".to_string());
        let from = OFFERED.iter().find(|o| !o.eq_ignore_ascii_case(&to)).copied().unwrap_or("ru");
        context! { from => from, to => to }
    };
    let context = context! {
        user => signed_in(session), csrf => session.csrf.clone(), error => error, kept => kept,
        can_edit => session.user.role >= Role::Editor, model => model,
        read_languages => OFFERED.iter().map(|code| context! {
            code => code, read => reads.iter().any(|r| r.eq_ignore_ascii_case(code)),
        }).collect::<Vec<_>>(),
        others => reads.iter().filter(|r| !OFFERED.iter().any(|o| o.eq_ignore_ascii_case(r))).cloned().collect::<Vec<_>>(),
        offered => OFFERED,
        glossaries => glossaries.iter().filter(|g| !g.terms.is_empty()).map(|g| context! {
            from => g.source_language.clone(), to => g.target_language.clone(), count => g.terms.len(),
            text => g.terms.iter().map(|t| format!("{} = {}", t.source, t.target)).collect::<Vec<_>>().join("\n"),
        }).collect::<Vec<_>>(),
        queue => context! {
            queued => total.queued, running => total.running, done => total.done, failed => total.failed,
            head_queued => queue.head.queued, body_queued => queue.body.queued,
            head_seconds => average(karavan_store::TranslationPart::Head),
            body_seconds => average(karavan_store::TranslationPart::Body),
        },
    };
    match state.pages().render("translation.html", locale, context) {
        Ok(html) => page(status, html, cookies),
        Err(error) => failure(error),
    }
}

/// `GET /translation`.
pub async fn settings(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let session = match crate::web::settings_visitor(&state, &headers, &query, "/translation").await {
        Ok((session, _)) => session,
        Err(response) => return response,
    };
    settings_page(&state, &headers, &session, StatusCode::OK, None, context! {}, Vec::new()).await
}

/// After a change: back to the page, or the page again with what was wrong (and what was typed).
async fn changed(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    outcome: Result<(), ApiError>,
    kept: karavan_web::Value,
) -> Response {
    match outcome {
        Ok(()) => redirect("/translation", vec![]),
        Err(error) => {
            let locale = locale_of(state, headers, None, Some(session));
            let said = api_error_text(state, locale, &error);
            settings_page(state, headers, session, error.code.status(), Some(said), kept, Vec::new()).await
        }
    }
}

/// A settings form of an editor of the agency (CSRF-checked), or the refusal to show.
async fn editor_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Form, Session), Response> {
    let form = Form::read(body);
    let session = form_session(state, headers, "/translation", &form, Role::Editor).await?;
    Ok((form, session))
}

/// `POST /translation/languages` (form: csrf, languages…): the languages the agency reads.
pub async fn set_languages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (form, session) = match editor_form(&state, &headers, body).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let asked: Vec<String> = form.all("languages").map(str::to_string).collect();
    let outcome = async {
        let languages = crate::app::translation::check_read_languages(&asked)?;
        crate::app::translation::set_read_languages(&state, &session.user.member, languages).await.map(|_| ())
    }
    .await;
    changed(&state, &headers, &session, outcome, context! {}).await
}

/// `POST /translation/glossaries` (form: csrf, from, to, terms as `source = target` lines): creates or
/// replaces the agency's glossary for a language pair.
pub async fn set_glossary(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (form, session) = match editor_form(&state, &headers, body).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let (from, to, text) = (form.get("from"), form.get("to"), form.raw("terms"));
    let outcome = async {
        let (from, to) = crate::app::translation::check_pair(&from, &to)?;
        let terms = crate::app::translation::check_terms(&read_terms(&text)?)?;
        crate::app::translation::set_glossary(&state, &session.user.member, from, to, terms).await.map(|_| ())
    }
    .await;
    let kept = context! { from => form.get("from"), to => form.get("to"), terms => text };
    changed(&state, &headers, &session, outcome, kept).await
}

/// `POST /translation/glossaries/{from}/{to}/delete` (form: csrf, confirm): deletes a glossary after a
/// confirmation step.
pub async fn delete_glossary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((from, to)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (form, session) = match editor_form(&state, &headers, body).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Ok((from, to)) = crate::app::translation::check_pair(&from, &to) else {
        return redirect("/translation", vec![]);
    };
    let confirm = Confirm {
        action: format!("/translation/glossaries/{from}/{to}/delete"),
        question: "confirm-delete-glossary",
        button: "translation-glossary-delete",
        back: "/translation".to_string(),
        input: None,
    };
    if let Some(ask) = unconfirmed(&state, &headers, &session, &form, confirm) {
        return ask;
    }
    let outcome = match crate::app::translation::delete_glossary(&state, &session.user.member, from, to).await {
        Err(error) if error.code == crate::error::ErrorCode::NotFound => Ok(()),
        other => other,
    };
    changed(&state, &headers, &session, outcome, context! {}).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glossary_lines_read_as_terms() {
        let terms = read_terms("Astana = Астана\n\n  Toqayev=Тоқаев  \n").unwrap();
        assert_eq!(terms, [("Astana".into(), "Астана".into()), ("Toqayev".into(), "Тоқаев".into())]);
        let error = read_terms("Astana = Астана\nno sign here").unwrap_err();
        assert!(error.message.contains("line 2"), "{}", error.message);
    }
}
