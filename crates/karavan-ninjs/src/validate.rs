//! Validation of a document against the rules of one ninjs version (`rules.rs`), reporting every
//! violation with the JSON pointer of the offending value.
//!
//! This follows the IPTC schemas' structural rules exactly and, like IPTC's own test runner, does not
//! assert `format` on input. The only rule that is not in a schema is a limit on how deeply
//! associations may nest ([`MAX_ASSOCIATION_DEPTH`]); it is deeper than anything `serde_json` parses
//! with its default recursion limit, and exists so that a value built in memory cannot exhaust the
//! stack.

use serde_json::{Map, Number, Value};

use crate::geojson;
use crate::rules::{Constraint, Format, Rule, Shape, VersionRules, rules};
use crate::{NinjsError, NinjsVersion, Violation, formats};

/// How many associations may nest inside one another.
pub const MAX_ASSOCIATION_DEPTH: usize = 16;

/// Validates `doc` strictly against the rules of exactly that version's IPTC schema: unknown
/// properties are refused and `format` is not asserted. On failure, every violation found is in
/// [`NinjsError::Invalid`].
pub fn validate(doc: &Value, version: NinjsVersion) -> Result<(), NinjsError> {
    let Value::Object(map) = doc else {
        return Err(NinjsError::NotAnObject);
    };
    let outcome = check(map, version, Options::STRICT);
    if outcome.violations.is_empty() {
        Ok(())
    } else {
        Err(NinjsError::Invalid { version: version.as_str(), violations: outcome.violations })
    }
}

/// What a check tolerates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Accept unknown top-level properties (extension documents) instead of refusing them; they are
    /// listed in [`Outcome::unknown_top_level`].
    pub accept_unknown_top_level: bool,
    /// Assert `date-time` and `uri` formats (used on the documents normalisation produces).
    pub check_formats: bool,
}

impl Options {
    pub(crate) const STRICT: Options = Options { accept_unknown_top_level: false, check_formats: false };
}

/// What a check found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub violations: Vec<Violation>,
    pub unknown_top_level: Vec<String>,
}

pub(crate) fn check(doc: &Map<String, Value>, version: NinjsVersion, options: Options) -> Outcome {
    let rules = rules(version);
    let mut checker = Checker { rules, options, outcome: Outcome::default(), depth: 0 };
    let label = format!("ninjs {}", version.as_str());
    checker.object(&rules.document, doc, "", &label, true);
    checker.outcome
}

/// Checks one association item of `version` (a whole document in 1.x and 2.0) as if it were a
/// document of its own, accepting unknown top-level members. Used to salvage 2.0 associations, whose
/// content the schema does not constrain once they have a name.
pub(crate) fn check_association_as_document(item: &Map<String, Value>, version: NinjsVersion) -> Outcome {
    check(item, version, Options { accept_unknown_top_level: true, check_formats: false })
}

struct Checker<'r> {
    rules: &'r VersionRules,
    options: Options,
    outcome: Outcome,
    depth: usize,
}

impl Checker<'_> {
    fn violation(&mut self, pointer: &str, message: String) {
        let pointer = if pointer.is_empty() { "/".to_string() } else { pointer.to_string() };
        self.outcome.violations.push(Violation { pointer, message });
    }

    fn wrong_type(&mut self, pointer: &str, name: &str, expected: &str, value: &Value) {
        self.violation(pointer, format!("{name} must be {expected}, got {}", describe(value)));
    }

    fn value(&mut self, rule: &Rule, value: &Value, pointer: &str, name: &str) {
        match rule {
            Rule::String(format) => match value {
                Value::String(text) => {
                    if self.options.check_formats {
                        self.format(*format, text, pointer, name);
                    }
                }
                _ => self.wrong_type(pointer, name, "a string", value),
            },
            Rule::Number => {
                if !value.is_number() {
                    self.wrong_type(pointer, name, "a number", value);
                }
            }
            Rule::Integer { minimum, maximum } => match value {
                Value::Number(number) if is_integer(number) => {
                    if !in_range(number, *minimum, *maximum) {
                        let bounds = match (minimum, maximum) {
                            (Some(low), Some(high)) => format!("between {low} and {high}"),
                            (Some(low), None) => format!("at least {low}"),
                            (None, Some(high)) => format!("at most {high}"),
                            (None, None) => String::new(),
                        };
                        self.violation(pointer, format!("{name} must be {bounds}, got {number}"));
                    }
                }
                _ => self.wrong_type(pointer, name, "an integer", value),
            },
            Rule::Enum(allowed) => {
                if !value.as_str().is_some_and(|text| allowed.contains(&text)) {
                    self.violation(
                        pointer,
                        format!("{name} must be one of {}, got {}", allowed.join(", "), describe(value)),
                    );
                }
            }
            Rule::TruncatedDateTime => {
                if !value.as_str().is_some_and(formats::is_truncated_date_time) {
                    self.violation(
                        pointer,
                        format!(
                            "{name} must be a date-time that may stop after the year, month or day (2024, 2024-02, 2024-02-29, 2024-02-29T12:00:00Z), got {}",
                            describe(value)
                        ),
                    );
                }
            }
            Rule::Array(items) => match value {
                Value::Array(elements) => {
                    for (index, element) in elements.iter().enumerate() {
                        self.value(items, element, &format!("{pointer}/{index}"), name);
                    }
                }
                _ => self.wrong_type(pointer, name, "an array", value),
            },
            Rule::Object(shape) => match value {
                Value::Object(map) => self.object(shape, map, pointer, name, false),
                _ => self.wrong_type(pointer, name, "an object", value),
            },
            Rule::AnyObject => {
                if !value.is_object() {
                    self.wrong_type(pointer, name, "an object", value);
                }
            }
            Rule::GeoJson => {
                if let Err(problem) = geojson::check(value) {
                    self.violation(&format!("{pointer}{}", problem.pointer), format!("{name} {}", problem.message));
                }
            }
            Rule::Unsatisfiable(reason) => self.violation(pointer, format!("{name} can never be valid: {reason}")),
            Rule::Document => self.nested(Nested::Document, value, pointer, name),
            Rule::Association => self.nested(Nested::Association, value, pointer, name),
            Rule::NamedOrDocument => match value {
                Value::Object(map) => match map.get("name") {
                    Some(Value::String(_)) => {}
                    Some(other) => {
                        let message = format!("name must be a string, got {}", describe(other));
                        self.violation(&format!("{pointer}/name"), message);
                    }
                    None => self.nested(Nested::Document, value, pointer, name),
                },
                _ => self.wrong_type(pointer, name, "an object", value),
            },
        }
    }

    fn format(&mut self, format: Option<Format>, text: &str, pointer: &str, name: &str) {
        match format {
            Some(Format::DateTime) if !formats::is_date_time(text) => {
                let message = format!("{name} must be an rfc 3339 date-time, got {}", describe(&Value::from(text)));
                self.violation(pointer, message);
            }
            Some(Format::Uri) if !formats::is_uri(text) => {
                self.violation(
                    pointer,
                    format!("{name} must be an absolute uri, got {}", describe(&Value::from(text))),
                );
            }
            _ => {}
        }
    }

    fn nested(&mut self, kind: Nested, value: &Value, pointer: &str, name: &str) {
        let Value::Object(map) = value else {
            self.wrong_type(pointer, name, "an object", value);
            return;
        };
        if self.depth >= MAX_ASSOCIATION_DEPTH {
            self.violation(pointer, format!("associations are nested more than {MAX_ASSOCIATION_DEPTH} levels deep"));
            return;
        }
        let rules = self.rules;
        let shape = match kind {
            Nested::Document => &rules.document,
            Nested::Association => &rules.association,
        };
        self.depth += 1;
        self.object(shape, map, pointer, "an association", false);
        self.depth -= 1;
    }

    fn object(&mut self, shape: &Shape, map: &Map<String, Value>, pointer: &str, label: &str, top_level: bool) {
        for (key, member) in map {
            let child = format!("{pointer}/{}", escape(key));
            let mut known = false;
            for rule in shape.rules_for(key) {
                known = true;
                self.value(rule, member, &child, key);
            }
            if !known && shape.closed {
                if top_level && self.options.accept_unknown_top_level {
                    self.outcome.unknown_top_level.push(key.clone());
                } else {
                    self.violation(&child, format!("{key} is not a property of {label}"));
                }
            }
        }
        for name in &shape.required {
            if !map.contains_key(*name) {
                self.violation(&format!("{pointer}/{}", escape(name)), format!("{name} is required"));
            }
        }
        if constraint_holds(shape.constraint, map) {
            return;
        }
        match shape.constraint {
            Some(Constraint::ExactlyOneOf(names)) => {
                let present: Vec<&str> = names.iter().copied().filter(|name| map.contains_key(*name)).collect();
                let found = if present.is_empty() { "neither".to_string() } else { present.join(" and ") };
                let message = format!("{label} must have exactly one of {}, it has {found}", names.join(" and "));
                self.violation(pointer, message);
            }
            Some(Constraint::AnyGroupExactlyOneOf(groups)) => {
                let alternatives: Vec<String> =
                    groups.iter().map(|group| format!("exactly one of {}", group.join(" and "))).collect();
                self.violation(pointer, format!("{label} must have {}", alternatives.join(", or ")));
            }
            None => {}
        }
    }
}

/// Whether `map` meets a `oneOf` / `anyOf` combination of `required` lists.
pub(crate) fn constraint_holds(constraint: Option<Constraint>, map: &Map<String, Value>) -> bool {
    let present = |names: &[&str]| names.iter().filter(|name| map.contains_key(**name)).count();
    match constraint {
        None => true,
        Some(Constraint::ExactlyOneOf(names)) => present(names) == 1,
        Some(Constraint::AnyGroupExactlyOneOf(groups)) => groups.iter().any(|group| present(group) == 1),
    }
}

#[derive(Debug, Clone, Copy)]
enum Nested {
    Document,
    Association,
}

/// JSON Schema's `integer`: a number without a fractional part (1.0 counts, as in draft 6 and later,
/// the drafts of every schema that uses `integer`).
pub(crate) fn is_integer(number: &Number) -> bool {
    number.is_i64() || number.is_u64() || number.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn in_range(number: &Number, minimum: Option<i64>, maximum: Option<i64>) -> bool {
    let above = |low: i64| match (number.as_i64(), number.as_u64(), number.as_f64()) {
        (Some(i), _, _) => i >= low,
        (None, Some(_), _) => true,
        (None, None, Some(f)) => f >= low as f64,
        _ => false,
    };
    let below = |high: i64| match (number.as_i64(), number.as_u64(), number.as_f64()) {
        (Some(i), _, _) => i <= high,
        (None, Some(_), _) => false,
        (None, None, Some(f)) => f <= high as f64,
        _ => false,
    };
    minimum.is_none_or(above) && maximum.is_none_or(below)
}

/// A JSON pointer segment for `name` (RFC 6901).
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A short rendering of a value for messages: scalars as JSON (long strings cut), containers by kind.
pub(crate) fn describe(value: &Value) -> String {
    const LIMIT: usize = 60;
    match value {
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
        Value::String(text) if text.chars().count() > LIMIT => {
            let cut: String = text.chars().take(LIMIT).collect();
            format!("{}…", Value::String(cut))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn violations(doc: Value, version: NinjsVersion) -> Vec<(String, String)> {
        match validate(&doc, version) {
            Ok(()) => Vec::new(),
            Err(NinjsError::Invalid { violations, .. }) => {
                violations.into_iter().map(|v| (v.pointer, v.message)).collect()
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn messages_name_the_property() {
        let found = violations(json!({"uri": "x", "pubstatus": "cancelled"}), NinjsVersion::V1_0);
        assert_eq!(
            found,
            vec![(
                "/pubstatus".to_string(),
                "pubstatus must be one of usable, withheld, canceled, got \"cancelled\"".to_string()
            )]
        );
        let found = violations(json!({}), NinjsVersion::V2_2);
        assert_eq!(found, vec![("/uri".to_string(), "uri is required".to_string())]);
        let found = violations(json!({"uri": "x", "urgency": 0.1}), NinjsVersion::V3_0);
        assert_eq!(found, vec![("/urgency".to_string(), "urgency must be an integer, got 0.1".to_string())]);
        let found = violations(json!({"uri": "x", "a/b~c": 1}), NinjsVersion::V3_1);
        assert_eq!(found, vec![("/a~1b~0c".to_string(), "a/b~c is not a property of ninjs 3.1".to_string())]);
    }

    #[test]
    fn integers_follow_json_schema() {
        assert!(is_integer(&Number::from_f64(5.0).unwrap()));
        assert!(!is_integer(&Number::from_f64(5.5).unwrap()));
        assert!(is_integer(&Number::from(u64::MAX)));
        assert!(!in_range(&Number::from(u64::MAX), Some(1), Some(9)));
        assert!(!in_range(&Number::from(i64::MIN), Some(1), Some(9)));
        assert!(in_range(&Number::from_f64(9.0).unwrap(), Some(1), Some(9)));
    }

    #[test]
    fn not_an_object() {
        assert_eq!(validate(&json!([]), NinjsVersion::V1_0), Err(NinjsError::NotAnObject));
    }
}
