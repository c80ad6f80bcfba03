//! Conversion of a document of any ninjs version, once validated, to a ninjs 3.1 document that is
//! valid against the IPTC 3.1 schema *including* its `date-time` and `uri` formats.
//!
//! The conversion walks the source document with three guides: the source version's rules (a member
//! they do not define, such as a top-level property of an extension document, is not converted),
//! a table of renames (1.x/2.x lowercase names to 3.x camelCase, `mimetype` to `contentType`, …), and
//! the 3.1 rules, which every value is fitted to. Whatever does not fit goes to
//! [`Normalized::extensions`](crate::Normalized), keyed by its original property name when it was a
//! top-level property and by the JSON pointer of its place in the input otherwise (those keys start
//! with `/`). Nothing is dropped without a trace.
//!
//! Mappings (1.x and 2.x to 3.1):
//! - lowercase names become camelCase: `versioncreated` → `versionCreated`, `pubstatus` → `pubStatus`,
//!   `embargoed` → `embargoedUntil`, `copyrightholder` → `copyrightHolder`, `ednote` → `edNote`,
//!   `altids` → `altIds`, `trustindicator(s)` → `trustIndicators`, `infosource(s)` → `infoSources`,
//!   `rightsinfo` → `rightsInfo` (with `langId`, `linkedRights`, `encodedRights`), `digitalsourcetype` →
//!   `digitalSourceType`, `contenttype`/`mimetype` → `contentType`, `sizeinbytes` → `sizeInBytes`,
//!   `charcount`/`wordcount` of a body → `charCount`/`wordCount`, `contactinfo` → `contactInfo`,
//!   `postalcode` → `postalCode`, `symboltype` → `symbolType`, `geojson` → `geoJSON`, `byline` → `by`;
//! - 1.x `headline` → `headlines: [{value}]` and `headline_<role>` → `{role, value}`; `body_<x>` and
//!   `description_<x>` → `bodies` / `descriptions`, where `text`, `html` and `xhtml` name a content type
//!   (`text/plain`, `text/html`, `application/xhtml+xml`) and any other suffix is the role;
//! - 1.x singular arrays `person`, `organisation`, `place`, `subject`, `event`, `object`, `infosource`,
//!   `genre` → `people`, `organisations`, …; in their entries `code` → `literal`, and `scheme` + `code`
//!   → `uri` (the scheme with the code appended, after a `/` unless the scheme already ends in `/`, `#`,
//!   `:`, `=` or `?`) when that is a valid URI, otherwise `scheme` goes to extensions; an infosource's
//!   `rel` → `role`; a place's `geometry_geojson` → `geoJSON` when it is valid GeoJSON (other
//!   `geometry_*` go to extensions);
//! - 1.x `trustindicator` `scheme` + `code` → `role` (the same join), `title` and `href` as they are;
//! - 1.x `representationtype` `complete`/`incomplete` → `full`/`partial` (the 2.0 vocabulary);
//! - 1.x `altids` (an object) → `altIds: [{role: name, value}]` for string values (others go to
//!   extensions);
//! - 1.x `renditions` and `associations` (objects keyed by name) → arrays whose entries carry `name`;
//!   associations are converted recursively; a 2.0 association without a name (allowed when it is a
//!   whole ninjs document) is named `association<N>` after its position;
//! - an organisation symbol's `ticker` → `symbol` unless it has a `symbol` (3.x has no `ticker`);
//! - 1.x `mimetype`, `charcount`, `wordcount` of the item itself have no 3.1 place and go to extensions;
//! - `standard` / `$standard` is replaced by `{name: ninjs, version: 3.1, schema: <IPTC 3.1 URL>}`; the
//!   original goes to extensions unless it was exactly that. A `standard` inside an association goes to
//!   extensions.
//!
//! Repairs so the result satisfies 3.1's formats and types (validation of the input does not assert
//! formats, see `formats.rs`):
//! - a `date-time` that is a date alone becomes midnight UTC (`2019-09-24` → `2019-09-24T00:00:00Z`); one
//!   without an offset is taken as UTC (`2019-10-08T12:00:00` → `2019-10-08T12:00:00Z`); one that cannot
//!   be repaired ("Last Tuesday") goes to extensions;
//! - the item's own `uri` (and an association's) that is not an absolute URI (`""`, `002-schema`)
//!   becomes `urn:karavan:ninjs:<percent-encoded original>`, and the original goes to extensions under
//!   `uri`; any other invalid `uri`-format value (`href`, a subject's `uri`, …) goes to extensions;
//! - numbers that 3.1 wants as integers (`urgency` 1–9, rendition `width`/`height`/`sizeInBytes`,
//!   `charCount`, `wordCount`) are written as integers when they are whole (`5.0` → `5`), and go to
//!   extensions otherwise (`urgency: 12`, `width: 99.5`);
//! - an object that would break a 3.1 `required` or `oneOf` once a member has moved out (a `rightsInfo`
//!   whose only `linkedRights` is not a URI) goes to extensions whole.
//!
//! The produced document is checked against the 3.1 rules with formats before it is returned.

use serde_json::{Map, Value, json};

use crate::detect::extension_schema;
use crate::formats::{is_uri, percent_encode, repair_date_time};
use crate::rules::{Format, Rule, Shape, VersionRules, rules};
use crate::validate::{self, MAX_ASSOCIATION_DEPTH, Options, escape, is_integer};
use crate::{NinjsError, NinjsVersion, Normalized, Violation, formats, geojson};

/// The IPTC URL of the ninjs 3.1 schema, named in every normalised document's `standard`.
pub const NINJS_3_1_SCHEMA: &str = "http://www.iptc.org/std/ninjs/ninjs-schema_3.1.json";

/// Validates `doc` as ninjs `version` (accepting unknown top-level properties when the document
/// declares a non-IPTC extension schema) and converts it to ninjs 3.1.
pub fn normalize(doc: &Value, version: NinjsVersion) -> Result<Normalized, NinjsError> {
    let Value::Object(source) = doc else {
        return Err(NinjsError::NotAnObject);
    };
    let options = Options { accept_unknown_top_level: extension_schema(source).is_some(), check_formats: false };
    let outcome = validate::check(source, version, options);
    if !outcome.violations.is_empty() {
        return Err(NinjsError::Invalid { version: version.as_str(), violations: outcome.violations });
    }

    let mut converter =
        Converter { source: rules(version), target: rules(NinjsVersion::V3_1), leftovers: Vec::new(), depth: 0 };
    let body = converter.document(source, &Path::root(), Place::Root, &[]);
    let mut document = Map::new();
    document.insert("standard".to_string(), own_standard());
    for (key, value) in body {
        document.insert(key, value);
    }
    let extensions = converter.into_extensions();

    let produced = validate::check(
        &document,
        NinjsVersion::V3_1,
        Options { accept_unknown_top_level: false, check_formats: true },
    );
    if !produced.violations.is_empty() {
        // A bug in the conversion, not in the input: refuse rather than store an invalid document.
        let violations = produced
            .violations
            .into_iter()
            .map(|v| Violation {
                pointer: v.pointer,
                message: format!("the converted 3.1 document is invalid: {}", v.message),
            })
            .collect();
        return Err(NinjsError::Invalid { version: NinjsVersion::V3_1.as_str(), violations });
    }
    Ok(Normalized { source_version: version, document, extensions })
}

fn own_standard() -> Value {
    json!({ "name": "ninjs", "version": "3.1", "schema": NINJS_3_1_SCHEMA })
}

/// Where a value sat in the input document.
#[derive(Debug, Clone)]
struct Path(Vec<String>);

impl Path {
    fn root() -> Path {
        Path(Vec::new())
    }

    fn child(&self, name: &str) -> Path {
        let mut segments = self.0.clone();
        segments.push(name.to_string());
        Path(segments)
    }

    fn index(&self, index: usize) -> Path {
        self.child(&index.to_string())
    }

    /// The key of a leftover in [`Normalized::extensions`]: the property name at the top level, the
    /// JSON pointer deeper down.
    fn extension_key(&self) -> String {
        match self.0.as_slice() {
            [name] => name.clone(),
            segments => segments.iter().map(|segment| format!("/{}", escape(segment))).collect(),
        }
    }
}

/// A rename from an older version's member name to the 3.1 one, with the renames of its members.
#[derive(Debug)]
struct Rename {
    from: &'static str,
    to: &'static str,
    members: &'static [Rename],
    /// Only when the source object has no member called `to` (a symbol's `ticker` becomes its
    /// `symbol` unless it has one).
    unless_present: bool,
}

const fn rename(from: &'static str, to: &'static str, members: &'static [Rename]) -> Rename {
    Rename { from, to, members, unless_present: false }
}

const NONE: &[Rename] = &[];
const ADDRESS: &[Rename] = &[rename("postalcode", "postalCode", NONE)];
const CONTACT: &[Rename] = &[rename("address", "address", ADDRESS)];
const SYMBOL: &[Rename] = &[
    rename("symboltype", "symbolType", NONE),
    Rename { from: "ticker", to: "symbol", members: NONE, unless_present: true },
];
const ENTITY: &[Rename] = &[
    rename("contactinfo", "contactInfo", CONTACT),
    rename("symbols", "symbols", SYMBOL),
    rename("geojson", "geoJSON", NONE),
];
const TEXT: &[Rename] = &[
    rename("contenttype", "contentType", NONE),
    rename("charcount", "charCount", NONE),
    rename("wordcount", "wordCount", NONE),
];
const RENDITION: &[Rename] = &[
    rename("contenttype", "contentType", NONE),
    rename("mimetype", "contentType", NONE),
    rename("sizeinbytes", "sizeInBytes", NONE),
];
const RIGHTS: &[Rename] = &[
    rename("langid", "langId", NONE),
    rename("linkedrights", "linkedRights", NONE),
    rename("encodedrights", "encodedRights", NONE),
];
/// Top-level renames of 1.x and 2.x (their names do not clash: each line's validation has refused the
/// other's before conversion starts).
const TOP: &[Rename] = &[
    rename("representationtype", "representationType", NONE),
    rename("firstcreated", "firstCreated", NONE),
    rename("versioncreated", "versionCreated", NONE),
    rename("contentcreated", "contentCreated", NONE),
    rename("embargoed", "embargoedUntil", NONE),
    rename("pubstatus", "pubStatus", NONE),
    rename("copyrightholder", "copyrightHolder", NONE),
    rename("copyrightnotice", "copyrightNotice", NONE),
    rename("usageterms", "usageTerms", NONE),
    rename("ednote", "edNote", NONE),
    rename("byline", "by", NONE),
    rename("descriptions", "descriptions", TEXT),
    rename("bodies", "bodies", TEXT),
    rename("headlines", "headlines", TEXT),
    rename("people", "people", ENTITY),
    rename("organisations", "organisations", ENTITY),
    rename("places", "places", ENTITY),
    rename("infosources", "infoSources", ENTITY),
    rename("renditions", "renditions", RENDITION),
    rename("altids", "altIds", NONE),
    rename("trustindicators", "trustIndicators", NONE),
    rename("rightsinfo", "rightsInfo", RIGHTS),
    rename("digitalsourcetype", "digitalSourceType", NONE),
];

/// The 3.1 name of `key` in `source`, and the renames of its members.
fn renamed<'k>(renames: &'static [Rename], key: &'k str, source: &Map<String, Value>) -> (&'k str, &'static [Rename]) {
    match renames.iter().find(|entry| entry.from == key) {
        Some(entry) if entry.unless_present && source.contains_key(entry.to) => (key, NONE),
        Some(entry) => (entry.to, entry.members),
        None => (key, NONE),
    }
}

/// What kind of document object is being converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Association,
}

/// A 1.x subject-like array and its 3.1 counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntityKind {
    /// `person`, `organisation`, `place`, `subject`, `event`, `object`, `genre`: `scheme` + `code` →
    /// `uri`, `code` → `literal`.
    Plain,
    /// `infosource`: as plain, and `rel` → `role`.
    InfoSource,
    /// `trustindicator`: `scheme` + `code` → `role`.
    TrustIndicator,
}

struct Converter {
    source: &'static VersionRules,
    target: &'static VersionRules,
    leftovers: Vec<(String, Value)>,
    depth: usize,
}

impl Converter {
    fn leftover(&mut self, path: &Path, value: &Value) {
        self.leftovers.push((path.extension_key(), value.clone()));
    }

    fn into_extensions(self) -> Map<String, Value> {
        let mut extensions = Map::new();
        for (key, value) in self.leftovers {
            // Keys are distinct places of the input, so a clash would be a bug; keep both anyway.
            let mut unique = key.clone();
            let mut count = 1;
            while extensions.contains_key(&unique) {
                count += 1;
                unique = format!("{key}#{count}");
            }
            extensions.insert(unique, value);
        }
        extensions
    }

    fn line(&self) -> u8 {
        self.source.version.line()
    }

    /// Converts a document object: the item itself or an association. `skip` lists members already
    /// known not to fit (salvaged 2.0 associations), which go to extensions.
    fn document(
        &mut self,
        source: &Map<String, Value>,
        path: &Path,
        place: Place,
        skip: &[String],
    ) -> Map<String, Value> {
        let source_shape = match (place, self.line()) {
            (Place::Association, 2 | 3) if self.source.version != NinjsVersion::V2_0 => &self.source.association,
            _ => &self.source.document,
        };
        let target_shape = match place {
            Place::Root => &self.target.document,
            Place::Association => &self.target.association,
        };
        let mut out = Map::new();
        for (key, value) in source {
            let at = path.child(key);
            if place == Place::Association && key == "name" {
                // The caller puts the association's name first.
                continue;
            }
            if skip.contains(key) || !source_shape.knows(key) {
                self.leftover(&at, value);
                continue;
            }
            match key.as_str() {
                "uri" => {
                    if let Some(uri) = self.identity_uri(value, &at) {
                        out.insert("uri".to_string(), uri);
                    }
                }
                "associations" => {
                    let associations = self.associations(value, &at);
                    out.insert("associations".to_string(), Value::Array(associations));
                }
                "standard" | "$standard" => {
                    if !(place == Place::Root && *value == own_standard()) {
                        self.leftover(&at, value);
                    }
                }
                _ if self.line() == 1 => self.member_1(key, value, &at, source, source_shape, target_shape, &mut out),
                _ => {
                    let renames = if self.line() == 2 { TOP } else { NONE };
                    self.member(key, value, &at, source, Some(source_shape), target_shape, renames, &mut out);
                }
            }
        }
        out
    }

    /// The item's (or an association's) own `uri`, made a valid URI if it is not one.
    fn identity_uri(&mut self, value: &Value, at: &Path) -> Option<Value> {
        match value {
            Value::String(uri) if is_uri(uri) => Some(value.clone()),
            Value::String(uri) => {
                self.leftover(at, value);
                Some(Value::String(format!("urn:karavan:ninjs:{}", percent_encode(uri))))
            }
            _ => {
                self.leftover(at, value);
                None
            }
        }
    }

    /// Converts a member through the renames and fits it to its 3.1 rule.
    #[allow(clippy::too_many_arguments)]
    fn member(
        &mut self,
        key: &str,
        value: &Value,
        at: &Path,
        parent: &Map<String, Value>,
        source_shape: Option<&Shape>,
        target_shape: &Shape,
        renames: &'static [Rename],
        out: &mut Map<String, Value>,
    ) {
        let (target_key, member_renames) = renamed(renames, key, parent);
        let target_rule = target_shape.property(target_key);
        let Some(target_rule) = target_rule.filter(|_| !out.contains_key(target_key)) else {
            self.leftover(at, value);
            return;
        };
        let source_rule = source_shape.and_then(|shape| shape.rules_for(key).next());
        if let Some(fitted) = self.fit(value, source_rule, target_rule, member_renames, at) {
            out.insert(target_key.to_string(), fitted);
        }
    }

    /// `value` as 3.1's `target` rule wants it, or `None` after moving it to extensions.
    fn fit(
        &mut self,
        value: &Value,
        source_rule: Option<&Rule>,
        target: &Rule,
        renames: &'static [Rename],
        at: &Path,
    ) -> Option<Value> {
        let fitted = match (target, value) {
            (Rule::String(None), Value::String(_)) => Some(value.clone()),
            (Rule::String(Some(Format::DateTime)), Value::String(text)) => repair_date_time(text).map(Value::String),
            (Rule::String(Some(Format::Uri)), Value::String(text)) => is_uri(text).then(|| value.clone()),
            (Rule::Number, Value::Number(_)) => Some(value.clone()),
            (Rule::Integer { minimum, maximum }, Value::Number(number)) if is_integer(number) => {
                let whole = as_whole_number(number);
                let fits = whole.as_i64().map_or(whole.is_u64() && maximum.is_none(), |n| {
                    minimum.is_none_or(|low| n >= low) && maximum.is_none_or(|high| n <= high)
                });
                fits.then_some(whole)
            }
            (Rule::Enum(allowed), Value::String(text)) => allowed.contains(&text.as_str()).then(|| value.clone()),
            (Rule::TruncatedDateTime, Value::String(text)) => {
                formats::is_truncated_date_time(text).then(|| value.clone())
            }
            (Rule::Array(item_rule), Value::Array(items)) => {
                let source_item = match source_rule {
                    Some(Rule::Array(rule)) => Some(rule.as_ref()),
                    _ => None,
                };
                let fitted: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| self.fit(item, source_item, item_rule, renames, &at.index(index)))
                    .collect();
                return Some(Value::Array(fitted));
            }
            (Rule::Object(shape), Value::Object(map)) => {
                let source_shape = match source_rule {
                    Some(Rule::Object(shape)) => Some(shape.as_ref()),
                    _ => None,
                };
                return self.object(map, value, source_shape, shape, renames, at);
            }
            (Rule::AnyObject, Value::Object(_)) => Some(value.clone()),
            (Rule::GeoJson, _) => geojson::check(value).is_ok().then(|| value.clone()),
            _ => None,
        };
        if fitted.is_none() {
            self.leftover(at, value);
        }
        fitted
    }

    /// Converts an object member by member; if the result breaks the 3.1 shape's `required` or
    /// `oneOf`, the whole source object goes to extensions instead of its parts.
    fn object(
        &mut self,
        map: &Map<String, Value>,
        original: &Value,
        source_shape: Option<&Shape>,
        target_shape: &Shape,
        renames: &'static [Rename],
        at: &Path,
    ) -> Option<Value> {
        let mark = self.leftovers.len();
        let mut out = Map::new();
        for (key, value) in map {
            let child = at.child(key);
            if source_shape.is_some_and(|shape| !shape.knows(key)) {
                self.leftover(&child, value);
                continue;
            }
            self.member(key, value, &child, map, source_shape, target_shape, renames, &mut out);
        }
        self.accept(out, original, target_shape, at, mark)
    }

    /// Keeps `out` if it satisfies `shape`, else moves `original` to extensions (dropping the
    /// leftovers recorded since `mark`, which `original` contains).
    fn accept(
        &mut self,
        out: Map<String, Value>,
        original: &Value,
        shape: &Shape,
        at: &Path,
        mark: usize,
    ) -> Option<Value> {
        if satisfies(shape, &out) {
            Some(Value::Object(out))
        } else {
            self.leftovers.truncate(mark);
            self.leftover(at, original);
            None
        }
    }

    /// A member of a 1.x document.
    #[allow(clippy::too_many_arguments)]
    fn member_1(
        &mut self,
        key: &str,
        value: &Value,
        at: &Path,
        parent: &Map<String, Value>,
        source_shape: &Shape,
        target_shape: &Shape,
        out: &mut Map<String, Value>,
    ) {
        let entities = [
            ("person", "people", EntityKind::Plain),
            ("organisation", "organisations", EntityKind::Plain),
            ("place", "places", EntityKind::Plain),
            ("subject", "subjects", EntityKind::Plain),
            ("event", "events", EntityKind::Plain),
            ("object", "objects", EntityKind::Plain),
            ("genre", "genres", EntityKind::Plain),
            ("infosource", "infoSources", EntityKind::InfoSource),
            ("trustindicator", "trustIndicators", EntityKind::TrustIndicator),
        ];
        if let Some((_, target_key, kind)) = entities.iter().find(|(name, _, _)| *name == key) {
            self.entities(
                value,
                at,
                source_shape.property(key),
                target_shape.property(target_key),
                *kind,
                target_key,
                out,
            );
            return;
        }
        let text = match key {
            "headline" => Some(("headlines", vec![])),
            _ => {
                if let Some(role) = key.strip_prefix("headline_") {
                    Some(("headlines", vec![("role", role)]))
                } else if let Some(suffix) = key.strip_prefix("body_") {
                    Some(("bodies", text_kind(suffix)))
                } else {
                    key.strip_prefix("description_").map(|suffix| ("descriptions", text_kind(suffix)))
                }
            }
        };
        if let Some((target_key, labels)) = text {
            let Value::String(_) = value else {
                self.leftover(at, value);
                return;
            };
            let mut entry = Map::new();
            for (label, text) in labels {
                entry.insert(label.to_string(), Value::from(text));
            }
            entry.insert("value".to_string(), value.clone());
            match out.entry(target_key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(entries) => entries.push(Value::Object(entry)),
                _ => self.leftover(at, value),
            }
            return;
        }
        match key {
            "representationtype" => {
                let mapped = match value.as_str() {
                    Some("complete") => Some("full"),
                    Some("incomplete") => Some("partial"),
                    _ => None,
                };
                match mapped {
                    Some(mapped) => {
                        out.insert("representationType".to_string(), Value::from(mapped));
                    }
                    None => self.leftover(at, value),
                }
            }
            "renditions" => self.renditions_1(value, at, source_shape, out),
            "altids" => match value {
                Value::Object(ids) => {
                    let mut entries = Vec::new();
                    for (role, id) in ids {
                        match id {
                            Value::String(_) => entries.push(json!({ "role": role, "value": id })),
                            _ => self.leftover(&at.child(role), id),
                        }
                    }
                    out.insert("altIds".to_string(), Value::Array(entries));
                }
                _ => self.leftover(at, value),
            },
            _ => self.member(key, value, at, parent, Some(source_shape), target_shape, TOP, out),
        }
    }

    /// A 1.x array of subject-like entries.
    #[allow(clippy::too_many_arguments)]
    fn entities(
        &mut self,
        value: &Value,
        at: &Path,
        source_rule: Option<&Rule>,
        target_rule: Option<&Rule>,
        kind: EntityKind,
        target_key: &str,
        out: &mut Map<String, Value>,
    ) {
        let (Some(source_item), Some(target_item), Value::Array(items)) =
            (object_items(source_rule), object_items(target_rule), value)
        else {
            self.leftover(at, value);
            return;
        };
        let mut converted = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(entry) = self.entity_1(item, &at.index(index), source_item, target_item, kind) {
                converted.push(entry);
            }
        }
        out.insert(target_key.to_string(), Value::Array(converted));
    }

    /// One 1.x subject-like entry.
    fn entity_1(&mut self, item: &Value, at: &Path, source: &Shape, target: &Shape, kind: EntityKind) -> Option<Value> {
        let Value::Object(map) = item else {
            self.leftover(at, item);
            return None;
        };
        let mark = self.leftovers.len();
        let mut out = Map::new();
        for (key, value) in map {
            let child = at.child(key);
            if !source.knows(key) {
                self.leftover(&child, value);
                continue;
            }
            match key.as_str() {
                "scheme" | "code" => {}
                "rel" if kind == EntityKind::InfoSource => {
                    self.member("role", value, &child, map, None, target, NONE, &mut out);
                }
                _ if key.starts_with("geometry_") => {
                    let usable = key == "geometry_geojson"
                        && target.property("geoJSON").is_some()
                        && !out.contains_key("geoJSON")
                        && geojson::check(value).is_ok();
                    if usable {
                        out.insert("geoJSON".to_string(), value.clone());
                    } else {
                        self.leftover(&child, value);
                    }
                }
                _ => self.member(key, value, &child, map, Some(source), target, ENTITY, &mut out),
            }
        }
        let scheme = map.get("scheme").and_then(Value::as_str);
        let code = map.get("code").and_then(Value::as_str);
        let joined =
            scheme.zip(code).map(|(scheme, code)| join_scheme_and_code(scheme, code)).filter(|uri| is_uri(uri));
        match kind {
            EntityKind::TrustIndicator => match joined {
                Some(role) if !out.contains_key("role") => {
                    out.insert("role".to_string(), Value::String(role));
                }
                _ => {
                    for key in ["scheme", "code"] {
                        if let Some(value) = map.get(key) {
                            self.leftover(&at.child(key), value);
                        }
                    }
                }
            },
            EntityKind::Plain | EntityKind::InfoSource => {
                if let Some(code) = code {
                    out.insert("literal".to_string(), Value::from(code));
                }
                match joined {
                    Some(uri) => {
                        out.insert("uri".to_string(), Value::String(uri));
                    }
                    None => {
                        if let Some(value) = map.get("scheme") {
                            self.leftover(&at.child("scheme"), value);
                        }
                    }
                }
            }
        }
        self.accept(out, item, target, at, mark)
    }

    /// 1.x `renditions`: an object keyed by rendition name.
    fn renditions_1(&mut self, value: &Value, at: &Path, source_shape: &Shape, out: &mut Map<String, Value>) {
        let source_rendition = match source_shape.property("renditions") {
            Some(Rule::Object(shape)) => shape.patterns.first().and_then(|(_, rule)| match rule {
                Rule::Object(rendition) => Some(rendition.as_ref()),
                _ => None,
            }),
            _ => None,
        };
        let target_rendition = object_items(self.target.document.property("renditions"));
        let (Value::Object(renditions), Some(source_rendition), Some(target_rendition)) =
            (value, source_rendition, target_rendition)
        else {
            self.leftover(at, value);
            return;
        };
        let mut converted = Vec::new();
        for (name, rendition) in renditions {
            let item_at = at.child(name);
            let Value::Object(members) = rendition else {
                self.leftover(&item_at, rendition);
                continue;
            };
            let mark = self.leftovers.len();
            let mut entry = Map::new();
            entry.insert("name".to_string(), Value::from(name.as_str()));
            for (key, member) in members {
                let child = item_at.child(key);
                if !source_rendition.knows(key) {
                    self.leftover(&child, member);
                    continue;
                }
                self.member(
                    key,
                    member,
                    &child,
                    members,
                    Some(source_rendition),
                    target_rendition,
                    RENDITION,
                    &mut entry,
                );
            }
            if let Some(entry) = self.accept(entry, rendition, target_rendition, &item_at, mark) {
                converted.push(entry);
            }
        }
        out.insert("renditions".to_string(), Value::Array(converted));
    }

    /// `associations` of any line, converted recursively to 3.1 association objects.
    fn associations(&mut self, value: &Value, at: &Path) -> Vec<Value> {
        let items: Vec<(String, Option<String>, &Value)> = match value {
            // 1.x: an object keyed by association name.
            Value::Object(map) => map.iter().map(|(name, item)| (name.clone(), Some(name.clone()), item)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let name = item.get("name").and_then(Value::as_str).map(str::to_string);
                    (index.to_string(), name, item)
                })
                .collect(),
            _ => {
                self.leftover(at, value);
                return Vec::new();
            }
        };
        let mut converted = Vec::new();
        for (position, (segment, name, item)) in items.into_iter().enumerate() {
            let item_at = at.child(&segment);
            let Value::Object(map) = item else {
                self.leftover(&item_at, item);
                continue;
            };
            if self.depth >= MAX_ASSOCIATION_DEPTH {
                self.leftover(&item_at, item);
                continue;
            }
            // A 2.0 association with a name may hold anything: keep the members that are valid
            // ninjs 2.0 and move the others out.
            let skip: Vec<String> = if self.source.version == NinjsVersion::V2_0 && name.is_some() {
                validate::check_association_as_document(map, NinjsVersion::V2_0)
                    .violations
                    .iter()
                    .filter_map(|violation| first_segment(&violation.pointer))
                    .collect()
            } else {
                Vec::new()
            };
            let mark = self.leftovers.len();
            self.depth += 1;
            let body = self.document(map, &item_at, Place::Association, &skip);
            self.depth -= 1;
            let mut association = Map::new();
            let name = name.unwrap_or_else(|| format!("association{}", position + 1));
            association.insert("name".to_string(), Value::String(name));
            for (key, member) in body {
                association.insert(key, member);
            }
            let target = &self.target.association;
            if let Some(association) = self.accept(association, item, target, &item_at, mark) {
                converted.push(association);
            }
        }
        converted
    }
}

/// Whether `map` meets `shape`'s `required` and `oneOf` / `anyOf` rules.
fn satisfies(shape: &Shape, map: &Map<String, Value>) -> bool {
    shape.required.iter().all(|name| map.contains_key(*name)) && validate::constraint_holds(shape.constraint, map)
}

/// The object shape of an array-of-objects rule.
fn object_items(rule: Option<&Rule>) -> Option<&Shape> {
    match rule {
        Some(Rule::Array(items)) => match items.as_ref() {
            Rule::Object(shape) => Some(shape),
            _ => None,
        },
        _ => None,
    }
}

/// The labels a 1.x `body_<suffix>` / `description_<suffix>` gets: a content type for the suffixes
/// that name one, a role for the others.
fn text_kind(suffix: &str) -> Vec<(&'static str, &str)> {
    match suffix {
        "text" => vec![("contentType", "text/plain")],
        "html" => vec![("contentType", "text/html")],
        "xhtml" => vec![("contentType", "application/xhtml+xml")],
        role => vec![("role", role)],
    }
}

/// `scheme` + `code` as one URI: `http://cv.iptc.org/newscodes/mediatopic/` + `20000737`.
fn join_scheme_and_code(scheme: &str, code: &str) -> String {
    if scheme.ends_with(['/', '#', ':', '=', '?']) { format!("{scheme}{code}") } else { format!("{scheme}/{code}") }
}

/// A whole number as an integer JSON number where it fits one (`5.0` → `5`).
fn as_whole_number(number: &serde_json::Number) -> Value {
    if number.is_i64() || number.is_u64() {
        return Value::Number(number.clone());
    }
    match number.as_f64() {
        Some(f) if f >= i64::MIN as f64 && f < i64::MAX as f64 => Value::from(f as i64),
        _ => Value::Number(number.clone()),
    }
}

/// The first segment of a JSON pointer, unescaped (`/a~1b/0` → `a/b`).
fn first_segment(pointer: &str) -> Option<String> {
    let segment = pointer.strip_prefix('/')?.split('/').next()?;
    (!segment.is_empty()).then(|| segment.replace("~1", "/").replace("~0", "~"))
}
