//! Coverage analytics: how many items the caller may see, in a time window, by agency, language,
//! subject or day; counted from the caller's own wire (the visibility rule), so that no count tells of
//! an item the caller may not see.

use std::collections::HashMap;

use karavan_domain::{MemberId, Timestamp};
use karavan_store::{ListQuery, Page, Store};

use crate::error::ApiError;

/// The most items one answer counts (the newest of the window); `truncated` says when there were more.
pub const MAX_COUNTED: usize = 50_000;

/// What items are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Member,
    Language,
    Subject,
    /// The UTC day of `versionCreated`.
    Day,
    /// The countries named in its headline and text (an item may count for several, or none).
    Country,
}

impl By {
    pub fn parse(text: &str) -> Result<By, ApiError> {
        match text {
            "member" => Ok(By::Member),
            "language" => Ok(By::Language),
            "subject" => Ok(By::Subject),
            "day" => Ok(By::Day),
            "country" => Ok(By::Country),
            other => Err(ApiError::invalid(format!("by: {other:?} is not member, language, subject, day or country"))),
        }
    }
}

/// Counts by key, and whether the window held more items than were counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub buckets: Vec<(String, u64)>,
    pub counted: usize,
    pub truncated: bool,
}

/// The keys an item counts under.
fn keys(version: &karavan_store::StoredVersion, by: By) -> Vec<String> {
    let document = &version.document;
    match by {
        By::Member => vec![version.owner.to_string()],
        By::Language => vec![document.get("language").and_then(serde_json::Value::as_str).unwrap_or("und").to_string()],
        By::Subject => document
            .get("subjects")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|subject| {
                let uri = subject.get("uri").and_then(serde_json::Value::as_str);
                let code = uri
                    .and_then(|u| u.strip_prefix("http://cv.iptc.org/newscodes/mediatopic/"))
                    .map(|c| format!("medtop:{c}"));
                code.or_else(|| uri.map(str::to_string))
                    .or_else(|| subject.get("name").and_then(serde_json::Value::as_str).map(str::to_string))
            })
            .collect(),
        By::Day => {
            let at = super::item_text(version).at;
            vec![Timestamp(at).to_rfc3339().chars().take(10).collect()]
        }
        By::Country => match crate::countries::countries() {
            Ok(countries) => {
                let text = super::item_text(version);
                countries.found(text.language.as_deref(), &format!("{}\n{}", text.headline, text.text))
            }
            Err(_) => Vec::new(),
        },
    }
}

/// The caller's coverage in `[from, to]`, by `by`: largest first (days in order).
pub fn coverage(
    store: &dyn Store,
    viewer: &MemberId,
    from: Timestamp,
    to: Timestamp,
    by: By,
    now: Timestamp,
) -> Result<Coverage, ApiError> {
    if by == By::Country {
        crate::countries::countries().map_err(|error| {
            ApiError::invalid(format!(
                "by: country needs Debian's iso-codes (apt-get install iso-codes), which this server lacks: {error}"
            ))
        })?;
    }
    let mut query = ListQuery::newest(1000);
    query.from = Some(from);
    query.to = Some(to);
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut counted = 0;
    let truncated = loop {
        let listed = store.list(viewer, &query, now)?;
        for entry in &listed.entries {
            for key in keys(&entry.version, by) {
                *counts.entry(key).or_default() += 1;
            }
        }
        counted += listed.entries.len();
        match listed.next {
            Some(_) if counted >= MAX_COUNTED => break true,
            Some(next) => query.page = Page::NewestFirst(Some(next)),
            None => break false,
        }
    };
    let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
    if by == By::Day {
        buckets.sort();
    } else {
        buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    Ok(Coverage { buckets, counted, truncated })
}
