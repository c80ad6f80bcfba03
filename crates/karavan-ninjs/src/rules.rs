//! The rules of every published IPTC ninjs schema, written down as data: one table per major line,
//! each later version built from the one before it with its additions.
//!
//! The tables transcribe `ninjs-schema_<version>.json` (1.0 – 3.1) keyword by keyword. Only the
//! keywords the schemas use exist here: `type`, `enum`, `minimum`/`maximum`, `required`,
//! `properties`, `patternProperties` (all of the form `^prefix[a-zA-Z0-9_]+`, unanchored at the end,
//! so a name matches when it starts with the prefix followed by one character of the class),
//! `additionalProperties: false` / `unevaluatedProperties: false` (a closed shape), the `oneOf` /
//! `anyOf` combinations of `required` lists, `$ref` to the document itself (associations) and to
//! GeoJSON, and `format`, which is recorded but never asserted when validating input (see
//! `formats.rs`).
//!
//! Faithful oddities of the schemas, kept on purpose because validation follows the schema:
//! - the 1.x name patterns are prefixes, so `headline_test-bad-characters-#$^` is valid 1.3 (the suite's
//!   `008_regex_bug.json` says so);
//! - 1.x `altids` and `geometry_*` accept any object, and 1.4 – 2.2 `rightsinfo` accepts members other
//!   than its three;
//! - 2.0 associations are `anyOf` "an object with a string `name`" or "a whole ninjs 2.0 document", so
//!   an association with a name may hold anything;
//! - in 3.0 and 3.1 `recurrenceDates` is declared `"type": "array"` *and* `$ref` to a string type, which
//!   no value satisfies.

use std::sync::LazyLock;

use crate::NinjsVersion;

/// A `format` a schema names for a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    DateTime,
    Uri,
}

/// What a value must be.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    /// `"type": "string"`, with the `format` the schema names (not asserted on input).
    String(Option<Format>),
    /// `"type": "number"`.
    Number,
    /// `"type": "integer"` with optional `minimum` and `maximum`.
    Integer { minimum: Option<i64>, maximum: Option<i64> },
    /// `"type": "string"` with an `enum`.
    Enum(&'static [&'static str]),
    /// 3.x `truncatedDateTimeType`.
    TruncatedDateTime,
    /// `"type": "array"` with `items`.
    Array(Box<Rule>),
    /// `"type": "object"` with a shape.
    Object(Box<Shape>),
    /// `"type": "object"` and nothing more.
    AnyObject,
    /// `$ref` to the GeoJSON schema.
    GeoJson,
    /// A schema no value satisfies; the text says why.
    Unsatisfiable(&'static str),
    /// `$ref` to the version's whole document (1.x associations).
    Document,
    /// 2.1 and later association items: the document shape plus `name` (and `rel` in 3.x), with `name`
    /// and `uri` required.
    Association,
    /// 2.0 association items: `anyOf` an object with a string `name`, or a whole document.
    NamedOrDocument,
}

/// The start of a property name that `patternProperties` accepts: `^{prefix}[a-zA-Z0-9]` or, with
/// `underscore`, `^{prefix}[a-zA-Z0-9_]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamePattern {
    pub prefix: &'static str,
    pub underscore: bool,
}

impl NamePattern {
    pub(crate) fn matches(self, name: &str) -> bool {
        name.strip_prefix(self.prefix)
            .and_then(|rest| rest.bytes().next())
            .is_some_and(|b| b.is_ascii_alphanumeric() || (self.underscore && b == b'_'))
    }
}

/// A combination of `required` lists under `oneOf` / `anyOf`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Constraint {
    /// `oneOf: [{required: [a]}, {required: [b]}]`: exactly one of the names is present.
    ExactlyOneOf(&'static [&'static str]),
    /// `anyOf: [oneOf[...], oneOf[...]]`: at least one group has exactly one of its names present.
    AnyGroupExactlyOneOf(&'static [&'static [&'static str]]),
}

/// The members an object may or must have.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    pub properties: Vec<(&'static str, Rule)>,
    pub patterns: Vec<(NamePattern, Rule)>,
    pub required: Vec<&'static str>,
    /// `additionalProperties: false` (or `unevaluatedProperties: false`).
    pub closed: bool,
    pub constraint: Option<Constraint>,
}

impl Shape {
    fn closed() -> Shape {
        Shape { closed: true, ..Shape::default() }
    }

    fn open() -> Shape {
        Shape::default()
    }

    /// Adds a property, or replaces the rule of one that exists (keeping its place).
    fn with(mut self, name: &'static str, rule: Rule) -> Shape {
        self.set(name, rule);
        self
    }

    fn set(&mut self, name: &'static str, rule: Rule) {
        match self.properties.iter_mut().find(|(existing, _)| *existing == name) {
            Some(slot) => slot.1 = rule,
            None => self.properties.push((name, rule)),
        }
    }

    fn with_pattern(mut self, prefix: &'static str, underscore: bool, rule: Rule) -> Shape {
        self.patterns.push((NamePattern { prefix, underscore }, rule));
        self
    }

    fn requiring(mut self, name: &'static str) -> Shape {
        self.required.push(name);
        self
    }

    fn constrained(mut self, constraint: Constraint) -> Shape {
        self.constraint = Some(constraint);
        self
    }

    /// The shape of the objects in the array property `name`. Only used while building the tables,
    /// whose layout is fixed, so a wrong name is a bug found by every test.
    fn items_mut(&mut self, name: &str) -> &mut Shape {
        let rule = self.rule_mut(name);
        match rule {
            Rule::Array(items) => match items.as_mut() {
                Rule::Object(shape) => shape,
                other => panic!("rules table: items of {name} are {other:?}, not objects"),
            },
            other => panic!("rules table: {name} is {other:?}, not an array"),
        }
    }

    /// The shape of the object property `name`.
    fn object_mut(&mut self, name: &str) -> &mut Shape {
        match self.rule_mut(name) {
            Rule::Object(shape) => shape,
            other => panic!("rules table: {name} is {other:?}, not an object"),
        }
    }

    fn rule_mut(&mut self, name: &str) -> &mut Rule {
        match self.properties.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, rule)) => rule,
            None => panic!("rules table: no property {name}"),
        }
    }

    /// The declared property `name`, if any.
    pub(crate) fn property(&self, name: &str) -> Option<&Rule> {
        self.properties.iter().find(|(existing, _)| *existing == name).map(|(_, rule)| rule)
    }

    /// Every rule that applies to a member called `name`: its declared property and each pattern it
    /// matches (JSON Schema applies all of them).
    pub(crate) fn rules_for<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Rule> + 's {
        self.property(name)
            .into_iter()
            .chain(self.patterns.iter().filter(move |(pattern, _)| pattern.matches(name)).map(|(_, rule)| rule))
    }

    /// Whether the shape says anything about a member called `name`.
    pub(crate) fn knows(&self, name: &str) -> bool {
        self.rules_for(name).next().is_some()
    }
}

/// The rules of one version.
#[derive(Debug)]
pub(crate) struct VersionRules {
    pub version: NinjsVersion,
    /// The document itself.
    pub document: Shape,
    /// Association items, for versions whose associations are not whole documents (2.1 and later).
    pub association: Shape,
}

/// The rules of `version`. Built once; the tables never change.
pub(crate) fn rules(version: NinjsVersion) -> &'static VersionRules {
    static ALL: LazyLock<Vec<VersionRules>> = LazyLock::new(|| NinjsVersion::ALL.into_iter().map(build).collect());
    let index = NinjsVersion::ALL.iter().position(|v| *v == version).unwrap_or(0);
    &ALL[index]
}

fn build(version: NinjsVersion) -> VersionRules {
    let document = match version.line() {
        1 => line_1(version),
        2 => line_2(version),
        _ => line_3(version),
    };
    let association = match version {
        NinjsVersion::V2_1 | NinjsVersion::V2_2 => {
            let mut shape = document.clone().with("name", string());
            shape.required = vec!["name", "uri"];
            shape
        }
        NinjsVersion::V3_0 | NinjsVersion::V3_1 => {
            let mut shape = document.clone().with("name", string()).with("rel", string());
            shape.required = vec!["name", "uri"];
            shape
        }
        // 1.x and 2.0 associations are whole documents (2.0: or anything with a name).
        _ => document.clone(),
    };
    VersionRules { version, document, association }
}

fn string() -> Rule {
    Rule::String(None)
}

fn uri() -> Rule {
    Rule::String(Some(Format::Uri))
}

fn date_time() -> Rule {
    Rule::String(Some(Format::DateTime))
}

fn integer() -> Rule {
    Rule::Integer { minimum: None, maximum: None }
}

fn integer_between(minimum: i64, maximum: i64) -> Rule {
    Rule::Integer { minimum: Some(minimum), maximum: Some(maximum) }
}

/// The lowercase `rightsinfo` object of 1.4 – 2.x.
fn rights_info_lowercase() -> Rule {
    object(
        Shape::open()
            .with("langid", uri())
            .with("linkedrights", uri())
            .with("encodedrights", string())
            .constrained(ONE_RIGHTS_1),
    )
}

/// What 1.5 added and 2.1 added again under plural names: contact info on people, organisations,
/// places and info sources, ticker symbols on organisations, and creator and scores on subjects.
/// `parties` is (people, organisations, places, info sources) in the line's naming.
fn add_contacts_symbols_and_subject_scores(shape: &mut Shape, parties: [&str; 4], subject: &str) {
    for name in parties {
        shape.items_mut(name).set("contactinfo", array_of_objects(contact_info("postalcode")));
    }
    let symbols = shape.items_mut(parties[1]).items_mut("symbols");
    symbols.set("symboltype", uri());
    symbols.set("symbol", string());
    let subject = shape.items_mut(subject);
    subject.set("creator", string());
    subject.set("relevance", integer_between(0, 100));
    subject.set("confidence", integer_between(0, 100));
}

fn array_of(rule: Rule) -> Rule {
    Rule::Array(Box::new(rule))
}

fn object(shape: Shape) -> Rule {
    Rule::Object(Box::new(shape))
}

fn array_of_objects(shape: Shape) -> Rule {
    array_of(object(shape))
}

const TYPES_1_0: &[&str] = &["text", "audio", "video", "picture", "graphic", "composite"];
const TYPES_1_2: &[&str] = &["text", "audio", "video", "picture", "graphic", "composite", "component"];
const TYPES_3_0: &[&str] =
    &["text", "audio", "video", "picture", "graphic", "composite", "component", "event", "planning"];
const PUB_STATUS: &[&str] = &["usable", "withheld", "canceled"];

/// `oneOf` `required linkedrights` / `required encodedrights` (1.4 – 2.2).
const ONE_RIGHTS_1: Constraint = Constraint::ExactlyOneOf(&["linkedrights", "encodedrights"]);
const ONE_RIGHTS_3: Constraint = Constraint::ExactlyOneOf(&["linkedRights", "encodedRights"]);
/// `oneOf` `required value` / `required address` of contact info (1.5 and later).
const VALUE_OR_ADDRESS: Constraint = Constraint::ExactlyOneOf(&["value", "address"]);

/// A 1.x subject-like entry: `name`, `rel`, `scheme` (uri), `code`.
fn entity_1() -> Shape {
    Shape::closed().with("name", string()).with("rel", string()).with("scheme", uri()).with("code", string())
}

/// ninjs 1.0, then each 1.x version's additions.
fn line_1(version: NinjsVersion) -> Shape {
    use NinjsVersion::*;

    let rendition = Shape::closed()
        .with("href", uri())
        .with("mimetype", string())
        .with("title", string())
        .with("height", Rule::Number)
        .with("width", Rule::Number)
        .with("sizeinbytes", Rule::Number);
    let symbol = Shape::closed().with("ticker", string()).with("exchange", string());
    let mut shape = Shape::closed()
        .requiring("uri")
        .with_pattern("description_", true, string())
        .with_pattern("body_", true, string())
        .with("uri", uri())
        .with("type", Rule::Enum(TYPES_1_0))
        .with("mimetype", string())
        .with("representationtype", Rule::Enum(&["complete", "incomplete"]))
        .with("profile", string())
        .with("version", string())
        .with("versioncreated", date_time())
        .with("embargoed", date_time())
        .with("pubstatus", Rule::Enum(PUB_STATUS))
        .with("copyrightholder", string())
        .with("copyrightnotice", string())
        .with("language", string())
        .with("person", array_of_objects(entity_1()))
        .with("organisation", array_of_objects(entity_1().with("symbols", array_of_objects(symbol))))
        .with("place", array_of_objects(entity_1()))
        .with("subject", array_of_objects(entity_1()))
        .with("event", array_of_objects(entity_1()))
        .with("object", array_of_objects(entity_1()))
        .with("byline", string())
        .with("headline", string())
        .with("located", string())
        .with("renditions", object(Shape::closed().with_pattern("", false, object(rendition))))
        .with("associations", object(Shape::closed().with_pattern("", false, Rule::Document)));
    if version >= V1_1 {
        shape.set("urgency", Rule::Number);
        shape.set("usageterms", string());
        shape
            .items_mut("place")
            .patterns
            .push((NamePattern { prefix: "geometry_", underscore: true }, Rule::AnyObject));
    }
    if version >= V1_2 {
        shape.set("type", Rule::Enum(TYPES_1_2));
        shape.set("firstcreated", date_time());
        shape.set("ednote", string());
        shape.set("infosource", array_of_objects(entity_1()));
        shape.set("title", string());
        shape.set("slugline", string());
        shape.set("charcount", Rule::Number);
        shape.set("wordcount", Rule::Number);
        let rendition = &mut shape.object_mut("renditions").patterns[0].1;
        if let Rule::Object(rendition) = rendition {
            rendition.set("duration", Rule::Number);
            rendition.set("format", string());
        }
    }
    if version >= V1_3 {
        shape.patterns.push((NamePattern { prefix: "headline_", underscore: true }, string()));
        // Rendition and association names may start with "_" from 1.3 on.
        shape.object_mut("renditions").patterns[0].0.underscore = true;
        shape.object_mut("associations").patterns[0].0.underscore = true;
        shape.set("altids", Rule::AnyObject);
        shape.set(
            "trustindicator",
            array_of_objects(
                Shape::closed()
                    .with("scheme", uri())
                    .with("code", string())
                    .with("title", string())
                    .with("href", uri()),
            ),
        );
        shape.set(
            "$standard",
            object(Shape::closed().with("name", string()).with("version", string()).with("schema", uri())),
        );
        shape.set(
            "genre",
            array_of_objects(Shape::closed().with("name", string()).with("scheme", uri()).with("code", string())),
        );
    }
    if version >= V1_4 {
        shape.set("contentcreated", date_time());
        shape.set("expires", date_time());
        shape.set("rightsinfo", rights_info_lowercase());
    }
    if version >= V1_5 {
        add_contacts_symbols_and_subject_scores(
            &mut shape,
            ["person", "organisation", "place", "infosource"],
            "subject",
        );
    }
    if version >= V1_6 {
        shape.set("digitalsourcetype", object(digital_source_type()));
    }
    shape
}

/// `contactinfoType` (1.5, 2.1, 2.2) and `contactInfoType` (3.x), which differ in `postalCode`.
fn contact_info(postal_code: &'static str) -> Shape {
    Shape::closed()
        .with("type", string())
        .with("role", string())
        .with("lang", string())
        .with("name", string())
        .with("value", string())
        .with(
            "address",
            object(
                Shape::closed()
                    .with("lines", array_of(string()))
                    .with("locality", string())
                    .with("area", string())
                    .with(postal_code, string())
                    .with("country", string()),
            ),
        )
        .constrained(VALUE_OR_ADDRESS)
}

fn digital_source_type() -> Shape {
    Shape::closed().with("name", string()).with("uri", uri()).with("literal", string())
}

/// A 2.x/3.x subject-like entry: `name`, `rel`, `uri`, `literal`.
fn entity_2() -> Shape {
    Shape::closed().with("name", string()).with("rel", string()).with("uri", uri()).with("literal", string())
}

/// `{role, contenttype, value}` with `value` required (2.x headlines, descriptions).
fn text_block(content_type: &'static str) -> Shape {
    Shape::closed().requiring("value").with("role", string()).with(content_type, string()).with("value", string())
}

/// ninjs 2.0, then 2.1 and 2.2.
fn line_2(version: NinjsVersion) -> Shape {
    use NinjsVersion::*;

    let rendition = Shape::closed()
        .requiring("name")
        .with("name", string())
        .with("href", uri())
        .with("contenttype", string())
        .with("title", string())
        .with("height", Rule::Number)
        .with("width", Rule::Number)
        .with("sizeinbytes", Rule::Number)
        .with("duration", Rule::Number)
        .with("format", string());
    let mut shape = Shape::closed()
        .requiring("uri")
        .with("uri", uri())
        .with("type", Rule::Enum(TYPES_1_2))
        .with("representationtype", Rule::Enum(&["full", "partial"]))
        .with("profile", string())
        .with("version", string())
        .with("firstcreated", date_time())
        .with("versioncreated", date_time())
        .with("contentcreated", date_time())
        .with("embargoed", date_time())
        .with("pubstatus", Rule::Enum(PUB_STATUS))
        .with("urgency", Rule::Number)
        .with("copyrightholder", string())
        .with("copyrightnotice", string())
        .with("usageterms", string())
        .with("ednote", string())
        .with("language", string())
        .with("descriptions", array_of_objects(text_block("contenttype")))
        .with(
            "bodies",
            array_of_objects(text_block("contenttype").with("charcount", Rule::Number).with("wordcount", Rule::Number)),
        )
        .with("headlines", array_of_objects(text_block("contenttype")))
        .with("people", array_of_objects(entity_2()))
        .with(
            "organisations",
            array_of_objects(entity_2().with(
                "symbols",
                array_of_objects(Shape::closed().with("ticker", string()).with("exchange", string())),
            )),
        )
        .with("places", array_of_objects(entity_2().with("geojson", Rule::GeoJson)))
        .with("subjects", array_of_objects(entity_2()))
        .with("events", array_of_objects(entity_2()))
        .with("objects", array_of_objects(entity_2()))
        .with(
            "infosources",
            array_of_objects(
                Shape::closed().with("name", string()).with("role", uri()).with("uri", uri()).with("literal", string()),
            ),
        )
        .with("title", string())
        .with("by", string())
        .with("slugline", string())
        .with("located", string())
        .with("renditions", array_of_objects(rendition))
        .with("associations", array_of(Rule::NamedOrDocument))
        .with("altids", array_of_objects(Shape::closed().with("role", string()).with("value", string())))
        .with(
            "trustindicators",
            array_of_objects(Shape::closed().with("role", uri()).with("title", string()).with("href", uri())),
        )
        .with(
            "standard",
            object(Shape::closed().with("name", string()).with("version", string()).with("schema", uri())),
        )
        .with(
            "genres",
            array_of_objects(Shape::closed().with("name", string()).with("uri", uri()).with("literal", string())),
        )
        .with("rightsinfo", rights_info_lowercase());
    if version >= V2_1 {
        add_contacts_symbols_and_subject_scores(
            &mut shape,
            ["people", "organisations", "places", "infosources"],
            "subjects",
        );
        // 2.1 dropped `format: uri` from infosources role and genres uri.
        shape.items_mut("infosources").set("role", string());
        shape.items_mut("genres").set("uri", string());
        shape.set("associations", array_of(Rule::Association));
        shape.set("expires", date_time());
    }
    if version >= V2_2 {
        shape.set("digitalsourcetype", object(digital_source_type()));
    }
    shape
}

/// `datesObjectType` (3.x).
fn dates() -> Shape {
    Shape::closed()
        .with("startDate", date_time())
        .with("endDate", date_time())
        .with("expectedStartDate", Rule::TruncatedDateTime)
        .with("expectedEndDate", Rule::TruncatedDateTime)
        .with("expectedDuration", string())
        .with(
            "recurrence",
            object(
                Shape::closed()
                    .with(
                        "recurrenceDates",
                        Rule::Unsatisfiable(
                            "the ninjs 3.x schema declares it both an array and a truncated date-time string",
                        ),
                    )
                    .with(
                        "recurrenceRules",
                        array_of_objects(
                            Shape::closed()
                                .with(
                                    "frequency",
                                    Rule::Enum(&[
                                        "secondly", "minutely", "hourly", "daily", "weekly", "monthly", "yearly",
                                    ]),
                                )
                                .with("interval", integer())
                                .with("until", date_time())
                                .with("count", integer()),
                        ),
                    ),
            ),
        )
        .constrained(Constraint::AnyGroupExactlyOneOf(&[
            &["startDate", "expectedStartDate"],
            &["endDate", "expectedEndDate"],
        ]))
}

/// `organisationType` (3.x).
fn organisation_3() -> Shape {
    entity_2()
        .with(
            "symbols",
            array_of_objects(
                Shape::closed().with("exchange", string()).with("symbolType", uri()).with("symbol", string()),
            ),
        )
        .with("contactInfo", array_of_objects(contact_info("postalCode")))
}

/// `renditionType` (3.x).
fn rendition_3() -> Shape {
    Shape::closed()
        .requiring("name")
        .with("name", string())
        .with("href", uri())
        .with("contentType", string())
        .with("title", string())
        .with("width", integer())
        .with("height", integer())
        .with("sizeInBytes", integer())
        .with("duration", Rule::Number)
        .with("format", string())
        .with("aspectRatio", string())
        .with("videoCodec", string())
        .with("frameRate", Rule::Number)
        .with("poi", object(Shape::closed().with("x", integer()).with("y", integer())))
        .with("transportProtocol", string())
        .with("scanType", Rule::Enum(&["progressive", "interlaced"]))
        .with("bitrate", string())
}

/// ninjs 3.0, then 3.1.
fn line_3(version: NinjsVersion) -> Shape {
    let contact = || array_of_objects(contact_info("postalCode"));
    let mut shape = Shape::closed()
        .requiring("uri")
        .with("uri", uri())
        .with("type", Rule::Enum(TYPES_3_0))
        .with("representationType", Rule::Enum(&["full", "partial"]))
        .with("profile", string())
        .with("version", string())
        .with("firstCreated", date_time())
        .with("versionCreated", date_time())
        .with("contentCreated", date_time())
        .with("embargoedUntil", date_time())
        .with("pubStatus", Rule::Enum(PUB_STATUS))
        .with("urgency", integer_between(1, 9))
        .with("copyrightHolder", string())
        .with("copyrightNotice", string())
        .with("usageTerms", string())
        .with("edNote", string())
        .with("language", string())
        .with("descriptions", array_of_objects(text_block("contentType")))
        .with(
            "bodies",
            array_of_objects(text_block("contentType").with("charCount", integer()).with("wordCount", integer())),
        )
        .with("headlines", array_of_objects(text_block("contentType")))
        .with("people", array_of_objects(entity_2().with("contactInfo", contact())))
        .with("organisations", array_of_objects(organisation_3()))
        .with("places", array_of_objects(entity_2().with("contactInfo", contact()).with("geoJSON", Rule::GeoJson)))
        .with(
            "subjects",
            array_of_objects(
                entity_2()
                    .with("creator", string())
                    .with("relevance", integer_between(0, 100))
                    .with("confidence", integer_between(0, 100)),
            ),
        )
        .with(
            "events",
            array_of_objects(
                Shape::closed()
                    .with("id", string())
                    .with("name", string())
                    .with("rel", string())
                    .with("uri", uri())
                    .with("literal", string()),
            ),
        )
        .with(
            "eventDetails",
            object(
                Shape::closed()
                    .with("eventStatus", uri())
                    .with("plannedCoverageStatus", uri())
                    .with("dates", object(dates()))
                    .with("organiser", object(organisation_3())),
            ),
        )
        .with(
            "plannedCoverage",
            array_of_objects(
                Shape::closed()
                    .with("uri", uri())
                    .with("title", string())
                    .with("pubStatus", Rule::Enum(PUB_STATUS))
                    .with("type", Rule::Enum(TYPES_3_0))
                    .with(
                        "commissioned",
                        object(Shape::closed().with("by", string()).with("on", date_time()).with(
                            "references",
                            array_of_objects(Shape::closed().with("name", string()).with("value", string())),
                        )),
                    )
                    .with("dates", object(dates()))
                    .with(
                        "audiences",
                        array_of_objects(Shape::closed().with("audience", string()).with("significance", integer())),
                    )
                    .with("exclAudience", array_of(string()))
                    .with("edNote", string())
                    .with("urgency", integer_between(1, 9))
                    .with("language", string())
                    .with("itemCount", object(Shape::closed().with("rangeFrom", integer()).with("rangeTo", integer())))
                    .with("wordCount", integer())
                    .with("renditions", array_of_objects(rendition_3())),
            ),
        )
        .with("objects", array_of_objects(entity_2()))
        .with(
            "infoSources",
            array_of_objects(
                Shape::closed()
                    .with("name", string())
                    .with("role", string())
                    .with("uri", uri())
                    .with("literal", string())
                    .with("contactInfo", contact()),
            ),
        )
        .with("title", string())
        .with("by", string())
        .with("slugline", string())
        .with("located", string())
        .with("renditions", array_of_objects(rendition_3()))
        .with("associations", array_of(Rule::Association))
        .with("altIds", array_of_objects(Shape::closed().with("role", string()).with("value", string())))
        .with(
            "trustIndicators",
            array_of_objects(Shape::closed().with("role", uri()).with("title", string()).with("href", uri())),
        )
        .with(
            "standard",
            object(Shape::closed().with("name", string()).with("version", string()).with("schema", uri())),
        )
        .with(
            "genres",
            array_of_objects(Shape::closed().with("name", string()).with("uri", string()).with("literal", string())),
        )
        .with("expires", date_time())
        .with(
            "rightsInfo",
            object(
                Shape::closed()
                    .with("langId", uri())
                    .with("linkedRights", uri())
                    .with("encodedRights", string())
                    .constrained(ONE_RIGHTS_3),
            ),
        );
    if version >= NinjsVersion::V3_1 {
        shape.set("digitalSourceType", object(digital_source_type()));
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns_are_prefixes() {
        let headline = NamePattern { prefix: "headline_", underscore: true };
        assert!(headline.matches("headline_main"));
        assert!(headline.matches("headline______"));
        assert!(headline.matches("headline_test-bad-characters-#$^-é™£"));
        assert!(!headline.matches("headline_"));
        assert!(!headline.matches("headline_ééé"));
        assert!(!headline.matches("headline-with-dash"));
        let key = NamePattern { prefix: "", underscore: false };
        assert!(key.matches("logo"));
        assert!(key.matches("a-b"));
        assert!(!key.matches("_logo"));
        assert!(!key.matches(""));
    }

    #[test]
    fn every_version_has_rules() {
        for version in NinjsVersion::ALL {
            let rules = rules(version);
            assert_eq!(rules.version, version);
            assert!(rules.document.required.contains(&"uri"));
            assert!(rules.document.closed);
        }
    }
}
