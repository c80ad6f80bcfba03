//! Query-string parameters, read strictly: an unknown parameter or a bad value is a 400 that names it.

use axum::extract::RawQuery;
use karavan_domain::Timestamp;

use crate::error::ApiError;

/// The parameters of one request; each getter marks its name as known.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
    known: Vec<&'static str>,
}

impl Params {
    pub fn parse(raw: RawQuery) -> Result<Params, ApiError> {
        let pairs = match raw.0 {
            None => Vec::new(),
            Some(query) => parse_pairs(&query)?,
        };
        Ok(Params { pairs, known: Vec::new() })
    }

    /// Parameters given as pairs (a saved search's query), read with the same rules.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs, known: Vec::new() }
    }

    /// All values of a parameter; `a=1&a=2` and `a=1,2` both give two.
    pub fn all(&mut self, name: &'static str) -> Vec<String> {
        self.known.push(name);
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string))
            .collect()
    }

    pub fn one(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.known.push(name);
        let mut values = self.pairs.iter().filter(|(key, _)| key == name).map(|(_, v)| v.clone());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid(format!("{name}: give this parameter once")));
        }
        Ok(first)
    }

    pub fn time(&mut self, name: &'static str) -> Result<Option<Timestamp>, ApiError> {
        match self.one(name)? {
            None => Ok(None),
            Some(text) => {
                // A bare date means the start of that day in UTC.
                let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.clone() };
                Timestamp::parse_rfc3339(name, &full).map(Some).map_err(ApiError::from)
            }
        }
    }

    /// `limit`: a page size from 1 to `max`, `default` when absent.
    pub fn limit(&mut self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.one("limit")? {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
                _ => Err(ApiError::invalid(format!("limit: {text:?} is not a number from 1 to {max}"))),
            },
        }
    }

    pub fn flag(&mut self, name: &'static str) -> Result<bool, ApiError> {
        match self.one(name)?.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!("{name}: {other:?} is not true or false"))),
        }
    }

    /// Refuses parameters no getter asked for, so that a typo is not silently ignored.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.iter().find(|(key, _)| !self.known.contains(&key.as_str())) {
            Some((key, _)) => {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                Err(ApiError::invalid(format!("{key}: unknown parameter (this route takes {})", known.join(", "))))
            }
            None => Ok(()),
        }
    }
}

fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::invalid(format!("query: bad percent-encoding in {text:?}")))?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid(format!("query: {text:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::parse(RawQuery(Some(query.to_string()))).unwrap()
    }

    #[test]
    fn values_are_decoded_and_unknowns_refused() {
        let mut p = params("lang=kk,uz-Latn&lang=zh&q=a+b%20c");
        assert_eq!(p.all("lang"), vec!["kk", "uz-Latn", "zh"]);
        assert_eq!(p.one("q").unwrap().as_deref(), Some("a b c"));
        assert!(p.finish().is_ok());

        let mut p = params("lang=kk&lnag=ru");
        p.all("lang");
        let error = p.finish().unwrap_err();
        assert!(error.message.starts_with("lnag: unknown parameter"), "{}", error.message);

        assert!(Params::parse(RawQuery(Some("a=%zz".to_string()))).is_err());
        assert!(params("x=1&x=2").one("x").is_err());
        assert_eq!(params("from=2026-01-02").time("from").unwrap().unwrap().to_rfc3339(), "2026-01-02T00:00:00Z");
    }
}
