//! The web newsroom's pages and their localisation: server-rendered templates (minijinja, HTML
//! auto-escaped) and every UI string in every member language, as Project Fluent messages; templates,
//! messages and assets are embedded in the binary.
//!
//! Architecture invariant: every message exists in every locale (a test fails otherwise), so a page
//! never falls back to a message id or to another language.

pub mod diff;
pub mod format;
pub mod topics;

use std::sync::Arc;

pub use minijinja::{Value, context};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use minijinja::value::Kwargs;
use minijinja::{Environment, State};
use unic_langid::LanguageIdentifier;

/// Each UI language's name in itself, for the language switch.
pub const LANGUAGE_NAMES: [(&str, &str); 8] = [
    ("en", "English"),
    ("zh", "中文"),
    ("ru", "Русский"),
    ("kk", "Қазақша"),
    ("ky", "Кыргызча"),
    ("tg", "Тоҷикӣ"),
    ("tk", "Türkmençe"),
    ("uz", "Oʻzbekcha"),
];

const TEMPLATES: [(&str, &str); 16] = [
    ("translation.html", include_str!("../templates/translation.html")),
    ("settings.html", include_str!("../templates/settings.html")),
    ("stories.html", include_str!("../templates/stories.html")),
    ("story.html", include_str!("../templates/story.html")),
    ("refused.html", include_str!("../templates/refused.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("admin.html", include_str!("../templates/admin.html")),
    ("publish.html", include_str!("../templates/publish.html")),
    ("subscriptions.html", include_str!("../templates/subscriptions.html")),
    ("subscription.html", include_str!("../templates/subscription.html")),
    ("search.html", include_str!("../templates/search.html")),
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("item.html", include_str!("../templates/item.html")),
    ("not_found.html", include_str!("../templates/not_found.html")),
];

/// Item HTML from a member, made safe to show: an allow-list of tags and attributes (ammonia's), no
/// scripts, styles, event handlers or `javascript:` links; links open with `rel="noopener noreferrer"`.
pub fn sanitize(html: &str) -> String {
    ammonia::clean(html)
}

/// Plain item text as HTML paragraphs, escaped.
pub fn text_to_html(text: &str) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect()
}

/// HTML already made safe (by [`sanitize`] or [`text_to_html`]), to put in a page unescaped.
pub fn safe(html: String) -> Value {
    Value::from_safe_string(html)
}

const ASSETS: [(&str, &str, &str); 2] = [
    ("newsroom.css", "text/css; charset=utf-8", include_str!("../assets/newsroom.css")),
    ("newsroom.js", "text/javascript; charset=utf-8", include_str!("../assets/newsroom.js")),
];

/// The embedded static file at `/assets/{name}`: (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS.iter().find(|(file, _, _)| *file == name).map(|(_, kind, body)| (*kind, *body))
}

/// The templates, with `t(id, arg=value…)` translating into the page's `locale`.
pub struct Pages {
    environment: Environment<'static>,
    localizer: Arc<Localizer>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Pages {
    pub fn load() -> Result<Pages, String> {
        let localizer = Arc::new(Localizer::load()?);
        let mut environment = Environment::new();
        for (name, source) in TEMPLATES {
            environment.add_template(name, source).map_err(|e| format!("template {name}: {e}"))?;
        }
        // A missing value (None) prints nothing rather than "none"; everything else is escaped.
        environment.set_formatter(|out, state, value| {
            if value.is_none() || value.is_undefined() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let messages = Arc::clone(&localizer);
        environment.add_function(
            "t",
            move |state: &State, id: String, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let locale =
                    state.lookup("locale").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "en".into());
                let mut args: Vec<(String, String)> = Vec::new();
                for name in kwargs.args() {
                    let value: Value = kwargs.get(name)?;
                    args.push((name.to_string(), value.to_string()));
                }
                let borrowed: Vec<(&str, &str)> = args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                Ok(messages.message(&locale, &id, &borrowed))
            },
        );
        Ok(Pages { environment, localizer })
    }

    pub fn localizer(&self) -> &Localizer {
        &self.localizer
    }

    /// Renders a page in `locale`; the context's values are escaped as HTML.
    pub fn render(&self, template: &str, locale: &str, context: Value) -> Result<String, String> {
        let page = self.environment.get_template(template).map_err(|e| format!("template {template}: {e}"))?;
        let languages: Vec<Vec<&str>> = LANGUAGE_NAMES.iter().map(|(code, name)| vec![*code, *name]).collect();
        let context = minijinja::context! { locale => locale, languages => languages, ..context };
        page.render(context).map_err(|e| format!("rendering {template}: {e}"))
    }
}

/// The UI languages, in the order the language switch shows them: (code, Fluent source).
pub const LOCALES: [(&str, &str); 8] = [
    ("en", include_str!("../locales/en.ftl")),
    ("zh", include_str!("../locales/zh.ftl")),
    ("ru", include_str!("../locales/ru.ftl")),
    ("kk", include_str!("../locales/kk.ftl")),
    ("ky", include_str!("../locales/ky.ftl")),
    ("tg", include_str!("../locales/tg.ftl")),
    ("tk", include_str!("../locales/tk.ftl")),
    ("uz", include_str!("../locales/uz.ftl")),
];

/// One loaded locale.
pub struct Locale {
    code: &'static str,
    bundle: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locale").field("code", &self.code).finish()
    }
}

/// Every locale, loaded once.
#[derive(Debug)]
pub struct Localizer {
    locales: Vec<Locale>,
}

impl Localizer {
    /// Loads every locale; an error names the locale and what is wrong in it.
    pub fn load() -> Result<Localizer, String> {
        let mut locales = Vec::new();
        for (code, source) in LOCALES {
            let resource = FluentResource::try_new(source.to_string())
                .map_err(|(_, errors)| format!("locale {code}: {errors:?}"))?;
            let language: LanguageIdentifier = code.parse().map_err(|e| format!("locale {code}: {e}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![language]);
            // No bidi isolation marks around arguments: the UI languages are all left-to-right.
            bundle.set_use_isolating(false);
            bundle.add_resource(resource).map_err(|errors| format!("locale {code}: {errors:?}"))?;
            locales.push(Locale { code, bundle });
        }
        Ok(Localizer { locales })
    }

    /// The supported locale for a requested language tag (`kk-KZ` → `kk`, `zh-Hant-TW` → `zh`), if any.
    pub fn supported(&self, tag: &str) -> Option<&'static str> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        self.locales.iter().map(|l| l.code).find(|code| *code == primary)
    }

    /// The best locale for an `Accept-Language` header (by quality, then order), else English.
    pub fn negotiate(&self, accept_language: &str) -> &'static str {
        let mut wanted: Vec<(f32, usize, &str)> = accept_language
            .split(',')
            .enumerate()
            .filter_map(|(index, part)| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let quality = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && quality > 0.0).then_some((quality, index, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanted.iter().find_map(|(_, _, tag)| self.supported(tag)).unwrap_or("en")
    }

    /// A message in a locale, with arguments; a missing message (impossible while the tests pass)
    /// shows its id rather than failing the page.
    pub fn message(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let Some(locale) = self.locales.iter().find(|l| l.code == locale).or_else(|| self.locales.first()) else {
            return id.to_string();
        };
        let Some(pattern) = locale.bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            // A count is a number, so that a message can choose its plural form.
            match value.parse::<i64>() {
                Ok(number) if *name == "count" => fluent_args.set(*name, number),
                _ => fluent_args.set(*name, *value),
            }
        }
        let mut errors = Vec::new();
        locale.bundle.format_pattern(pattern, Some(&fluent_args), &mut errors).into_owned()
    }

    /// The ids of every message of a locale.
    pub fn ids(&self, locale: &str) -> Vec<String> {
        let Some((_, source)) = LOCALES.iter().find(|(code, _)| *code == locale) else {
            return Vec::new();
        };
        source
            .lines()
            .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .filter_map(|line| line.split_once('=').map(|(id, _)| id.trim().to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_in_every_locale_and_formats() {
        let localizer = Localizer::load().unwrap();
        let english = localizer.ids("en");
        assert!(!english.is_empty());
        for (code, _) in LOCALES {
            let mut ids = localizer.ids(code);
            ids.sort();
            let mut expected = english.clone();
            expected.sort();
            let missing: Vec<&String> = expected.iter().filter(|id| !ids.contains(id)).collect();
            let extra: Vec<&String> = ids.iter().filter(|id| !expected.contains(id)).collect();
            assert!(missing.is_empty() && extra.is_empty(), "locale {code}: missing {missing:?}, extra {extra:?}");
            for id in &english {
                let arguments = [
                    ("name", "Aigerim"),
                    ("count", "3"),
                    ("declared", "ru"),
                    ("detected", "kk"),
                    ("confidence", "0.97"),
                    ("seconds", "30"),
                    ("from", "zh"),
                    ("model", "nllb-200-distilled-600M"),
                    ("time", "7 Dec, 18:00"),
                    ("status", "200"),
                    ("ms", "12"),
                    ("head", "0.4"),
                    ("body", "12.5"),
                    ("size", "4 MB"),
                ];
                let text = localizer.message(code, id, &arguments);
                assert!(!text.is_empty() && text != *id, "locale {code}: {id} does not format");
                assert!(!text.contains('{'), "locale {code}: {id} left a placeholder: {text}");
            }
        }
    }

    #[test]
    fn counts_choose_their_plural_form() {
        let localizer = Localizer::load().unwrap();
        assert_eq!(localizer.message("en", "search-results", &[("count", "1")]), "1 result");
        assert_eq!(localizer.message("en", "search-results", &[("count", "3")]), "3 results");
        assert_eq!(localizer.message("en", "search-results", &[("count", "0")]), "0 results");
    }

    #[test]
    fn pages_render_translated_and_escaped() {
        let pages = Pages::load().unwrap();
        let context =
            minijinja::context! { csrf => "c", next => "/", email => "<script>alert(1)</script>", failed => true };
        let kazakh = pages.render("login.html", "kk", context.clone()).unwrap();
        assert!(kazakh.contains("<html lang=\"kk\">") && kazakh.contains("Құпиясөз"), "{kazakh}");
        assert!(kazakh.contains("&lt;script&gt;") && !kazakh.contains("<script>alert"), "values are escaped");
        let english = pages.render("login.html", "en", context).unwrap();
        assert!(english.contains("Wrong email or password."));
        let user = minijinja::context! { name => "Aigerim & Co" };
        let home = pages
            .render(
                "home.html",
                "zh",
                minijinja::context! { user => user, csrf => "c", items => Vec::<u8>::new(), filters => minijinja::context! {} },
            )
            .unwrap();
        assert!(home.contains("当前用户：Aigerim &amp; Co"), "{home}");
        let none =
            pages.render("login.html", "en", minijinja::context! { csrf => "c", next => "/", email => () }).unwrap();
        assert!(!none.to_lowercase().contains("value=\"none\""), "None prints as nothing");
        assert!(asset("newsroom.css").is_some() && asset("newsroom.js").is_some() && asset("../Cargo.toml").is_none());
    }

    #[test]
    fn item_html_is_sanitised() {
        let dirty = r#"<p onclick="x()">Hi <script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">link</a><iframe src="//evil"></iframe><style>body{}</style><b>bold</b></p>"#;
        let clean = sanitize(dirty);
        for forbidden in ["<script", "onerror", "onclick", "javascript:", "<iframe", "<style", "alert(1)"] {
            assert!(!clean.contains(forbidden), "{forbidden} survived: {clean}");
        }
        assert!(clean.contains("<b>bold</b>") && clean.contains("Hi "));
        assert_eq!(text_to_html("a < b\n\nsecond\nline"), "<p>a &lt; b</p><p>second<br>line</p>");
    }

    /// Templates build some message ids from values (`t("role-" ~ user.role)`): every value has one.
    #[test]
    fn every_value_shown_through_a_built_message_id_has_its_message() {
        let localizer = Localizer::load().unwrap();
        let english = localizer.ids("en");
        let families: [(&str, &[&str]); 5] = [
            ("event-", &["publish", "correction", "kill", "embargo_release"]),
            ("right-", &["view", "republish"]),
            ("role-", &["reader", "editor", "admin"]),
            ("state-", &["pending", "delivered", "dead", "withdrawn", "feed", "active", "disabled"]),
            ("admin-state-", &["active", "revoked"]),
        ];
        let topics: Vec<String> = topics::MEDIA_TOPICS.iter().map(|(code, _)| format!("topic-{code}")).collect();
        let genres: Vec<String> = topics::GENRES.iter().map(|genre| format!("genre-{genre}")).collect();
        for id in topics.iter().chain(&genres) {
            assert!(english.contains(id), "no message {id}");
        }
        for (prefix, values) in families {
            for value in values {
                let id = format!("{prefix}{value}");
                assert!(english.contains(&id), "no message {id}");
            }
        }
    }

    #[test]
    fn locales_are_negotiated_from_accept_language() {
        let localizer = Localizer::load().unwrap();
        assert_eq!(localizer.negotiate("kk-KZ,kk;q=0.9,ru;q=0.8"), "kk");
        assert_eq!(localizer.negotiate("de-DE,ru;q=0.5"), "ru");
        assert_eq!(localizer.negotiate("zh-Hant-TW"), "zh");
        assert_eq!(localizer.negotiate("fr, de"), "en");
        assert_eq!(localizer.negotiate("ru;q=0.2, uz;q=0.9"), "uz");
        assert_eq!(localizer.negotiate("ky;q=0, tg"), "tg");
        assert_eq!(localizer.negotiate(""), "en");
        assert_eq!(localizer.message("kk", "sign-in", &[]), "Кіру");
    }
}
