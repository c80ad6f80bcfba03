//! The optional HTTP translation backend: a LibreTranslate server or an OpenAI-compatible chat
//! completions endpoint the operator configures (`--translation-url`, `--translation-api`), used
//! instead of the local model behind the same interface (jobs, cache, glossaries, `?lang=`).
//!
//! Requests go through [`OutboundClient`] (no redirects, bounded answers, timeouts). The endpoint is
//! operator configuration, not member input, so it may be on a private address (a LibreTranslate
//! beside the server is the usual set-up). Glossary terms are substituted by their renderings before
//! the text is sent, and an OpenAI-compatible model is also told them.

use std::time::Duration;

use karavan_lang::Term;
use serde_json::{Value, json};

use crate::outbound::{OutboundClient, OutboundConfig};

/// Which protocol the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpApi {
    /// `POST {url}/translate` with `{q, source, target, format}` → `{translatedText}`.
    LibreTranslate,
    /// `POST {url}/chat/completions` with a system prompt → `choices[0].message.content`.
    OpenAi,
}

impl HttpApi {
    pub fn parse(text: &str) -> Result<HttpApi, String> {
        match text {
            "libretranslate" => Ok(HttpApi::LibreTranslate),
            "openai" => Ok(HttpApi::OpenAi),
            other => Err(format!("{other:?} is not a translation API (libretranslate, openai)")),
        }
    }
}

/// The operator's settings of an HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpBackendConfig {
    pub api: HttpApi,
    /// The endpoint's base URL (`http://127.0.0.1:5000`, `https://llm.example.org/v1`).
    pub url: String,
    /// The model an OpenAI-compatible endpoint is asked for.
    pub model: Option<String>,
    /// Sent as `api_key` (LibreTranslate) or `Authorization: Bearer` (OpenAI-compatible).
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl HttpBackendConfig {
    /// The name translations record: the API and the model or host.
    pub fn name(&self) -> String {
        match self.api {
            HttpApi::LibreTranslate => format!("libretranslate {}", self.url),
            HttpApi::OpenAi => format!("openai {}", self.model.as_deref().unwrap_or_default()),
        }
    }
}

/// A configured HTTP backend.
pub struct HttpBackend {
    config: HttpBackendConfig,
    client: OutboundClient,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend").field("api", &self.config.api).field("url", &self.config.url).finish()
    }
}

/// The code a LibreTranslate server uses for a language tag (`zt` for Chinese in traditional characters).
fn libretranslate_code(tag: &str) -> String {
    let lower = tag.to_ascii_lowercase();
    if lower.starts_with("zh-hant") || matches!(lower.as_str(), "zh-tw" | "zh-hk" | "zh-mo") {
        return "zt".to_string();
    }
    lower.split('-').next().unwrap_or_default().to_string()
}

impl HttpBackend {
    pub fn new(config: HttpBackendConfig) -> Result<HttpBackend, String> {
        crate::outbound::check_url(&config.url, true)?;
        if config.api == HttpApi::OpenAi && config.model.is_none() {
            return Err("an OpenAI-compatible translation endpoint needs --translation-model".to_string());
        }
        let client = OutboundClient::new(OutboundConfig {
            allow_private: true,
            connect_timeout: Duration::from_secs(5),
            timeout: config.timeout,
            max_response_bytes: 8 * 1024 * 1024,
            max_redirects: 0,
        })?;
        Ok(HttpBackend { config, client })
    }

    /// The name translations record: the API and the model or host.
    pub fn name(&self) -> String {
        self.config.name()
    }

    /// Translates one text (plain, or an HTML fragment whose markup must stay). Blocking: runs the
    /// request on the runtime from a blocking-pool thread.
    pub fn translate(&self, text: &str, from: &str, to: &str, html: bool, terms: &[Term]) -> Result<String, String> {
        if text.trim().is_empty() {
            return Ok(text.to_string());
        }
        let text = karavan_lang::translate::apply_glossary(text, terms);
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "the HTTP translation backend runs inside the server's runtime".to_string())?;
        handle.block_on(self.request(&text, from, to, html, terms))
    }

    async fn request(&self, text: &str, from: &str, to: &str, html: bool, terms: &[Term]) -> Result<String, String> {
        let base = self.config.url.trim_end_matches('/');
        let mut headers = vec![("content-type", "application/json".to_string())];
        let (url, body) = match self.config.api {
            HttpApi::LibreTranslate => {
                let mut body = json!({
                    "q": text,
                    "source": libretranslate_code(from),
                    "target": libretranslate_code(to),
                    "format": if html { "html" } else { "text" },
                });
                if let Some(key) = &self.config.api_key {
                    body["api_key"] = json!(key);
                }
                (format!("{base}/translate"), body)
            }
            HttpApi::OpenAi => {
                if let Some(key) = &self.config.api_key {
                    headers.push(("authorization", format!("Bearer {key}")));
                }
                let mut prompt = format!(
                    "You translate news agency copy from the language with BCP 47 tag {from} into the language \
                     with tag {to}. Answer with the translation only, nothing before or after it. Keep names, \
                     numbers and dates exact."
                );
                if html {
                    prompt.push_str(" The text is an HTML fragment: translate the text between tags and keep every tag and attribute as it is.");
                }
                if !terms.is_empty() {
                    prompt.push_str(" Write these terms exactly as given: ");
                    let list: Vec<String> = terms.iter().map(|t| t.target.clone()).collect();
                    prompt.push_str(&list.join("; "));
                    prompt.push('.');
                }
                let body = json!({
                    "model": self.config.model,
                    "temperature": 0,
                    "messages": [
                        { "role": "system", "content": prompt },
                        { "role": "user", "content": text },
                    ],
                });
                (format!("{base}/chat/completions"), body)
            }
        };
        let answer = self.client.post(&url, headers, body.to_string().into_bytes()).await?;
        let parsed: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            format!("the translation endpoint answered {} with a body that is not JSON: {e}", answer.status)
        })?;
        if answer.status >= 400 {
            let message = parsed
                .get("error")
                .map(|e| e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string))
                .unwrap_or_else(|| parsed.to_string());
            return Err(format!("the translation endpoint answered {}: {message}", answer.status));
        }
        let translated = match self.config.api {
            HttpApi::LibreTranslate => parsed.get("translatedText").and_then(Value::as_str),
            HttpApi::OpenAi => parsed.pointer("/choices/0/message/content").and_then(Value::as_str),
        };
        translated.map(str::to_string).ok_or_else(|| {
            format!("the translation endpoint answered {} without a translation: {parsed}", answer.status)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_substitution() {
        assert_eq!(libretranslate_code("zh-Hant"), "zt");
        assert_eq!(libretranslate_code("zh-Hans"), "zh");
        assert_eq!(libretranslate_code("kk-Cyrl"), "kk");
        let terms = [
            Term { source: "上海".into(), target: "Шанхай".into() },
            Term { source: "上海合作组织".into(), target: "ШЫҰ".into() },
        ];
        assert_eq!(karavan_lang::translate::apply_glossary("上海合作组织在上海", &terms), "ШЫҰ在Шанхай");
        assert!(HttpApi::parse("deepl").is_err());
    }
}
