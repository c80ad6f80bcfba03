//! The web newsroom's stories: `/stories` (the stories the editor's agency may see, by newest
//! activity, size or growth, filtered by language or agency) and `/stories/{id}` (one story compared
//! across agencies: who reported it, when, in which languages, each agency's headline in the UI
//! language where a translation is stored, and the timeline). Both read through `stories::view`, so a
//! story shows only the items the agency may see.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use karavan_domain::{MemberId, StoryId, Timestamp};
use karavan_store::Session;
use karavan_web::context;

use crate::stories::view::{self, Found, Sort, StoryListQuery, StoryView};
use crate::web::{
    encode_query, failure, locale_of, page, query_pairs, redirect, remember_language, require_session, signed_in,
};
use crate::{AppState, now};

/// Stories per page.
const PAGE: u32 = 30;

/// The page for a story that does not exist for this agency.
fn not_found(state: &AppState, session: &Session, locale: &str) -> Response {
    let context = context! { user => signed_in(session), csrf => session.csrf.clone() };
    match state.pages().render("not_found.html", locale, context) {
        Ok(html) => page(StatusCode::NOT_FOUND, html, vec![]),
        Err(error) => failure(error),
    }
}

/// Headlines of the stories' items in `locale` where a translation is stored: by version seq.
fn translated(
    store: &dyn karavan_store::Store,
    models: &crate::language::LanguageModels,
    viewer: &MemberId,
    stories: &[StoryView],
    all_items: bool,
    locale: &str,
) -> karavan_store::Result<HashMap<i64, (String, String)>> {
    let versions: Vec<&karavan_store::StoredVersion> = if all_items {
        stories.iter().flat_map(|s| s.items.iter().map(|i| &i.version)).collect()
    } else {
        stories.iter().map(|s| &s.title().version).collect()
    };
    crate::translation::listed_headlines(store, models, viewer, &versions, locale)
}

/// A story's title as the page shows it: the headline (translated where stored), its language, and
/// the model when machine-translated.
fn title(story: &StoryView, headlines: &HashMap<i64, (String, String)>, locale: &str) -> karavan_web::Value {
    let item = story.title();
    match headlines.get(&item.version.seq) {
        Some((headline, model)) => context! {
            text => headline.clone(), language => locale, model => model.clone(), original => item.headline.clone(),
        },
        None => context! { text => item.headline.clone(), language => item.language.clone() },
    }
}

fn rfc3339(micros: i64) -> String {
    Timestamp(micros).to_rfc3339()
}

/// `GET /stories` (`sort=activity|size|growth`, `lang=`, `member=`, `cursor=`).
pub async fn stories_page(State(state): State<AppState>, headers: HeaderMap, query: RawQuery) -> Response {
    let session = match require_session(&state, &headers, "/stories").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(&query);
    let value =
        |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let asked = Some(value("ui")).filter(|v| !v.is_empty());
    let cookies = remember_language(&state, asked.as_deref(), Some(&session)).await;
    let locale = locale_of(&state, &headers, asked.as_deref(), Some(&session));
    let zone = session.user.time_zone.clone();
    let sort = match value("sort").as_str() {
        "size" => Sort::Size,
        "growth" => Sort::Growth,
        _ => Sort::Activity,
    };
    let sort_name = match sort {
        Sort::Activity => "activity",
        Sort::Size => "size",
        Sort::Growth => "growth",
    };
    let lang = Some(value("lang")).filter(|l| karavan_domain::LanguageTag::parse(l).is_ok());
    let member = MemberId::parse(&value("member")).ok();
    let cursor = Some(value("cursor")).filter(|c| !c.is_empty() && c.len() <= 100);
    let query = StoryListQuery {
        limit: PAGE,
        cursor: cursor.clone(),
        languages: lang.iter().cloned().collect(),
        member: member.clone(),
        subjects: Vec::new(),
        from: None,
        to: None,
        sort,
    };
    let (viewer, models, store) =
        (session.user.member.clone(), Arc::clone(state.language()), Arc::clone(state.store()));
    let locale_owned = locale.to_string();
    let loaded = state
        .compute(move || {
            let store = store.as_ref();
            let listed = match view::list(store, &viewer, &query, now()) {
                Ok(listed) => listed,
                // A stale or edited cursor starts from the newest again.
                Err(_) => view::list(store, &viewer, &StoryListQuery { cursor: None, ..query }, now())?,
            };
            let headlines = translated(store, &models, &viewer, &listed.stories, false, &locale_owned)?;
            let members = store.members()?;
            Ok::<_, crate::error::ApiError>((listed, headlines, members))
        })
        .await;
    let (listed, headlines, members) = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(error)) | Err(error) => return failure(error.message),
    };
    let names = crate::wire::member_names(&members);
    let local = |micros: i64| crate::web::local_time(locale, zone.as_deref(), &rfc3339(micros));
    let stories: Vec<karavan_web::Value> = listed
        .stories
        .iter()
        .map(|story| {
            context! {
                id => story.id.as_str(), title => title(story, &headlines, locale), size => story.items.len(),
                agencies => story.members().iter().map(|m| names.get(m.as_str()).cloned().unwrap_or_default()).collect::<Vec<_>>(),
                languages => story.languages(), breaking => story.breaking,
                last => rfc3339(story.last_at()), last_text => local(story.last_at()),
            }
        })
        .collect();
    let mut kept: Vec<(String, String)> = Vec::new();
    if sort != Sort::Activity {
        kept.push(("sort".into(), sort_name.into()));
    }
    if let Some(lang) = &lang {
        kept.push(("lang".into(), lang.clone()));
    }
    if let Some(member) = &member {
        kept.push(("member".into(), member.to_string()));
    }
    let sort_link = |name: &str| {
        let mut pairs: Vec<(String, String)> = kept.iter().filter(|(k, _)| k != "sort").cloned().collect();
        if name != "activity" {
            pairs.push(("sort".into(), name.into()));
        }
        format!("/stories{}", encode_query(&pairs))
    };
    let older = listed.next.map(|next| {
        let mut pairs = kept.clone();
        pairs.push(("cursor".into(), next));
        format!("/stories{}", encode_query(&pairs))
    });
    let context = context! {
        user => signed_in(&session), csrf => session.csrf.clone(), stories => stories,
        sort => sort_name, lang => lang, member => member.as_ref().map(|m| m.to_string()),
        members => members.iter().map(|m| context! { id => m.id.as_str(), name => m.name.as_str() }).collect::<Vec<_>>(),
        sorts => ["activity", "size", "growth"].iter().map(|name| context! { name => name, href => sort_link(name) }).collect::<Vec<_>>(),
        older => older, paged => cursor.is_some(),
        newest => format!("/stories{}", encode_query(&kept)), filtered => lang.is_some() || member.is_some(),
    };
    match state.pages().render("stories.html", locale, context) {
        Ok(html) => page(StatusCode::OK, html, cookies),
        Err(error) => failure(error),
    }
}

/// `GET /stories/{id}`: one story compared across agencies; a merged story's id redirects.
pub async fn story_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: RawQuery,
) -> Response {
    let session = match require_session(&state, &headers, &format!("/stories/{id}")).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(&query);
    let asked = pairs.iter().find(|(k, _)| k == "ui").map(|(_, v)| v.to_string());
    let cookies = remember_language(&state, asked.as_deref(), Some(&session)).await;
    let locale = locale_of(&state, &headers, asked.as_deref(), Some(&session));
    let Ok(story_id) = StoryId::parse(&id) else { return not_found(&state, &session, locale) };
    let (viewer, models) = (session.user.member.clone(), Arc::clone(state.language()));
    let locale_owned = locale.to_string();
    let loaded = state
        .blocking(move |store| {
            let found = view::story(store, &viewer, &story_id, now())?;
            let (headlines, members) = match &found {
                Found::Story(story) => (
                    translated(store, &models, &viewer, std::slice::from_ref(story.as_ref()), true, &locale_owned)?,
                    store.members()?,
                ),
                _ => (HashMap::new(), Vec::new()),
            };
            Ok((found, headlines, members))
        })
        .await;
    let (found, headlines, members) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return failure(error.message),
    };
    let story = match found {
        Found::NotFound => return not_found(&state, &session, locale),
        Found::Moved(into) => return redirect(&format!("/stories/{into}"), cookies),
        Found::Story(story) => story,
    };
    let names = crate::wire::member_names(&members);
    let zone = session.user.time_zone.as_deref();
    let local = |micros: i64| crate::web::local_time(locale, zone, &rfc3339(micros));
    let name = |member: &MemberId| names.get(member.as_str()).cloned().unwrap_or_default();
    // The timeline, oldest first: each item with its agency, language and headline.
    let mut timeline: Vec<&view::StoryItem> = story.items.iter().collect();
    timeline.sort_by_key(|i| (i.at, i.version.seq));
    let first = timeline.first().copied();
    let items: Vec<karavan_web::Value> = timeline
        .iter()
        .map(|item| {
            let translation = headlines.get(&item.version.seq);
            context! {
                id => item.version.item_id.as_str(), member => name(&item.version.owner),
                language => item.language.clone(), at => rfc3339(item.at), at_text => local(item.at),
                headline => translation.map(|(h, _)| h.clone()).unwrap_or_else(|| item.headline.clone()),
                headline_language => if translation.is_some() { locale.to_string() } else { item.language.clone() },
                model => translation.map(|(_, m)| m.clone()), original => item.headline.clone(),
            }
        })
        .collect();
    let (by_member, by_language) = story.coverage();
    let coverage = by_member
        .iter()
        .map(|(member, count)| {
            let reports: Vec<&&view::StoryItem> = timeline.iter().filter(|i| i.version.owner.as_str() == member).collect();
            let first_report = reports.first();
            let languages: Vec<String> = {
                let mut l: Vec<String> = reports.iter().map(|i| i.language.clone()).collect();
                l.sort();
                l.dedup();
                l
            };
            context! {
                name => names.get(member).cloned().unwrap_or_default(), count => count, languages => languages,
                first => first_report.map(|i| rfc3339(i.at)), first_text => first_report.map(|i| local(i.at)),
                headline => first_report.map(|i| headlines.get(&i.version.seq).map(|(h, _)| h.clone()).unwrap_or_else(|| i.headline.clone())),
                item => first_report.map(|i| i.version.item_id.to_string()),
            }
        })
        .collect::<Vec<_>>();
    let context = context! {
        user => signed_in(&session), csrf => session.csrf.clone(),
        story => context! {
            id => story.id.as_str(), title => title(&story, &headlines, locale), size => story.items.len(),
            breaking => story.breaking, languages => story.languages(),
            agencies => story.members().iter().map(name).collect::<Vec<_>>(),
            first_member => first.map(|i| name(&i.version.owner)),
            first => first.map(|i| rfc3339(i.at)), first_text => first.map(|i| local(i.at)),
        },
        items => items, coverage => coverage,
        languages_coverage => by_language.iter().map(|(language, count)| context! { language => language, count => count }).collect::<Vec<_>>(),
    };
    match state.pages().render("story.html", locale, context) {
        Ok(html) => page(StatusCode::OK, html, cookies),
        Err(error) => failure(error),
    }
}
