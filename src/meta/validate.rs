//! Parsing and semantic validation of a metadata package.
//!
//! [`parse_package`] turns JSON into a [`Package`] and reports where the JSON does
//! not fit the model; [`validate`] then finds every semantic problem (identifiers,
//! duplicates, references between parts, field options, expressions), each with
//! the path of the offending value, e.g. `entities[0].fields[3].key`.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use super::expr::{self, Expr};
use super::model::{
    Approvers, ComparePeriod, Conversion, ConversionTarget, Dashboard, DateBucket, DefaultSpec,
    Entity, FORMAT, Field, FieldType, Flow, FlowEffect, FlowStep, Followup, GroupBy, Hook, Layout,
    Measure, MeasureFn, NoticeRecipients, Package, Pipeline, Report, ReportKind, Role, Schedule,
    Transitions, Trigger, TriggerOn, Webhook,
};
use super::template;

/// One thing wrong with a package, at a JSON path such as `entities[0].fields[3].key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// Columns every entity table has; no field may use these keys.
pub const SYSTEM_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "owner",
    "version",
    "deleted_at",
    "stage",
    "last_contact_at",
];

/// System columns an expression may read (`stage` only where there is a pipeline).
const EXPRESSION_SYSTEM_COLUMNS: &[&str] = &[
    "id",
    "owner",
    "stage",
    "created_at",
    "updated_at",
    "created_by",
];

/// PostgreSQL's reserved keywords, including those it allows as function or type names.
const POSTGRES_RESERVED: &str = "\
    all analyse analyze and any array as asc asymmetric authorization binary both case \
    cast check collate collation column concurrently constraint create cross \
    current_catalog current_date current_role current_schema current_time \
    current_timestamp current_user default deferrable desc distinct do else end except \
    false fetch for foreign freeze from full grant group having ilike in initially inner \
    intersect into is isnull join lateral leading left like limit localtime \
    localtimestamp natural not notnull null offset on only or order outer overlaps \
    placing primary references returning right select session_user similar some \
    symmetric system_user table tablesample then to trailing true union unique user \
    using variadic verbose when where window with";

/// Every SQLite keyword.
const SQLITE_KEYWORDS: &str = "\
    abort action add after all alter always analyze and as asc attach autoincrement \
    before begin between by cascade case cast check collate column commit conflict \
    constraint create cross current current_date current_time current_timestamp database \
    default deferrable deferred delete desc detach distinct do drop each else end escape \
    except exclude exclusive exists explain fail filter first following for foreign from \
    full generated glob group groups having if ignore immediate in index indexed \
    initially inner insert instead intersect into is isnull join key last left like \
    limit match materialized natural no not nothing notnull null nulls of offset on or \
    order others outer over partition plan pragma preceding primary query raise range \
    recursive references regexp reindex release rename replace restrict returning right \
    rollback row rows savepoint select set table temp temporary then ties to transaction \
    trigger unbounded union unique update using vacuum values view virtual when where \
    window with without";

/// Hidden columns of PostgreSQL and SQLite tables: a column of that name fails or hides
/// the system one.
const HIDDEN_COLUMNS: &str = "\
    ctid xmin xmax cmin cmax tableoid oid rowid _rowid_";

const IDENTIFIER_MAX_LEN: usize = 40;
/// Hooks are small functions; a bigger script belongs in a plugin of its own.
const MAX_SCRIPT_BYTES: usize = 64 * 1024;

/// Whether `word` is a SQL keyword of PostgreSQL or SQLite (or a hidden column name).
pub fn is_reserved(word: &str) -> bool {
    let word = word.to_ascii_lowercase();
    [POSTGRES_RESERVED, SQLITE_KEYWORDS, HIDDEN_COLUMNS]
        .iter()
        .any(|list| list.split_whitespace().any(|w| w == word))
}

/// Checks a key against `^[a-z][a-z0-9_]{0,39}$`, SQL keywords and system columns; the
/// error names the problem.
pub fn check_identifier(key: &str) -> Result<(), String> {
    let problem = if key.is_empty() {
        "must not be empty"
    } else if key.contains(['"', '\'', '`']) {
        "must not contain quotes"
    } else if !key.is_ascii() {
        "must use only ASCII letters a-z, digits and _ (no unicode)"
    } else if key.chars().any(|c| c.is_ascii_uppercase()) {
        "must be lowercase"
    } else if key.len() > IDENTIFIER_MAX_LEN {
        "is too long (at most 40 characters)"
    } else if key.starts_with('_') {
        "must not start with _"
    } else if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a letter a-z"
    } else if !key
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        "may contain only a-z, 0-9 and _"
    } else if is_reserved(key) {
        "is a reserved word"
    } else if SYSTEM_COLUMNS.contains(&key) {
        "is a system column"
    } else {
        return Ok(());
    };
    Err(format!("{key:?} {problem}"))
}

/// Parses a package, reporting where the JSON does not fit the model, then validates it.
pub fn parse_package(json: &Value) -> Result<Package, Vec<Problem>> {
    let package: Package = serde_path_to_error::deserialize(json).map_err(|err| {
        let path = err.path().to_string();
        vec![Problem {
            path: if path == "." { String::new() } else { path },
            message: err.into_inner().to_string(),
        }]
    })?;
    let problems = validate(&package);
    if problems.is_empty() {
        Ok(package)
    } else {
        Err(problems)
    }
}

/// Every semantic problem of a package; empty when it is valid.
pub fn validate(pkg: &Package) -> Vec<Problem> {
    let mut validator = Validator {
        pkg,
        problems: Vec::new(),
    };
    validator.package();
    validator.problems
}

/// The problems of one report definition run outside a package (an ad hoc report from
/// the report builder), against the package's entities and roles; paths start at
/// `report`.
pub fn report_problems(pkg: &Package, report: &Report) -> Vec<Problem> {
    let mut validator = Validator {
        pkg,
        problems: Vec::new(),
    };
    validator.report_definition("report", report);
    validator.problems
}

/// A keyed item of a list: where it is, its key, and the key it was renamed from.
struct Keyed<'k> {
    path: String,
    key: &'k str,
    renamed_from: Option<&'k str>,
}

fn keyed<'k, T>(
    base: &str,
    items: &'k [T],
    key: impl Fn(&'k T) -> (&'k str, Option<&'k str>),
) -> Vec<Keyed<'k>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let (key, renamed_from) = key(item);
            Keyed {
                path: format!("{base}[{i}]"),
                key,
                renamed_from,
            }
        })
        .collect()
}

fn no_field(entity: &Entity, key: &str) -> String {
    format!("entity {:?} has no field {key:?}", entity.key)
}

fn no_pipeline(entity: &Entity) -> String {
    format!("entity {:?} has no pipeline", entity.key)
}

/// Whether `stage` names a stage of the entity's pipeline; the error says why not.
fn check_stage(entity: &Entity, stage: &str) -> Result<(), String> {
    let pipeline = entity
        .pipeline
        .as_ref()
        .ok_or_else(|| no_pipeline(entity))?;
    if pipeline.stages.iter().any(|s| s.key == stage) {
        Ok(())
    } else {
        Err(format!(
            "the pipeline of {:?} has no stage {stage:?}",
            entity.key
        ))
    }
}

fn is_option(field: &Field, value: &str) -> bool {
    field.options.iter().any(|o| o.value == value)
}

fn option_list(field: &Field) -> String {
    let values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
    values.join(", ")
}

/// Whether an expression may read `name` on records of `entity`.
fn is_expression_variable(entity: &Entity, name: &str) -> bool {
    entity.field(name).is_some()
        || (EXPRESSION_SYSTEM_COLUMNS.contains(&name)
            && (name != "stage" || entity.pipeline.is_some()))
}

/// What a stored value of this field looks like, for messages.
fn expected_value(field: &Field) -> String {
    match field.field_type {
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url => "a string".into(),
        FieldType::Integer => "a whole number".into(),
        FieldType::Decimal => "a number".into(),
        FieldType::Boolean => "true or false".into(),
        FieldType::Date => "a date YYYY-MM-DD".into(),
        FieldType::Datetime => "an RFC 3339 datetime".into(),
        FieldType::Select => format!("one of {}", option_list(field)),
        FieldType::MultiSelect => format!("a list of values from {}", option_list(field)),
        FieldType::Reference | FieldType::User => "a record id".into(),
        FieldType::Attachment | FieldType::AutoNumber => "nothing (it is set by the system)".into(),
    }
}

/// Whether a literal JSON value can be stored in the field.
fn check_value(field: &Field, value: &Value) -> Result<(), String> {
    let fits = match field.field_type {
        FieldType::Text
        | FieldType::LongText
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url => value.is_string(),
        FieldType::Integer => value.is_i64() || value.is_u64(),
        FieldType::Decimal => {
            value.is_number()
                || value
                    .as_str()
                    .is_some_and(|s| s.parse::<rust_decimal::Decimal>().is_ok())
        }
        FieldType::Boolean => value.is_boolean(),
        FieldType::Date => value
            .as_str()
            .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        FieldType::Datetime => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        FieldType::Select => value.as_str().is_some_and(|s| is_option(field, s)),
        FieldType::MultiSelect => value.as_array().is_some_and(|items| {
            items
                .iter()
                .all(|item| item.as_str().is_some_and(|s| is_option(field, s)))
        }),
        FieldType::Reference | FieldType::User => value.is_u64(),
        FieldType::Attachment | FieldType::AutoNumber => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{value} does not fit {} field {:?}: expected {}",
            field.field_type.as_str(),
            field.key,
            expected_value(field)
        ))
    }
}

/// Whether a default value can be stored in the field as the record writer converts
/// it (exact decimals within scale and range, real dates, options, …).
fn check_default(field: &Field, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    check_value(field, value)?;
    crate::store::value::normalize(field, value)
        .map(|_| ())
        .map_err(|message| {
            format!(
                "{value} does not fit {} field {:?}: {message}",
                field.field_type.as_str(),
                field.key
            )
        })
}

/// Whether `$alias` in the map of `conversion.creates[index]` can fill `field`: it names
/// a record created before this one, and the field is a reference to its entity.
fn check_alias(
    conversion: &Conversion,
    index: usize,
    alias: &str,
    field: &Field,
) -> Result<(), String> {
    let Some(position) = conversion.creates.iter().position(|t| t.alias == alias) else {
        let known: Vec<&str> = conversion.creates[..index]
            .iter()
            .map(|t| t.alias.as_str())
            .collect();
        return Err(format!(
            "unknown alias ${alias}; records created before this one: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    if position >= index {
        let when = if position == index {
            "this very record"
        } else {
            "created after this one"
        };
        return Err(format!(
            "${alias} is {when}; only records created before it can be named"
        ));
    }
    let aliased = &conversion.creates[position].entity;
    check_reference_to(field, aliased, &format!("${alias} is a {aliased} record"))
}

/// Whether `field` is a reference to `entity`, to take the id of one of its records
/// (`what` says whose, for the message).
fn check_reference_to(field: &Field, entity: &str, what: &str) -> Result<(), String> {
    if field.field_type == FieldType::Reference && field.target.as_deref() == Some(entity) {
        Ok(())
    } else {
        Err(format!(
            "{what}: {:?} must be a reference field pointing at {entity}",
            field.key
        ))
    }
}

/// Whether values of `from` can fill `to`: the same type (a select's or multi-select's
/// options all among the target's, references to the same entity, decimals without
/// losing digits), or text-like into text-like.
fn check_mapping(from: &Field, to: &Field) -> Result<(), String> {
    let (from_type, to_type) = (from.field_type, to.field_type);
    if from_type.is_textual() && to_type.is_textual() {
        return Ok(());
    }
    if from_type != to_type {
        return Err(format!(
            "{} field {:?} cannot fill {} field {:?}: map the same type, or text-like to text-like",
            from_type.as_str(),
            from.key,
            to_type.as_str(),
            to.key
        ));
    }
    match from_type {
        FieldType::Select | FieldType::MultiSelect => {
            let missing: Vec<&str> = from
                .options
                .iter()
                .filter(|o| !is_option(to, &o.value))
                .map(|o| o.value.as_str())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{:?} has no option(s) {} of {:?}",
                    to.key,
                    missing.join(", "),
                    from.key
                ))
            }
        }
        FieldType::Reference if from.target != to.target => Err(format!(
            "{:?} points at {} and cannot fill {:?}, which points at {}",
            from.key,
            from.target.as_deref().unwrap_or("nothing"),
            to.key,
            to.target.as_deref().unwrap_or("nothing")
        )),
        FieldType::Decimal if to.decimal_scale() < from.decimal_scale() => Err(format!(
            "{:?} keeps {} decimal places and {:?} only {}: digits would be lost",
            from.key,
            from.decimal_scale(),
            to.key,
            to.decimal_scale()
        )),
        _ => Ok(()),
    }
}

/// Checks an auto_number format: `{YYYY}`, `{MM}`, `{DD}` and exactly one `{0…}`.
fn check_auto_number_format(format: &str) -> Result<(), String> {
    let mut sequences = 0;
    let mut rest = format;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a } without a matching {".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("has a { without a matching }")?;
        match &after[..close] {
            "YYYY" | "MM" | "DD" => {}
            zeros if !zeros.is_empty() && zeros.chars().all(|c| c == '0') => sequences += 1,
            other => {
                return Err(format!(
                    "has an unknown placeholder {{{other}}} (use {{YYYY}}, {{MM}}, {{DD}}, {{0000}})"
                ));
            }
        }
        rest = &after[close + 1..];
    }
    match sequences {
        1 => Ok(()),
        0 => Err("needs a sequence placeholder such as {0000}".into()),
        _ => Err("has more than one sequence placeholder".into()),
    }
}

/// Every dependency cycle among an entity's formula fields, each as the keys along it
/// (the first key repeated at the end).
fn formula_cycles(entity: &Entity) -> Vec<Vec<&str>> {
    let mut search = CycleSearch {
        reads: formula_reads(entity),
        stack: Vec::new(),
        finished: HashSet::new(),
        cycles: Vec::new(),
    };
    for field in entity.fields.iter().filter(|f| f.formula.is_some()) {
        search.visit(&field.key);
    }
    search.cycles
}

/// For each formula field, the formula fields its formula reads.
fn formula_reads(entity: &Entity) -> BTreeMap<&str, Vec<&str>> {
    entity
        .fields
        .iter()
        .filter_map(|field| {
            let expr = Expr::compile(field.formula.as_deref()?).ok()?;
            let reads = expr
                .variables()
                .iter()
                .filter_map(|name| entity.field(name))
                .filter(|read| read.formula.is_some())
                .map(|read| read.key.as_str())
                .collect();
            Some((field.key.as_str(), reads))
        })
        .collect()
}

/// Depth-first search over formula reads that records each back edge as a cycle.
struct CycleSearch<'e> {
    reads: BTreeMap<&'e str, Vec<&'e str>>,
    stack: Vec<&'e str>,
    finished: HashSet<&'e str>,
    cycles: Vec<Vec<&'e str>>,
}

impl<'e> CycleSearch<'e> {
    fn visit(&mut self, key: &'e str) {
        if self.finished.contains(key) {
            return;
        }
        if let Some(start) = self.stack.iter().position(|k| *k == key) {
            let mut cycle = self.stack[start..].to_vec();
            cycle.push(key);
            self.cycles.push(cycle);
            return;
        }
        self.stack.push(key);
        for read in self.reads.get(key).cloned().unwrap_or_default() {
            self.visit(read);
        }
        self.stack.pop();
        self.finished.insert(key);
    }
}

struct Validator<'p> {
    pkg: &'p Package,
    problems: Vec<Problem>,
}

impl<'p> Validator<'p> {
    fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn has_role(&self, key: &str) -> bool {
        self.pkg.roles.iter().any(|r| r.key == key)
    }

    fn package(&mut self) {
        let pkg = self.pkg;
        if pkg.format != FORMAT {
            self.report(
                "format",
                format!("unsupported format {} (expected {FORMAT})", pkg.format),
            );
        }
        self.keys(
            "entity",
            &keyed("entities", &pkg.entities, |e| {
                (e.key.as_str(), e.renamed_from.as_deref())
            }),
        );
        self.keys(
            "role",
            &keyed("roles", &pkg.roles, |r| (r.key.as_str(), None)),
        );
        self.keys(
            "flow",
            &keyed("flows", &pkg.flows, |f| (f.key.as_str(), None)),
        );
        self.keys(
            "report",
            &keyed("reports", &pkg.reports, |r| (r.key.as_str(), None)),
        );
        self.keys(
            "dashboard",
            &keyed("dashboards", &pkg.dashboards, |d| (d.key.as_str(), None)),
        );
        self.keys(
            "webhook",
            &keyed("webhooks", &pkg.webhooks, |w| (w.key.as_str(), None)),
        );
        self.keys(
            "schedule",
            &keyed("schedules", &pkg.schedules, |s| (s.key.as_str(), None)),
        );
        self.keys(
            "hook",
            &keyed("hooks", &pkg.hooks, |h| (h.key.as_str(), None)),
        );
        self.duplicates(
            "plugin",
            pkg.plugins
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("plugins[{i}].name"), p.name.as_str())),
        );
        for (i, entity) in pkg.entities.iter().enumerate() {
            self.entity(&format!("entities[{i}]"), entity);
        }
        if let Some(logo) = pkg.branding.as_ref().and_then(|b| b.logo.as_deref())
            && !crate::store::files::is_file_id(logo)
        {
            self.report(
                "branding.logo",
                "name an uploaded image by its file id (POST /api/files)",
            );
        }
        for (i, role) in pkg.roles.iter().enumerate() {
            self.role(&format!("roles[{i}]"), role);
        }
        for (i, flow) in pkg.flows.iter().enumerate() {
            self.flow(&format!("flows[{i}]"), flow);
        }
        for (i, report) in pkg.reports.iter().enumerate() {
            self.report_definition(&format!("reports[{i}]"), report);
        }
        for (i, dashboard) in pkg.dashboards.iter().enumerate() {
            self.dashboard(&format!("dashboards[{i}]"), dashboard);
        }
        for (i, webhook) in pkg.webhooks.iter().enumerate() {
            self.webhook(&format!("webhooks[{i}]"), webhook);
        }
        for (i, schedule) in pkg.schedules.iter().enumerate() {
            self.schedule(&format!("schedules[{i}]"), schedule);
        }
        for (i, hook) in pkg.hooks.iter().enumerate() {
            self.hook(&format!("hooks[{i}]"), hook);
        }
    }

    /// The hook's entity, and its script compiled (not run).
    fn hook(&mut self, path: &str, hook: &Hook) {
        if self.pkg.entity(&hook.entity).is_none() {
            self.report(
                format!("{path}.entity"),
                format!("unknown entity {:?}", hook.entity),
            );
        }
        if hook.script.trim().is_empty() {
            self.report(format!("{path}.script"), "write the script's body");
        } else if hook.script.len() > MAX_SCRIPT_BYTES {
            self.report(
                format!("{path}.script"),
                format!("a script has at most {MAX_SCRIPT_BYTES} bytes"),
            );
        } else if let Err(error) = crate::plugin::scripts::check(&hook.key, &hook.script) {
            self.report(format!("{path}.script"), error.to_string());
        }
    }

    /// The cron pattern, the entity, the role and the templates of a scheduled rule;
    /// its filter is compiled with the catalog, like a report's.
    fn schedule(&mut self, path: &str, schedule: &Schedule) {
        if let Err(error) = crate::plugin::schedules::parse_cron(&schedule.cron) {
            self.report(format!("{path}.cron"), error);
        }
        let notify = &schedule.notify;
        if self.pkg.entity(&notify.entity).is_none() {
            self.report(
                format!("{path}.notify.entity"),
                format!("unknown entity {:?}", notify.entity),
            );
        }
        if let NoticeRecipients::Role(role) = &notify.to
            && !self.has_role(role)
        {
            self.report(
                format!("{path}.notify.to.role"),
                format!("unknown role {role:?}"),
            );
        }
        let templates = [
            ("title", Some(&notify.title)),
            ("body", notify.body.as_ref()),
        ];
        for (name, template) in templates {
            if let Some(template) = template
                && let Err(message) = template::check(&minijinja::Environment::new(), template)
            {
                self.report(format!("{path}.notify.{name}"), message);
            }
        }
    }

    fn webhook(&mut self, path: &str, webhook: &Webhook) {
        let url = webhook.url.trim();
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.len() <= "https://".len() || url.contains(char::is_whitespace) {
            self.report(
                format!("{path}.url"),
                format!("{:?} is not an http:// or https:// URL", webhook.url),
            );
        }
        if webhook.events.is_empty() {
            self.report(
                format!("{path}.events"),
                "list at least one event: created, updated, stage_changed, deleted, approved, rejected",
            );
        }
        let entity = webhook
            .entity
            .as_deref()
            .map(|key| (key, self.pkg.entity(key)));
        match (entity, &webhook.when) {
            (Some((key, None)), _) => {
                self.report(format!("{path}.entity"), format!("unknown entity {key:?}"));
            }
            (Some((_, Some(entity))), Some(when)) => {
                self.expression(entity, format!("{path}.when"), when);
            }
            (None, Some(_)) => {
                self.report(
                    format!("{path}.when"),
                    "a condition reads one entity's fields: set `entity` too",
                );
            }
            _ => {}
        }
        if webhook.secret.as_deref().is_some_and(|s| s.len() < 16) {
            self.report(
                format!("{path}.secret"),
                "use at least 16 characters: the secret is what proves a delivery is ours",
            );
        }
        if let Some(text) = &webhook.text
            && let Err(message) = template::check(&minijinja::Environment::new(), text)
        {
            self.report(format!("{path}.text"), message);
        }
    }

    // ---- keys ----

    /// Identifiers, duplicates and rename conflicts of one list of keyed items.
    fn keys(&mut self, what: &str, items: &[Keyed]) {
        for item in items {
            self.identifier(format!("{}.key", item.path), item.key);
            if let Some(old) = item.renamed_from {
                self.identifier(format!("{}.renamed_from", item.path), old);
            }
        }
        self.duplicates(
            &format!("{what} key"),
            items.iter().map(|i| (format!("{}.key", i.path), i.key)),
        );
        self.duplicates(
            "renamed_from",
            items.iter().filter_map(|i| {
                let old = i.renamed_from?;
                Some((format!("{}.renamed_from", i.path), old))
            }),
        );
        self.rename_conflicts(what, items);
    }

    fn identifier(&mut self, path: String, key: &str) {
        if let Err(message) = check_identifier(key) {
            self.report(path, message);
        }
    }

    /// Reports every value after its first occurrence.
    fn duplicates<'k>(&mut self, what: &str, values: impl IntoIterator<Item = (String, &'k str)>) {
        let mut first_at: HashMap<&str, String> = HashMap::new();
        for (path, value) in values {
            match first_at.get(value) {
                Some(first) => {
                    let message = format!("duplicate {what} {value:?} (first at {first})");
                    self.report(path, message);
                }
                None => {
                    first_at.insert(value, path);
                }
            }
        }
    }

    /// A renamed item's old key must not still be another item's key.
    fn rename_conflicts(&mut self, what: &str, items: &[Keyed]) {
        for item in items {
            let Some(old) = item.renamed_from else {
                continue;
            };
            let holder = items
                .iter()
                .find(|other| other.key == old && other.path != item.path);
            if let Some(holder) = holder {
                let message = format!(
                    "cannot rename from {old:?}: it is still the key of {what} {}",
                    holder.path
                );
                self.report(format!("{}.renamed_from", item.path), message);
            }
        }
    }

    fn roles_exist(&mut self, base: &str, roles: &[String]) {
        for (i, role) in roles.iter().enumerate() {
            if !self.has_role(role) {
                self.report(format!("{base}[{i}]"), format!("unknown role {role:?}"));
            }
        }
    }

    fn fields_exist(&mut self, base: &str, entity: &Entity, keys: &[String]) {
        for (i, key) in keys.iter().enumerate() {
            if entity.field(key).is_none() {
                self.report(format!("{base}[{i}]"), no_field(entity, key));
            }
        }
    }

    /// Compiles an expression and checks that it reads only the entity's fields and
    /// uses only filters and tests that exist. Returns it when all is well.
    fn expression(&mut self, entity: &Entity, path: String, source: &str) -> Option<Expr> {
        let expr = match Expr::compile(source) {
            Ok(expr) => expr,
            Err(err) => {
                self.report(path, format!("expression does not compile: {err}"));
                return None;
            }
        };
        let before = self.problems.len();
        for name in expr.variables() {
            if !is_expression_variable(entity, &name) {
                let message = format!(
                    "{name:?} is neither a field of entity {:?} nor a function",
                    entity.key
                );
                self.report(path.clone(), message);
            }
        }
        for message in expr.unknown_filters_and_tests() {
            self.report(path.clone(), message);
        }
        (self.problems.len() == before).then_some(expr)
    }

    // ---- entities ----

    fn entity(&mut self, path: &str, entity: &Entity) {
        let fields_path = format!("{path}.fields");
        self.keys(
            "field",
            &keyed(&fields_path, &entity.fields, |f| {
                (f.key.as_str(), f.renamed_from.as_deref())
            }),
        );
        for (i, field) in entity.fields.iter().enumerate() {
            self.field(entity, &format!("{fields_path}[{i}]"), field);
        }
        self.formula_cycles(path, entity);
        self.title_field(path, entity);
        self.prints(&format!("{path}.prints"), entity);
        self.conversions(&format!("{path}.conversions"), entity);
        if let Some(layout) = &entity.layout {
            self.layout(&format!("{path}.layout"), entity, layout);
        }
        if let Some(pipeline) = &entity.pipeline {
            self.pipeline(&format!("{path}.pipeline"), entity, pipeline);
        }
        if let Some(followup) = &entity.followup {
            self.followup(&format!("{path}.followup"), entity, followup);
        }
        if let Some(pool) = &entity.pool {
            if pool.reclaim_after_days < 1 {
                self.report(
                    format!("{path}.pool.reclaim_after_days"),
                    "must be at least 1 day",
                );
            }
            if pool.hold_limit == Some(0) {
                self.report(
                    format!("{path}.pool.hold_limit"),
                    "must be at least 1 (leave it out for no limit)",
                );
            }
        }
        if let Some(check) = &entity.duplicate_check {
            self.roles_exist(
                &format!("{path}.duplicate_check.force_roles"),
                &check.force_roles,
            );
            if check.block && !entity.fields.iter().any(|f| f.searchable) {
                self.report(
                    format!("{path}.duplicate_check.block"),
                    "needs at least one searchable field to compare",
                );
            }
        }
    }

    fn formula_cycles(&mut self, path: &str, entity: &Entity) {
        for cycle in formula_cycles(entity) {
            let start = entity
                .fields
                .iter()
                .position(|f| f.key == cycle[0])
                .expect("a cycle runs through the entity's own fields");
            let message = format!("formula cycle: {}", cycle.join(" -> "));
            self.report(format!("{path}.fields[{start}].formula"), message);
        }
    }

    fn title_field(&mut self, path: &str, entity: &Entity) {
        let Some(key) = &entity.title_field else {
            return;
        };
        let path = format!("{path}.title_field");
        match entity.field(key).map(|f| f.field_type) {
            None => self.report(path, no_field(entity, key)),
            Some(t @ (FieldType::MultiSelect | FieldType::Attachment | FieldType::LongText)) => {
                self.report(path, format!("a {} field cannot be the title", t.as_str()));
            }
            Some(_) => {}
        }
    }

    /// Print formats: keys, and templates that compile.
    fn prints(&mut self, path: &str, entity: &Entity) {
        for (i, print) in entity.prints.iter().enumerate() {
            self.identifier(format!("{path}[{i}].key"), &print.key);
            if let Err(message) = crate::print::check(&print.template) {
                self.report(format!("{path}[{i}].template"), message);
            }
        }
        self.duplicates(
            "print format",
            entity
                .prints
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("{path}[{i}].key"), p.key.as_str())),
        );
    }

    // ---- conversions ----

    /// Conversions: keys, the condition, the records created and what is set on the
    /// converted record.
    fn conversions(&mut self, path: &str, entity: &Entity) {
        self.keys(
            "conversion",
            &keyed(path, &entity.conversions, |c| (c.key.as_str(), None)),
        );
        for (i, conversion) in entity.conversions.iter().enumerate() {
            self.conversion(&format!("{path}[{i}]"), entity, conversion);
        }
    }

    fn conversion(&mut self, path: &str, entity: &Entity, conversion: &Conversion) {
        if let Some(when) = &conversion.when {
            self.expression(entity, format!("{path}.when"), when);
        }
        let creates_path = format!("{path}.creates");
        if conversion.creates.is_empty() {
            self.report(
                creates_path.clone(),
                "a conversion needs at least one record to create",
            );
        }
        self.duplicates(
            "alias",
            conversion
                .creates
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{creates_path}[{i}].as"), t.alias.as_str())),
        );
        self.duplicates(
            "link_field",
            conversion.creates.iter().enumerate().filter_map(|(i, t)| {
                let link = t.link_field.as_deref()?;
                Some((format!("{creates_path}[{i}].link_field"), link))
            }),
        );
        for (i, target) in conversion.creates.iter().enumerate() {
            self.conversion_target(
                &format!("{creates_path}[{i}]"),
                entity,
                conversion,
                i,
                target,
            );
        }
        self.set_fields(&format!("{path}.set"), &conversion.set, entity);
        for key in conversion.set.keys() {
            if let Some(i) = conversion
                .creates
                .iter()
                .position(|t| t.link_field.as_deref() == Some(key))
            {
                let message = format!(
                    "{key:?} is the link_field of creates[{i}]: the conversion sets it to the new record's id"
                );
                self.report(format!("{path}.set.{key}"), message);
            }
        }
    }

    /// One created record: its entity, alias, link field, and the map filling its
    /// fields from the converted record (`source`) or from records created before it.
    fn conversion_target(
        &mut self,
        path: &str,
        source: &Entity,
        conversion: &Conversion,
        index: usize,
        target: &ConversionTarget,
    ) {
        self.identifier(format!("{path}.as"), &target.alias);
        if target.alias == "source" {
            self.report(
                format!("{path}.as"),
                "\"source\" names the converted record in the answer; choose another alias",
            );
        }
        let Some(entity) = self.pkg.entity(&target.entity) else {
            let message = format!("unknown entity {:?}", target.entity);
            self.report(format!("{path}.entity"), message);
            return;
        };
        if let Some(link) = &target.link_field {
            let link_path = format!("{path}.link_field");
            match source.field(link) {
                None => self.report(link_path, no_field(source, link)),
                Some(field)
                    if field.field_type != FieldType::Reference
                        || field.target.as_deref() != Some(entity.key.as_str()) =>
                {
                    let message = format!(
                        "{link:?} must be a reference field of {} pointing at {}",
                        source.key, entity.key
                    );
                    self.report(link_path, message);
                }
                Some(field) if field.is_computed() => {
                    self.report(link_path, format!("{link:?} is computed and cannot be set"));
                }
                Some(_) => {}
            }
        }
        for (to, from) in &target.map {
            let map_path = format!("{path}.map.{to}");
            let Some(to_field) = entity.field(to) else {
                self.report(map_path, no_field(entity, to));
                continue;
            };
            if to_field.is_computed() {
                self.report(map_path, format!("{to:?} is computed and cannot be filled"));
                continue;
            }
            let checked = match ConversionTarget::alias_of(from) {
                Some(alias) => check_alias(conversion, index, alias, to_field),
                None if from == ConversionTarget::SOURCE_ID => {
                    check_reference_to(to_field, &source.key, "the converted record's id")
                }
                None => match source.field(from) {
                    None => Err(format!(
                        "{}; give a field of {:?}, id (the converted record's), or $alias (the id of a record created before)",
                        no_field(source, from),
                        source.key
                    )),
                    Some(from_field) => check_mapping(from_field, to_field),
                },
            };
            if let Err(message) = checked {
                self.report(map_path, message);
            }
        }
    }

    fn layout(&mut self, path: &str, entity: &Entity, layout: &Layout) {
        let mut placed = Vec::new();
        for (s, section) in layout.sections.iter().enumerate() {
            let section_path = format!("{path}.sections[{s}]");
            if !(1..=4).contains(&section.columns) {
                self.report(format!("{section_path}.columns"), "must be between 1 and 4");
            }
            self.fields_exist(&format!("{section_path}.fields"), entity, &section.fields);
            for (i, key) in section.fields.iter().enumerate() {
                placed.push((format!("{section_path}.fields[{i}]"), key.as_str()));
            }
        }
        self.duplicates("layout field", placed);
    }

    fn pipeline(&mut self, path: &str, entity: &Entity, pipeline: &Pipeline) {
        let stages_path = format!("{path}.stages");
        if pipeline.stages.is_empty() {
            self.report(stages_path.clone(), "a pipeline needs at least one stage");
        }
        self.keys(
            "stage",
            &keyed(&stages_path, &pipeline.stages, |s| (s.key.as_str(), None)),
        );
        for (i, stage) in pipeline.stages.iter().enumerate() {
            let stage_path = format!("{stages_path}[{i}]");
            if stage.probability.is_some_and(|p| p > 100) {
                self.report(
                    format!("{stage_path}.probability"),
                    "must be between 0 and 100",
                );
            }
            if stage.won && stage.lost {
                self.report(
                    format!("{stage_path}.lost"),
                    "a stage cannot be both won and lost",
                );
            }
            let required = format!("{stage_path}.required_fields");
            self.fields_exist(&required, entity, &stage.required_fields);
        }
        if let Transitions::List(transitions) = &pipeline.transitions {
            let pairs: Vec<(String, String)> = transitions
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        format!("{path}.transitions[{i}]"),
                        format!("{} -> {}", t.from, t.to),
                    )
                })
                .collect();
            self.duplicates(
                "transition",
                pairs.iter().map(|(p, pair)| (p.clone(), pair.as_str())),
            );
            for (i, transition) in transitions.iter().enumerate() {
                let transition_path = format!("{path}.transitions[{i}]");
                for (end, stage) in [("from", &transition.from), ("to", &transition.to)] {
                    if let Err(message) = check_stage(entity, stage) {
                        self.report(format!("{transition_path}.{end}"), message);
                    }
                }
                self.roles_exist(&format!("{transition_path}.roles"), &transition.roles);
            }
        }
    }

    fn followup(&mut self, path: &str, entity: &Entity, followup: &Followup) {
        let select = entity.field(&followup.field);
        match select {
            None => self.report(format!("{path}.field"), no_field(entity, &followup.field)),
            Some(field) if field.field_type != FieldType::Select => {
                let message = format!(
                    "the follow-up field must be a select, not {}",
                    field.field_type.as_str()
                );
                self.report(format!("{path}.field"), message);
            }
            Some(_) => {}
        }
        let options = select.filter(|f| f.field_type == FieldType::Select);
        for (value, days) in &followup.days {
            let day_path = format!("{path}.days.{value}");
            if let Some(field) = options.filter(|f| !is_option(f, value)) {
                let message = format!("{value:?} is not an option of {:?}", field.key);
                self.report(day_path.clone(), message);
            }
            if *days < 1 {
                self.report(day_path, "must be at least 1 day");
            }
        }
        if let Some(link) = &followup.activity {
            let link_path = format!("{path}.activity");
            match self.pkg.entity(&link.entity) {
                None => {
                    let message = format!("unknown entity {:?}", link.entity);
                    self.report(format!("{link_path}.entity"), message);
                }
                Some(activity) => match activity.field(&link.field) {
                    Some(field)
                        if field.field_type == FieldType::Reference
                            && field.target.as_deref() == Some(entity.key.as_str()) => {}
                    _ => {
                        let message = format!(
                            "{:?} must be a reference field of {} pointing at {}",
                            link.field, link.entity, entity.key
                        );
                        self.report(format!("{link_path}.field"), message);
                    }
                },
            }
        }
    }

    // ---- fields ----

    fn field(&mut self, entity: &Entity, path: &str, field: &Field) {
        if expr::FUNCTIONS.contains(&field.key.as_str()) {
            let message = format!(
                "{:?} is the name of the expression function {}(), so expressions could not read this field; choose another key (e.g. \"{}_value\")",
                field.key, field.key, field.key
            );
            self.report(format!("{path}.key"), message);
        }
        if field.read_only && field.required && field.default.is_none() && !field.is_computed() {
            self.report(
                format!("{path}.required"),
                "a read-only field that is required needs a default, or no record could be created",
            );
        }
        self.options(path, field);
        self.target(path, field);
        self.scale(path, field);
        self.max_length(path, field);
        self.min_max(path, field);
        self.pattern(path, field);
        self.auto_number_format(path, field);
        self.unique(path, field);
        self.formula(entity, path, field);
        self.default(entity, path, field);
        for (option, source) in [
            ("visible_if", &field.visible_if),
            ("required_if", &field.required_if),
        ] {
            if let Some(source) = source {
                self.expression(entity, format!("{path}.{option}"), source);
            }
        }
    }

    /// Reports an option that the field's type does not take.
    fn not_for_type(&mut self, path: &str, option: &str, field: &Field, allowed_on: &str) {
        let message = format!(
            "{option} is only allowed on {allowed_on} fields, not on {}",
            field.field_type.as_str()
        );
        self.report(format!("{path}.{option}"), message);
    }

    fn options(&mut self, path: &str, field: &Field) {
        let is_select = matches!(field.field_type, FieldType::Select | FieldType::MultiSelect);
        let options_path = format!("{path}.options");
        if !is_select {
            if !field.options.is_empty() {
                self.not_for_type(path, "options", field, "select and multi_select");
            }
            return;
        }
        if field.options.is_empty() {
            self.report(
                options_path.clone(),
                "a select field needs at least one option",
            );
        }
        for (i, option) in field.options.iter().enumerate() {
            if option.value.is_empty() {
                self.report(format!("{options_path}[{i}].value"), "must not be empty");
            }
        }
        self.duplicates(
            "option value",
            field
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("{options_path}[{i}].value"), o.value.as_str())),
        );
    }

    fn target(&mut self, path: &str, field: &Field) {
        match (&field.target, field.field_type == FieldType::Reference) {
            (None, true) => {
                self.report(
                    format!("{path}.target"),
                    "a reference field needs a target entity",
                );
            }
            (Some(_), false) => self.not_for_type(path, "target", field, "reference"),
            (Some(target), true) if self.pkg.entity(target).is_none() => {
                self.report(
                    format!("{path}.target"),
                    format!("unknown entity {target:?}"),
                );
            }
            _ => {}
        }
    }

    fn scale(&mut self, path: &str, field: &Field) {
        let Some(scale) = field.scale else { return };
        if field.field_type != FieldType::Decimal {
            self.not_for_type(path, "scale", field, "decimal");
        } else if scale > 6 {
            self.report(format!("{path}.scale"), "must be between 0 and 6");
        }
    }

    fn max_length(&mut self, path: &str, field: &Field) {
        let Some(max_length) = field.max_length else {
            return;
        };
        if !field.field_type.is_textual() {
            self.not_for_type(path, "max_length", field, "text-like");
        } else if max_length < 1 {
            self.report(format!("{path}.max_length"), "must be at least 1");
        }
    }

    fn min_max(&mut self, path: &str, field: &Field) {
        let bounds = [("min", &field.min), ("max", &field.max)];
        if !field.field_type.is_numeric() {
            for (option, bound) in bounds {
                if bound.is_some() {
                    self.not_for_type(path, option, field, "integer and decimal");
                }
            }
            return;
        }
        if field.field_type == FieldType::Integer {
            for (option, bound) in bounds {
                if bound.as_ref().is_some_and(|n| !(n.is_i64() || n.is_u64())) {
                    let message = "must be a whole number for an integer field";
                    self.report(format!("{path}.{option}"), message);
                }
            }
        }
        if let (Some(min), Some(max)) = (&field.min, &field.max)
            && min.as_f64() > max.as_f64()
        {
            self.report(
                format!("{path}.min"),
                format!("min {min} is greater than max {max}"),
            );
        }
    }

    fn pattern(&mut self, path: &str, field: &Field) {
        let Some(pattern) = &field.pattern else {
            return;
        };
        if !field.field_type.is_textual() {
            self.not_for_type(path, "pattern", field, "text-like");
        } else if let Err(err) = Regex::new(pattern) {
            let message = format!("is not a valid regular expression: {err}");
            self.report(format!("{path}.pattern"), message);
        }
    }

    fn auto_number_format(&mut self, path: &str, field: &Field) {
        let Some(format) = &field.format else { return };
        if field.field_type != FieldType::AutoNumber {
            self.not_for_type(path, "format", field, "auto_number");
        } else if let Err(problem) = check_auto_number_format(format) {
            self.report(format!("{path}.format"), format!("{format:?} {problem}"));
        }
    }

    fn unique(&mut self, path: &str, field: &Field) {
        let t = field.field_type;
        let forbidden = matches!(
            t,
            FieldType::LongText
                | FieldType::MultiSelect
                | FieldType::Attachment
                | FieldType::Boolean
        );
        if field.unique && forbidden {
            let message = format!("a {} field cannot be unique", t.as_str());
            self.report(format!("{path}.unique"), message);
        }
    }

    fn formula(&mut self, entity: &Entity, path: &str, field: &Field) {
        let Some(source) = &field.formula else { return };
        let formula_path = format!("{path}.formula");
        let t = field.field_type;
        if matches!(
            t,
            FieldType::AutoNumber | FieldType::Attachment | FieldType::MultiSelect
        ) {
            let message = format!("a {} field cannot have a formula", t.as_str());
            self.report(formula_path.clone(), message);
        }
        if field.default.is_some() {
            self.report(
                formula_path.clone(),
                "a formula field cannot have a default",
            );
        }
        if field.required {
            self.report(formula_path.clone(), "a formula field cannot be required");
        }
        self.expression(entity, formula_path, source);
    }

    /// A default is a literal or an expression ([`Field::default_spec`]). A literal
    /// must be a valid value of the field; so must the value of an expression that
    /// reads no field (it is computed here once to see).
    fn default(&mut self, entity: &Entity, path: &str, field: &Field) {
        let Some(default) = field.default_spec() else {
            return;
        };
        let default_path = format!("{path}.default");
        if matches!(
            field.field_type,
            FieldType::AutoNumber | FieldType::Attachment
        ) {
            let message = format!(
                "a {} field cannot have a default",
                field.field_type.as_str()
            );
            self.report(default_path, message);
            return;
        }
        match default {
            DefaultSpec::Literal(literal) => {
                if let Err(message) = check_default(field, literal) {
                    self.report(default_path, message);
                }
            }
            DefaultSpec::Expression(source) => {
                let Some(expr) = self.expression(entity, default_path.clone(), source) else {
                    if field.field_type.is_textual() && !source.contains(['\'', '"']) {
                        // Most likely meant as text: say how to write that.
                        let message = format!(
                            "a string default is an expression; to default to this text, quote it inside the string: \"'{source}'\""
                        );
                        self.report(default_path, message);
                    }
                    return;
                };
                if !expr.variables().is_empty() {
                    return;
                }
                let result = expr
                    .eval(&serde_json::Map::new())
                    .map_err(|e| format!("default could not be computed: {e}"))
                    .and_then(|value| check_default(field, &value));
                if let Err(message) = result {
                    self.report(default_path, message);
                }
            }
        }
    }

    // ---- roles ----

    fn role(&mut self, path: &str, role: &Role) {
        for (i, permission) in role.permissions.iter().enumerate() {
            let permission_path = format!("{path}.permissions[{i}]");
            if permission.actions.is_empty() {
                self.report(
                    format!("{permission_path}.actions"),
                    "must name at least one action",
                );
            }
            let Some(entity) = self.pkg.entity(&permission.entity) else {
                let message = format!("unknown entity {:?}", permission.entity);
                self.report(format!("{permission_path}.entity"), message);
                continue;
            };
            self.fields_exist(
                &format!("{permission_path}.deny_read"),
                entity,
                &permission.deny_read,
            );
            let deny_write = format!("{permission_path}.deny_write");
            self.fields_exist(&deny_write, entity, &permission.deny_write);
        }
    }

    // ---- flows ----

    fn flow(&mut self, path: &str, flow: &Flow) {
        let steps_path = format!("{path}.steps");
        if flow.steps.is_empty() {
            self.report(steps_path.clone(), "a flow needs at least one step");
        }
        self.keys(
            "step",
            &keyed(&steps_path, &flow.steps, |s| (s.key.as_str(), None)),
        );
        for (i, step) in flow.steps.iter().enumerate() {
            self.approvers(&format!("{steps_path}[{i}].approvers"), &step.approvers);
        }
        if let Some(notify) = &flow.notify {
            self.roles_exist(&format!("{path}.notify.cc"), &notify.cc);
        }
        match self.pkg.entity(&flow.entity) {
            Some(entity) => self.flow_on_entity(path, flow, entity),
            None => {
                let message = format!("unknown entity {:?}", flow.entity);
                self.report(format!("{path}.entity"), message);
            }
        }
    }

    /// Exactly one approver rule, and a role rule names a role.
    fn approvers(&mut self, path: &str, approvers: &Approvers) {
        let rules: Vec<&str> = [
            ("role", approvers.role.is_some()),
            ("user", approvers.user.is_some()),
            ("manager_of", approvers.manager_of.is_some()),
            ("field", approvers.field.is_some()),
        ]
        .into_iter()
        .filter_map(|(rule, given)| given.then_some(rule))
        .collect();
        if rules.len() != 1 {
            let message = format!(
                "exactly one of role, user, manager_of, field is required (found {})",
                if rules.is_empty() {
                    "none".into()
                } else {
                    rules.join(", ")
                }
            );
            self.report(path, message);
        }
        if let Some(role) = approvers.role.as_ref().filter(|r| !self.has_role(r)) {
            self.report(format!("{path}.role"), format!("unknown role {role:?}"));
        }
    }

    /// The parts of a flow that refer to its entity's fields and stages.
    fn flow_on_entity(&mut self, path: &str, flow: &Flow, entity: &Entity) {
        if let Some(trigger) = &flow.trigger {
            self.trigger(&format!("{path}.trigger"), trigger, entity);
        }
        for (i, step) in flow.steps.iter().enumerate() {
            self.step_on_entity(&format!("{path}.steps[{i}]"), step, entity);
        }
        for (outcome, effect) in [
            ("on_approve", &flow.on_approve),
            ("on_reject", &flow.on_reject),
        ] {
            if let Some(effect) = effect {
                self.effect(&format!("{path}.{outcome}"), effect, entity);
            }
        }
    }

    /// A stage_enter trigger names a stage of the pipeline; other triggers name none.
    fn trigger(&mut self, path: &str, trigger: &Trigger, entity: &Entity) {
        let stage_path = format!("{path}.stage");
        match (trigger.on, &trigger.stage) {
            (TriggerOn::StageEnter, None) => {
                self.report(stage_path, "a stage_enter trigger needs a stage");
            }
            (TriggerOn::StageEnter, Some(stage)) => {
                if let Err(message) = check_stage(entity, stage) {
                    self.report(stage_path, message);
                }
            }
            (_, Some(_)) => self.report(stage_path, "stage is only used with on: stage_enter"),
            (_, None) => {}
        }
        if let Some(when) = &trigger.when {
            self.expression(entity, format!("{path}.when"), when);
        }
    }

    fn step_on_entity(&mut self, path: &str, step: &FlowStep, entity: &Entity) {
        if let Some(key) = &step.approvers.field {
            let field_path = format!("{path}.approvers.field");
            match entity.field(key) {
                None => self.report(field_path, no_field(entity, key)),
                Some(field) if field.field_type != FieldType::User => {
                    self.report(field_path, format!("{key:?} is not a user field"));
                }
                Some(_) => {}
            }
        }
        if let Some(when) = &step.when {
            self.expression(entity, format!("{path}.when"), when);
        }
    }

    /// What a finished flow sets: writable fields with fitting literal values, a stage.
    fn effect(&mut self, path: &str, effect: &FlowEffect, entity: &Entity) {
        self.set_fields(&format!("{path}.set"), &effect.set, entity);
        if let Some(stage) = &effect.stage
            && let Err(message) = check_stage(entity, stage)
        {
            self.report(format!("{path}.stage"), message);
        }
    }

    /// Fields set to literal values (a flow's effect, a conversion's `set`): fields of
    /// the entity, not computed, with values that fit; `null` clears unless required.
    fn set_fields(&mut self, path: &str, set: &serde_json::Map<String, Value>, entity: &Entity) {
        for (key, value) in set {
            let set_path = format!("{path}.{key}");
            let Some(field) = entity.field(key) else {
                self.report(set_path, no_field(entity, key));
                continue;
            };
            if field.is_computed() {
                self.report(set_path, format!("{key:?} is computed and cannot be set"));
            } else if value.is_null() {
                if field.required {
                    self.report(
                        set_path,
                        format!("{key:?} is required and cannot be cleared"),
                    );
                }
            } else if let Err(message) = check_value(field, value) {
                self.report(set_path, message);
            }
        }
    }

    // ---- reports and dashboards ----

    fn report_definition(&mut self, path: &str, report: &Report) {
        if report.filter.as_ref().is_some_and(|f| !f.is_object()) {
            self.report(format!("{path}.filter"), "a filter must be a JSON object");
        }
        if report.limit == Some(0) {
            self.report(
                format!("{path}.limit"),
                "must be at least 1 (leave it out for no limit)",
            );
        }
        self.roles_exist(&format!("{path}.roles"), &report.roles);
        let Some(entity) = self.pkg.entity(&report.entity) else {
            let message = format!("unknown entity {:?}", report.entity);
            self.report(format!("{path}.entity"), message);
            return;
        };
        for (i, group) in report.group_by.iter().enumerate() {
            self.group_by(&format!("{path}.group_by[{i}]"), group, entity);
        }
        for (i, measure) in report.measures.iter().enumerate() {
            self.measure(&format!("{path}.measures[{i}]"), measure, entity);
        }
        for (i, sort) in report.sort.iter().enumerate() {
            let sortable = report.group_by.iter().any(|g| g.field == sort.field)
                || report.measures.iter().any(|m| m.key() == sort.field);
            if !sortable {
                let message = format!(
                    "sort by a group_by field or a measure key (such as count or sum:amount), not {:?}",
                    sort.field
                );
                self.report(format!("{path}.sort[{i}].field"), message);
            }
        }
        self.report_kind(path, report, entity);
    }

    /// What each built-in kind needs of the definition.
    fn report_kind(&mut self, path: &str, report: &Report, entity: &Entity) {
        let kind = report.kind.unwrap_or(ReportKind::Table);
        if report.compare.is_some() && kind != ReportKind::Comparison {
            self.report(
                format!("{path}.compare"),
                "only a comparison report compares periods",
            );
        }
        match kind {
            ReportKind::Table => {}
            ReportKind::Funnel | ReportKind::Forecast if entity.pipeline.is_none() => {
                let message = format!("a {} report needs an entity with a pipeline", kind.as_str());
                self.report(format!("{path}.kind"), message);
            }
            ReportKind::Funnel => {
                if report.group_by.iter().any(|g| g.field != "stage") {
                    let message = "a funnel groups by stage only (leave group_by out or give [{\"field\": \"stage\"}])";
                    self.report(format!("{path}.group_by"), message);
                }
            }
            ReportKind::Forecast => {
                if !report.measures.iter().any(|m| m.function == MeasureFn::Sum) {
                    let message = "a forecast weighs sums by stage probability: give a sum measure";
                    self.report(format!("{path}.measures"), message);
                }
            }
            ReportKind::Pivot => {
                if report.group_by.len() < 2 {
                    let message = "a pivot needs at least two group_by fields (rows, then columns)";
                    self.report(format!("{path}.group_by"), message);
                }
            }
            ReportKind::Comparison => {
                let period = report.compare.unwrap_or(ComparePeriod::Year);
                match report.group_by.first().and_then(|g| g.bucket) {
                    None => self.report(
                        format!("{path}.group_by"),
                        "a comparison groups first by a date field with a bucket",
                    ),
                    Some(bucket) if bucket_is_coarser(bucket, period) => self.report(
                        format!("{path}.group_by[0].bucket"),
                        "the bucket must not be coarser than the compared period",
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// A groupable column; date buckets only on dates and datetimes.
    fn group_by(&mut self, path: &str, group: &GroupBy, entity: &Entity) {
        match self.column_type(entity, &group.field) {
            Err(message) => self.report(format!("{path}.field"), message),
            Ok(t)
                if group.bucket.is_some()
                    && !matches!(t, FieldType::Date | FieldType::Datetime) =>
            {
                let message = format!("bucket needs a date or datetime, not {}", t.as_str());
                self.report(format!("{path}.bucket"), message);
            }
            Ok(_) => {}
        }
    }

    /// Every measure but count needs a column; sum and avg need a numeric one.
    fn measure(&mut self, path: &str, measure: &Measure, entity: &Entity) {
        let field_path = format!("{path}.field");
        let Some(column) = &measure.field else {
            if measure.function != MeasureFn::Count {
                self.report(field_path, "this measure needs a field");
            }
            return;
        };
        let needs_number = matches!(measure.function, MeasureFn::Sum | MeasureFn::Avg);
        match self.column_type(entity, column) {
            Err(message) => self.report(field_path, message),
            Ok(t) if needs_number && !t.is_numeric() => {
                let message = format!("sum and avg need a numeric field, not {}", t.as_str());
                self.report(field_path, message);
            }
            Ok(_) => {}
        }
    }

    /// The type of a report column: a field, a system column, or `reference.field`
    /// (one hop through a reference field to a column of its target).
    fn column_type(&self, entity: &Entity, column: &str) -> Result<FieldType, String> {
        let Some((reference, target_column)) = column.split_once('.') else {
            return plain_column_type(entity, column);
        };
        let field = entity
            .field(reference)
            .ok_or_else(|| no_field(entity, reference))?;
        if field.field_type != FieldType::Reference {
            return Err(format!("{reference:?} is not a reference field"));
        }
        let target = field
            .target
            .as_deref()
            .and_then(|t| self.pkg.entity(t))
            .ok_or_else(|| format!("reference {reference:?} has no valid target"))?;
        plain_column_type(target, target_column)
    }

    fn dashboard(&mut self, path: &str, dashboard: &Dashboard) {
        for (i, key) in dashboard.reports.iter().enumerate() {
            if !self.pkg.reports.iter().any(|r| &r.key == key) {
                self.report(
                    format!("{path}.reports[{i}]"),
                    format!("unknown report {key:?}"),
                );
            }
        }
        self.roles_exist(&format!("{path}.roles"), &dashboard.roles);
    }
}

fn bucket_is_coarser(bucket: DateBucket, period: ComparePeriod) -> bool {
    let months = |b: DateBucket| match b {
        DateBucket::Day | DateBucket::Week => 0,
        DateBucket::Month => 1,
        DateBucket::Quarter => 3,
        DateBucket::Year => 12,
    };
    months(bucket) > period.months()
}

/// The type of a field or of a system column reports may use.
fn plain_column_type(entity: &Entity, column: &str) -> Result<FieldType, String> {
    if let Some(field) = entity.field(column) {
        return Ok(field.field_type);
    }
    match column {
        "created_at" | "updated_at" => Ok(FieldType::Datetime),
        "owner" | "created_by" => Ok(FieldType::User),
        "stage" if entity.pipeline.is_some() => Ok(FieldType::Select),
        "stage" => Err(no_pipeline(entity)),
        _ => Err(no_field(entity, column)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example package of DESIGN.md, verbatim.
    const DESIGN_EXAMPLE: &str = r#"{
      "format": 1,
      "entities": [{
        "key": "customer", "label": "客户", "title_field": "name",
        "fields": [
          {"key": "name", "label": "单位名称", "type": "text", "required": true, "max_length": 200, "searchable": true},
          {"key": "phone", "label": "电话", "type": "phone", "searchable": true},
          {"key": "category", "label": "客户类别", "type": "select",
           "options": [{"value": "intent", "label": "意向客户"}, {"value": "nurture", "label": "培育客户"}]},
          {"key": "revenue", "label": "年营收", "type": "decimal", "scale": 2, "min": 0},
          {"key": "signed_on", "label": "签约日期", "type": "date"},
          {"key": "warranty_months", "type": "integer"},
          {"key": "warranty_until", "type": "date", "formula": "add_months(signed_on, warranty_months)"},
          {"key": "parent", "label": "上级单位", "type": "reference", "target": "customer"},
          {"key": "notes", "type": "long_text", "visible_if": "category == 'intent'"},
          {"key": "vip", "label": "重点客户", "type": "boolean", "read_only": true}
        ],
        "pipeline": {"stages": [
          {"key": "contact", "label": "初步接触", "probability": 10},
          {"key": "quote", "label": "报价", "probability": 40, "required_fields": ["phone"]},
          {"key": "signed", "label": "签单", "probability": 100, "won": true},
          {"key": "lost", "label": "流失", "probability": 0, "lost": true}],
          "transitions": "forward"},
        "followup": {"field": "category", "days": {"intent": 5, "nurture": 10}},
        "pool": {"reclaim_after_days": 30},
        "layout": {"sections": [{"label": "基本信息", "columns": 2, "fields": ["name", "phone", "category"]}]}
      }],
      "roles": [
        {"key": "sales", "label": "销售",
         "permissions": [{"entity": "customer", "actions": ["create", "read", "update"], "scope": "own",
                          "deny_write": ["revenue"], "deny_read": []}]},
        {"key": "manager", "label": "销售经理",
         "permissions": [{"entity": "customer", "actions": ["read", "update", "assign"], "scope": "subordinates"}]},
        {"key": "general_manager", "label": "总经理",
         "permissions": [{"entity": "customer", "actions": ["read", "export"], "scope": "all"}]},
        {"key": "finance", "label": "财务",
         "permissions": [{"entity": "customer", "actions": ["read"], "scope": "all"}]}
      ],
      "flows": [{
        "key": "big_deal", "label": "大额合同审批", "entity": "customer",
        "trigger": {"on": "submit", "when": "revenue > 100000"},
        "steps": [{"key": "mgr", "approvers": {"manager_of": "submitter"}},
                  {"key": "gm", "approvers": {"role": "general_manager"}, "mode": "any", "when": "revenue > 1000000"}],
        "on_approve": {"set": {"vip": true}}, "on_reject": {"stage": "contact"},
        "notify": {"cc": ["finance"]}
      }],
      "reports": [{
        "key": "funnel", "label": "销售漏斗", "entity": "customer",
        "filter": {"field": "created_at", "op": "gte", "value": {"relative": "start_of_year"}},
        "group_by": [{"field": "stage"}], "measures": [{"fn": "count"}, {"fn": "sum", "field": "revenue"}],
        "chart": "funnel", "roles": ["manager"]
      }]
    }"#;

    fn example() -> Value {
        serde_json::from_str(DESIGN_EXAMPLE).unwrap()
    }

    /// A package with one entity `item` holding the given fields.
    fn with_fields(fields: Value) -> Value {
        json!({"format": 1, "entities": [{"key": "item", "fields": fields}]})
    }

    fn problems(pkg: Value) -> Vec<Problem> {
        let pkg: Package = serde_json::from_value(pkg).expect("the test package parses");
        validate(&pkg)
    }

    #[track_caller]
    fn assert_problem(problems: &[Problem], path: &str, fragment: &str) {
        assert!(
            problems
                .iter()
                .any(|p| p.path == path && p.message.contains(fragment)),
            "no problem at {path} containing {fragment:?} in {problems:#?}"
        );
    }

    /// Asserts that the package has exactly this one problem.
    #[track_caller]
    fn assert_only(pkg: Value, path: &str, fragment: &str) {
        let found = problems(pkg);
        assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
        assert_problem(&found, path, fragment);
    }

    // ---- identifiers ----

    #[test]
    fn design_example_validates_cleanly() {
        let pkg = parse_package(&example()).expect("the DESIGN.md example is valid");
        assert_eq!(pkg.entities[0].fields.len(), 10);
        assert!(validate(&pkg).is_empty());
    }

    #[test]
    fn identifiers_name_their_problem() {
        assert_eq!(check_identifier("customer_2"), Ok(()));
        assert_eq!(check_identifier(&"a".repeat(40)), Ok(()));
        let cases = [
            ("order", "\"order\" is a reserved word"),
            ("select", "is a reserved word"),
            ("na'me", "must not contain quotes"),
            ("na\"me", "must not contain quotes"),
            ("名称", "no unicode"),
            ("Name", "must be lowercase"),
            (&"a".repeat(41), "too long"),
            ("_name", "must not start with _"),
            ("1name", "must start with a letter"),
            ("first-name", "may contain only a-z, 0-9 and _"),
            ("first name", "may contain only a-z, 0-9 and _"),
            ("", "must not be empty"),
            ("owner", "\"owner\" is a system column"),
            ("deleted_at", "is a system column"),
            ("ctid", "is a reserved word"),
        ];
        for (key, fragment) in cases {
            let err = check_identifier(key).expect_err(key);
            assert!(err.contains(fragment), "{key}: {err}");
        }
    }

    #[test]
    fn reserved_words_cover_both_databases() {
        let words = [
            "order",
            "select",
            "group",
            "table",
            "user",
            "from",
            "where",
            "index",
            "default",
            "check",
            "primary",
            "references",
            "limit",
            "offset",
            "column",
            "pragma",
            "vacuum",
            "lateral",
            "returning",
            "rowid",
        ];
        for word in words {
            assert!(is_reserved(word), "{word}");
        }
        assert!(is_reserved("ORDER"));
        assert!(!is_reserved("customer"));
        assert!(!is_reserved("name"));
        for list in [POSTGRES_RESERVED, SQLITE_KEYWORDS, HIDDEN_COLUMNS] {
            assert_eq!(list, list.to_ascii_lowercase());
        }
    }

    #[test]
    fn reserved_field_key_is_reported_with_its_path() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][9]["key"] = json!("order");
        pkg["flows"][0]["on_approve"]["set"] = json!({});
        assert_only(
            pkg,
            "entities[0].fields[9].key",
            "\"order\" is a reserved word",
        );
    }

    #[test]
    fn bad_keys_everywhere_are_reported() {
        let mut pkg = example();
        pkg["roles"][3]["key"] = json!("select");
        pkg["flows"][0]["notify"]["cc"] = json!([]);
        pkg["flows"][0]["key"] = json!("名称");
        pkg["flows"][0]["steps"][0]["key"] = json!("Mgr");
        pkg["reports"][0]["key"] = json!("na'me");
        pkg["entities"][0]["pipeline"]["stages"][1]["key"] = json!("_quote");
        pkg["dashboards"] = json!([{"key": "where", "reports": ["na'me"]}]);
        let found = problems(pkg);
        assert_problem(&found, "roles[3].key", "reserved word");
        assert_problem(&found, "flows[0].key", "unicode");
        assert_problem(&found, "flows[0].steps[0].key", "lowercase");
        assert_problem(&found, "reports[0].key", "quotes");
        assert_problem(
            &found,
            "entities[0].pipeline.stages[1].key",
            "must not start with _",
        );
        assert_problem(&found, "dashboards[0].key", "reserved word");
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn unsupported_format_is_reported() {
        let mut pkg = example();
        pkg["format"] = json!(2);
        assert_only(pkg, "format", "unsupported format 2");
    }

    // ---- duplicates and renames ----

    #[test]
    fn duplicate_keys_are_reported_at_the_second_occurrence() {
        let mut pkg = example();
        let customer = pkg["entities"][0].clone();
        pkg["entities"].as_array_mut().unwrap().push(customer);
        let role = pkg["roles"][0].clone();
        pkg["roles"].as_array_mut().unwrap().push(role);
        let flow = pkg["flows"][0].clone();
        pkg["flows"].as_array_mut().unwrap().push(flow);
        let report = pkg["reports"][0].clone();
        pkg["reports"].as_array_mut().unwrap().push(report);
        pkg["dashboards"] =
            json!([{"key": "board", "reports": []}, {"key": "board", "reports": []}]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[1].key",
            "duplicate entity key \"customer\" (first at entities[0].key)",
        );
        assert_problem(&found, "roles[4].key", "duplicate role key \"sales\"");
        assert_problem(&found, "flows[1].key", "duplicate flow key");
        assert_problem(&found, "reports[1].key", "duplicate report key");
        assert_problem(&found, "dashboards[1].key", "duplicate dashboard key");
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn duplicates_inside_an_entity_and_a_flow_are_reported() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][1]["key"] = json!("name");
        pkg["entities"][0]["fields"][2]["options"][1]["value"] = json!("intent");
        pkg["entities"][0]["pipeline"]["stages"][3]["key"] = json!("signed");
        pkg["entities"][0]["pipeline"]["stages"][3]["lost"] = json!(false);
        pkg["flows"][0]["steps"][1]["key"] = json!("mgr");
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[0].fields[1].key",
            "duplicate field key \"name\"",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].options[1].value",
            "duplicate option value",
        );
        assert_problem(
            &found,
            "entities[0].pipeline.stages[3].key",
            "duplicate stage key",
        );
        assert_problem(&found, "flows[0].steps[1].key", "duplicate step key");
    }

    #[test]
    fn renamed_from_is_an_identifier_and_must_not_collide() {
        let found = problems(with_fields(json!([
            {"key": "title", "type": "text", "renamed_from": "name"},
            {"key": "name", "type": "text"},
            {"key": "label_2", "type": "text", "renamed_from": "name"},
            {"key": "caption", "type": "text", "renamed_from": "Old"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].renamed_from",
            "still the key of field entities[0].fields[1]",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].renamed_from",
            "duplicate renamed_from \"name\"",
        );
        assert_problem(
            &found,
            "entities[0].fields[3].renamed_from",
            "must be lowercase",
        );
    }

    #[test]
    fn entity_renamed_from_an_existing_entity_is_an_error() {
        let pkg = json!({"format": 1, "entities": [
            {"key": "client", "renamed_from": "account", "fields": []},
            {"key": "account", "fields": []}
        ]});
        assert_only(
            pkg,
            "entities[0].renamed_from",
            "still the key of entity entities[1]",
        );
    }

    #[test]
    fn renaming_onto_itself_is_harmless() {
        let pkg = with_fields(json!([{"key": "title", "type": "text", "renamed_from": "title"}]));
        assert!(problems(pkg).is_empty());
    }

    // ---- field options ----

    #[test]
    fn select_fields_need_options_and_others_take_none() {
        let found = problems(with_fields(json!([
            {"key": "kind", "type": "select"},
            {"key": "tags", "type": "multi_select", "options": [{"value": ""}]},
            {"key": "note", "type": "text", "options": [{"value": "a"}]},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].options",
            "at least one option",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].options[0].value",
            "must not be empty",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].options",
            "only allowed on select and multi_select",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn target_is_required_for_and_only_for_references() {
        let found = problems(with_fields(json!([
            {"key": "parent", "type": "reference"},
            {"key": "owner_ref", "type": "reference", "target": "nobody"},
            {"key": "note", "type": "text", "target": "item"},
            {"key": "sibling", "type": "reference", "target": "item"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].target",
            "needs a target entity",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].target",
            "unknown entity \"nobody\"",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].target",
            "only allowed on reference",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn numeric_options_are_checked() {
        let found = problems(with_fields(json!([
            {"key": "amount", "type": "decimal", "scale": 7, "min": 10, "max": 5},
            {"key": "note", "type": "text", "scale": 2, "min": 1, "max": 3},
            {"key": "count", "type": "integer", "min": 0.5},
            {"key": "price", "type": "decimal", "scale": 6, "min": -1.5, "max": 99.5},
        ])));
        assert_problem(&found, "entities[0].fields[0].scale", "between 0 and 6");
        assert_problem(
            &found,
            "entities[0].fields[0].min",
            "min 10 is greater than max 5",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].scale",
            "only allowed on decimal",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].min",
            "only allowed on integer and decimal",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].max",
            "only allowed on integer and decimal",
        );
        assert_problem(&found, "entities[0].fields[2].min", "whole number");
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn text_options_are_checked() {
        let found = problems(with_fields(json!([
            {"key": "code", "type": "text", "max_length": 0, "pattern": "([a-z"},
            {"key": "count", "type": "integer", "max_length": 5, "pattern": "\\d+"},
            {"key": "mail", "type": "email", "max_length": 120, "pattern": "^[^@]+@[^@]+$"},
        ])));
        assert_problem(&found, "entities[0].fields[0].max_length", "at least 1");
        assert_problem(
            &found,
            "entities[0].fields[0].pattern",
            "not a valid regular expression",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].max_length",
            "only allowed on text-like",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].pattern",
            "only allowed on text-like",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn auto_number_formats_are_checked() {
        assert_eq!(check_auto_number_format("QT{YYYY}{MM}{DD}-{0000}"), Ok(()));
        assert_eq!(check_auto_number_format("{0}"), Ok(()));
        let bad = [
            ("QT-{YYYY}", "needs a sequence placeholder"),
            ("{000}-{00}", "more than one sequence"),
            ("{HH}{0}", "unknown placeholder {HH}"),
            ("{0", "without a matching }"),
            ("0}", "without a matching {"),
        ];
        for (format, fragment) in bad {
            let err = check_auto_number_format(format).expect_err(format);
            assert!(err.contains(fragment), "{format}: {err}");
        }
        let found = problems(with_fields(json!([
            {"key": "number", "type": "auto_number", "format": "Q-{YYYY}"},
            {"key": "code", "type": "text", "format": "{0}"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].format",
            "needs a sequence placeholder",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].format",
            "only allowed on auto_number",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn unique_is_refused_where_it_makes_no_sense() {
        let found = problems(with_fields(json!([
            {"key": "notes", "type": "long_text", "unique": true},
            {"key": "flag", "type": "boolean", "unique": true},
            {"key": "tags", "type": "multi_select", "unique": true, "options": [{"value": "a"}]},
            {"key": "file", "type": "attachment", "unique": true},
            {"key": "code", "type": "text", "unique": true},
        ])));
        for i in 0..4 {
            assert_problem(
                &found,
                &format!("entities[0].fields[{i}].unique"),
                "cannot be unique",
            );
        }
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn formula_conflicts_are_reported() {
        let found = problems(with_fields(json!([
            {"key": "total", "type": "decimal", "formula": "1 + 1", "default": 2, "required": true},
            {"key": "number", "type": "auto_number", "formula": "1"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].formula",
            "cannot have a default",
        );
        assert_problem(
            &found,
            "entities[0].fields[0].formula",
            "cannot be required",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].formula",
            "auto_number field cannot have a formula",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn default_literals_must_fit_the_type() {
        let found = problems(with_fields(json!([
            {"key": "count", "type": "integer", "default": 1.5},
            {"key": "flag", "type": "boolean", "default": 1},
            {"key": "tags", "type": "multi_select", "options": [{"value": "a"}], "default": ["a", "b"]},
            {"key": "note", "type": "text", "default": true},
            {"key": "number", "type": "auto_number", "default": 1},
            {"key": "amount", "type": "decimal", "default": 1.5},
            {"key": "done", "type": "boolean", "default": false},
            {"key": "labels", "type": "multi_select", "options": [{"value": "a"}], "default": ["a"]},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].default",
            "expected a whole number",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].default",
            "expected true or false",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].default",
            "a list of values from a",
        );
        assert_problem(&found, "entities[0].fields[3].default", "expected a string");
        assert_problem(
            &found,
            "entities[0].fields[4].default",
            "cannot have a default",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn string_defaults_are_expressions_unless_they_name_an_option() {
        let found = problems(with_fields(json!([
            {"key": "kind", "type": "select", "options": [{"value": "lead"}], "default": "lead"},
            {"key": "stage_hint", "type": "select", "options": [{"value": "x"}], "default": "'x'"},
            {"key": "due", "type": "date", "default": "add_days(today(), 7)"},
            {"key": "title", "type": "text", "default": "unknown_thing"},
            {"key": "code", "type": "text", "default": "'A' ~"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[3].default",
            "\"unknown_thing\" is neither a field",
        );
        assert_problem(
            &found,
            "entities[0].fields[3].default",
            "quote it inside the string: \"'unknown_thing'\"",
        );
        assert_problem(&found, "entities[0].fields[4].default", "does not compile");
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn string_defaults_written_like_values_are_literals_and_must_fit() {
        let found = problems(with_fields(json!([
            {"key": "a", "type": "date", "default": "2024-01-01"},
            {"key": "b", "type": "datetime", "default": "2024-01-01T09:00:00+08:00"},
            {"key": "c", "type": "decimal", "default": "12.50"},
            {"key": "d", "type": "date", "default": "2024-13-01"},
            {"key": "e", "type": "datetime", "default": "2024-01-01"},
            {"key": "f", "type": "decimal", "scale": 1, "default": "1.25"},
            {"key": "g", "type": "text", "default": "2024-01-01"},
            {"key": "h", "type": "date", "default": "today()"},
            {"key": "i", "type": "integer", "default": "'x'"},
        ])));
        assert_problem(&found, "entities[0].fields[3].default", "expected a date");
        assert_problem(&found, "entities[0].fields[4].default", "RFC 3339");
        assert_problem(
            &found,
            "entities[0].fields[5].default",
            "more than 1 digits",
        );
        assert_problem(
            &found,
            "entities[0].fields[6].default",
            "2022 does not fit text",
        );
        assert_problem(
            &found,
            "entities[0].fields[8].default",
            "expected a whole number",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn run_time_failures_are_refused_at_publish() {
        let found = problems(with_fields(json!([
            {"key": "len", "type": "integer"},
            {"key": "short", "type": "text", "formula": "'x'|nosuchfilter"},
            {"key": "seen", "type": "text", "required_if": "1 is nosuchtest"},
            {"key": "flag", "type": "boolean", "read_only": true, "required": true},
            {"key": "ok_flag", "type": "boolean", "read_only": true, "required": true, "default": true},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].key",
            "expression function len()",
        );
        assert_problem(
            &found,
            "entities[0].fields[1].formula",
            "unknown filter \"nosuchfilter\"",
        );
        assert_problem(
            &found,
            "entities[0].fields[2].required_if",
            "unknown test \"nosuchtest\"",
        );
        assert_problem(&found, "entities[0].fields[3].required", "needs a default");
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    // ---- expressions ----

    #[test]
    fn bad_expressions_are_reported_with_the_compiler_message() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][6]["formula"] = json!("add_months(signed_on,");
        pkg["entities"][0]["fields"][8]["visible_if"] = json!("category = 'intent'");
        pkg["flows"][0]["trigger"]["when"] = json!("revenue >");
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[0].fields[6].formula",
            "does not compile: syntax error",
        );
        assert_problem(
            &found,
            "entities[0].fields[8].visible_if",
            "does not compile",
        );
        assert_problem(&found, "flows[0].trigger.when", "does not compile");
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn unknown_variables_are_reported() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][8]["required_if"] = json!("categry == 'intent'");
        pkg["flows"][0]["steps"][1]["when"] = json!("revenu > 1000000");
        pkg["entities"][0]["fields"][6]["formula"] = json!("add_month(signed_on, 1)");
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[0].fields[8].required_if",
            "\"categry\" is neither a field of entity \"customer\"",
        );
        assert_problem(&found, "flows[0].steps[1].when", "\"revenu\"");
        assert_problem(
            &found,
            "entities[0].fields[6].formula",
            "\"add_month\" is neither a field",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn expressions_may_read_system_columns() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][8]["visible_if"] = json!(
            "owner == created_by and id > 0 and created_at < updated_at and stage == 'quote'"
        );
        assert!(problems(pkg).is_empty());
        let pkg =
            with_fields(json!([{"key": "note", "type": "text", "visible_if": "stage == 'x'"}]));
        assert_only(
            pkg,
            "entities[0].fields[0].visible_if",
            "\"stage\" is neither a field",
        );
        let pkg =
            with_fields(json!([{"key": "note", "type": "text", "visible_if": "version > 1"}]));
        assert_only(pkg, "entities[0].fields[0].visible_if", "\"version\"");
    }

    #[test]
    fn formula_cycles_are_reported() {
        let found = problems(with_fields(json!([
            {"key": "a", "type": "integer", "formula": "b + 1"},
            {"key": "b", "type": "integer", "formula": "c + base"},
            {"key": "c", "type": "integer", "formula": "a * 2"},
            {"key": "base", "type": "integer"},
            {"key": "me", "type": "integer", "formula": "me + 1"},
            {"key": "ok", "type": "integer", "formula": "a + base"},
        ])));
        assert_problem(
            &found,
            "entities[0].fields[0].formula",
            "formula cycle: a -> b -> c -> a",
        );
        assert_problem(
            &found,
            "entities[0].fields[4].formula",
            "formula cycle: me -> me",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    // ---- entity parts ----

    #[test]
    fn title_field_must_exist_and_be_displayable() {
        let mut pkg = example();
        pkg["entities"][0]["title_field"] = json!("notes");
        assert_only(
            pkg.clone(),
            "entities[0].title_field",
            "a long_text field cannot be the title",
        );
        pkg["entities"][0]["title_field"] = json!("nom");
        assert_only(
            pkg,
            "entities[0].title_field",
            "entity \"customer\" has no field \"nom\"",
        );
    }

    #[test]
    fn layout_fields_exist_once_and_columns_fit() {
        let mut pkg = example();
        pkg["entities"][0]["layout"]["sections"] = json!([
            {"columns": 5, "fields": ["name", "phone"]},
            {"columns": 0, "fields": ["nom", "phone"]},
        ]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[0].layout.sections[0].columns",
            "between 1 and 4",
        );
        assert_problem(
            &found,
            "entities[0].layout.sections[1].columns",
            "between 1 and 4",
        );
        assert_problem(
            &found,
            "entities[0].layout.sections[1].fields[0]",
            "no field \"nom\"",
        );
        assert_problem(
            &found,
            "entities[0].layout.sections[1].fields[1]",
            "duplicate layout field \"phone\"",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn pipeline_rules_are_checked() {
        let mut pkg = example();
        let pipeline = &mut pkg["entities"][0]["pipeline"];
        pipeline["stages"][0]["probability"] = json!(101);
        pipeline["stages"][2]["lost"] = json!(true);
        pipeline["stages"][1]["required_fields"] = json!(["phone", "fax"]);
        pipeline["transitions"] = json!([
            {"from": "contact", "to": "quote", "roles": ["sales"]},
            {"from": "quote", "to": "won", "roles": ["boss"]},
        ]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "entities[0].pipeline.stages[0].probability",
            "between 0 and 100",
        );
        assert_problem(
            &found,
            "entities[0].pipeline.stages[2].lost",
            "both won and lost",
        );
        assert_problem(
            &found,
            "entities[0].pipeline.stages[1].required_fields[1]",
            "no field \"fax\"",
        );
        assert_problem(
            &found,
            "entities[0].pipeline.transitions[1].to",
            "has no stage \"won\"",
        );
        assert_problem(
            &found,
            "entities[0].pipeline.transitions[1].roles[0]",
            "unknown role \"boss\"",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn pipeline_needs_a_stage() {
        let pkg = json!({"format": 1, "entities": [{"key": "deal", "fields": [], "pipeline": {"stages": []}}]});
        assert_only(pkg, "entities[0].pipeline.stages", "at least one stage");
    }

    #[test]
    fn followup_and_pool_are_checked() {
        let mut pkg = example();
        pkg["entities"][0]["followup"]["days"] = json!({"intent": 0, "potential": 30});
        pkg["entities"][0]["pool"]["reclaim_after_days"] = json!(0);
        pkg["entities"][0]["pool"]["hold_limit"] = json!(0);
        let found = problems(pkg.clone());
        assert_problem(&found, "entities[0].followup.days.intent", "at least 1 day");
        assert_problem(
            &found,
            "entities[0].followup.days.potential",
            "\"potential\" is not an option of \"category\"",
        );
        assert_problem(
            &found,
            "entities[0].pool.reclaim_after_days",
            "at least 1 day",
        );
        assert_problem(&found, "entities[0].pool.hold_limit", "at least 1");
        assert_eq!(found.len(), 4, "{found:#?}");
        pkg["entities"][0]["followup"] = json!({"field": "phone", "days": {}});
        pkg["entities"][0]["pool"]["reclaim_after_days"] = json!(7);
        pkg["entities"][0]["pool"]["hold_limit"] = json!(200);
        assert_only(
            pkg.clone(),
            "entities[0].followup.field",
            "must be a select",
        );
        pkg["entities"][0]["followup"] = json!({"field": "cat", "days": {}});
        assert_only(pkg, "entities[0].followup.field", "no field \"cat\"");
    }

    // ---- roles, flows, reports, dashboards ----

    #[test]
    fn role_permissions_are_checked() {
        let mut pkg = example();
        pkg["roles"][0]["permissions"][0]["deny_read"] = json!(["revenue", "salary"]);
        pkg["roles"][1]["permissions"][0]["actions"] = json!([]);
        pkg["roles"][2]["permissions"][0]["entity"] = json!("contract");
        let found = problems(pkg);
        assert_problem(
            &found,
            "roles[0].permissions[0].deny_read[1]",
            "no field \"salary\"",
        );
        assert_problem(
            &found,
            "roles[1].permissions[0].actions",
            "at least one action",
        );
        assert_problem(
            &found,
            "roles[2].permissions[0].entity",
            "unknown entity \"contract\"",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn approver_rules_are_checked() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][1]["type"] = json!("user");
        pkg["flows"][0]["steps"] = json!([
            {"key": "none", "approvers": {}},
            {"key": "two", "approvers": {"role": "finance", "user": "zhang"}},
            {"key": "ghost", "approvers": {"role": "ceo"}},
            {"key": "by_name", "approvers": {"field": "name"}},
            {"key": "by_phone", "approvers": {"field": "phone"}},
            {"key": "by_fax", "approvers": {"field": "fax"}},
        ]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "flows[0].steps[0].approvers",
            "exactly one of role, user, manager_of, field is required (found none)",
        );
        assert_problem(&found, "flows[0].steps[1].approvers", "(found role, user)");
        assert_problem(
            &found,
            "flows[0].steps[2].approvers.role",
            "unknown role \"ceo\"",
        );
        assert_problem(
            &found,
            "flows[0].steps[3].approvers.field",
            "\"name\" is not a user field",
        );
        assert_problem(
            &found,
            "flows[0].steps[5].approvers.field",
            "no field \"fax\"",
        );
        assert_eq!(found.len(), 5, "{found:#?}");
    }

    #[test]
    fn flow_triggers_are_checked() {
        let mut pkg = example();
        pkg["flows"][0]["trigger"] = json!({"on": "stage_enter"});
        assert_only(pkg.clone(), "flows[0].trigger.stage", "needs a stage");
        pkg["flows"][0]["trigger"] = json!({"on": "stage_enter", "stage": "won"});
        assert_only(
            pkg.clone(),
            "flows[0].trigger.stage",
            "has no stage \"won\"",
        );
        pkg["flows"][0]["trigger"] = json!({"on": "stage_enter", "stage": "quote"});
        assert!(problems(pkg.clone()).is_empty());
        pkg["flows"][0]["trigger"] = json!({"on": "create", "stage": "quote"});
        assert_only(
            pkg.clone(),
            "flows[0].trigger.stage",
            "only used with on: stage_enter",
        );
        pkg["flows"][0]["trigger"] = json!({"on": "stage_enter", "stage": "quote"});
        pkg["flows"][0]["on_reject"] = json!({});
        pkg["entities"][0]["pipeline"] = Value::Null;
        pkg["reports"] = json!([]);
        pkg["entities"][0]["layout"] = Value::Null;
        assert_only(
            pkg,
            "flows[0].trigger.stage",
            "entity \"customer\" has no pipeline",
        );
    }

    #[test]
    fn flow_effects_are_checked() {
        let mut pkg = example();
        pkg["entities"][0]["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "number", "type": "auto_number"}));
        pkg["flows"][0]["on_approve"] = json!({"set": {
            "vip": "yes", "fax": 1, "warranty_until": "2024-01-01", "number": 3,
            "name": null, "phone": null, "category": "intent", "signed_on": "2024-02-30",
            "revenue": "12.50"
        }});
        pkg["flows"][0]["on_reject"] = json!({"stage": "closed"});
        pkg["flows"][0]["notify"]["cc"] = json!(["finance", "board"]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "flows[0].on_approve.set.vip",
            "expected true or false",
        );
        assert_problem(&found, "flows[0].on_approve.set.fax", "no field \"fax\"");
        assert_problem(&found, "flows[0].on_approve.set.warranty_until", "computed");
        assert_problem(&found, "flows[0].on_approve.set.number", "computed");
        assert_problem(&found, "flows[0].on_approve.set.name", "required");
        assert_problem(
            &found,
            "flows[0].on_approve.set.signed_on",
            "a date YYYY-MM-DD",
        );
        assert_problem(
            &found,
            "flows[0].on_reject.stage",
            "has no stage \"closed\"",
        );
        assert_problem(&found, "flows[0].notify.cc[1]", "unknown role \"board\"");
        assert_eq!(found.len(), 8, "{found:#?}");
    }

    #[test]
    fn flow_needs_an_entity_and_steps() {
        let mut pkg = example();
        pkg["flows"][0]["entity"] = json!("contract");
        pkg["flows"][0]["steps"] = json!([]);
        let found = problems(pkg);
        assert_problem(&found, "flows[0].steps", "at least one step");
        assert_problem(&found, "flows[0].entity", "unknown entity \"contract\"");
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn report_columns_are_checked() {
        let mut pkg = example();
        pkg["reports"][0]["filter"] = json!([1]);
        pkg["reports"][0]["group_by"] = json!([
            {"field": "parent.name"}, {"field": "created_at", "bucket": "month"},
            {"field": "owner"}, {"field": "region"}, {"field": "name", "bucket": "week"},
            {"field": "phone.name"}, {"field": "parent.region"},
        ]);
        pkg["reports"][0]["measures"] = json!([
            {"fn": "count"}, {"fn": "sum"}, {"fn": "avg", "field": "name"},
            {"fn": "max", "field": "signed_on"}, {"fn": "count_distinct", "field": "owner"},
        ]);
        pkg["reports"][0]["sort"] = json!([{"field": "count", "desc": true}, {"field": "size"}]);
        pkg["reports"][0]["roles"] = json!(["manager", "cfo"]);
        let found = problems(pkg);
        assert_problem(&found, "reports[0].filter", "must be a JSON object");
        assert_problem(
            &found,
            "reports[0].group_by[3].field",
            "no field \"region\"",
        );
        assert_problem(
            &found,
            "reports[0].group_by[4].bucket",
            "date or datetime, not text",
        );
        assert_problem(
            &found,
            "reports[0].group_by[5].field",
            "\"phone\" is not a reference field",
        );
        assert_problem(
            &found,
            "reports[0].group_by[6].field",
            "no field \"region\"",
        );
        assert_problem(&found, "reports[0].measures[1].field", "needs a field");
        assert_problem(
            &found,
            "reports[0].measures[2].field",
            "numeric field, not text",
        );
        assert_problem(
            &found,
            "reports[0].sort[1].field",
            "a group_by field or a measure key",
        );
        assert_problem(&found, "reports[0].roles[1]", "unknown role \"cfo\"");
        assert_eq!(found.len(), 9, "{found:#?}");
    }

    #[test]
    fn report_kinds_need_what_they_shape() {
        let mut pkg = example();
        pkg["entities"][0]
            .as_object_mut()
            .unwrap()
            .remove("pipeline");
        pkg["flows"][0].as_object_mut().unwrap().remove("on_reject");
        pkg["reports"][0]["group_by"] = json!([{"field": "category"}]);
        let kinds = [
            (
                "funnel",
                "reports[0].kind",
                "needs an entity with a pipeline",
            ),
            (
                "forecast",
                "reports[0].kind",
                "needs an entity with a pipeline",
            ),
            (
                "pivot",
                "reports[0].group_by",
                "at least two group_by fields",
            ),
            (
                "comparison",
                "reports[0].group_by",
                "first by a date field with a bucket",
            ),
        ];
        for (kind, path, message) in kinds {
            let mut pkg = pkg.clone();
            pkg["reports"][0]["kind"] = json!(kind);
            let found = problems(pkg);
            assert_problem(&found, path, message);
            assert_eq!(found.len(), 1, "{kind}: {found:#?}");
        }
        let mut coarse = pkg.clone();
        coarse["reports"][0]["kind"] = json!("comparison");
        coarse["reports"][0]["compare"] = json!("month");
        coarse["reports"][0]["group_by"] = json!([{"field": "signed_on", "bucket": "quarter"}]);
        assert_problem(
            &problems(coarse),
            "reports[0].group_by[0].bucket",
            "not be coarser",
        );
        let mut stray = pkg;
        stray["reports"][0]["compare"] = json!("year");
        assert_problem(&problems(stray), "reports[0].compare", "only a comparison");
    }

    #[test]
    fn report_entity_and_stage_must_exist() {
        let mut pkg = example();
        pkg["reports"][0]["entity"] = json!("contract");
        assert_only(pkg, "reports[0].entity", "unknown entity \"contract\"");
        let pkg = json!({"format": 1, "entities": [{"key": "item", "fields": []}],
            "reports": [{"key": "by_stage", "entity": "item", "group_by": [{"field": "stage"}]}]});
        assert_only(pkg, "reports[0].group_by[0].field", "has no pipeline");
    }

    #[test]
    fn dashboards_name_reports_and_roles() {
        let mut pkg = example();
        pkg["dashboards"] =
            json!([{"key": "sales_board", "reports": ["funnel", "forecast"], "roles": ["nobody"]}]);
        let found = problems(pkg);
        assert_problem(
            &found,
            "dashboards[0].reports[1]",
            "unknown report \"forecast\"",
        );
        assert_problem(&found, "dashboards[0].roles[0]", "unknown role \"nobody\"");
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    // ---- conversions ----

    /// Leads that convert into a customer and its contact (entities[2] is the lead).
    fn conversion_package() -> Value {
        let sources = json!([
            {"value": "web", "label": "官网"}, {"value": "fair", "label": "展会"}]);
        json!({"format": 1, "entities": [
            {"key": "customer", "fields": [
                {"key": "name", "type": "text", "required": true, "unique": true},
                {"key": "phone", "type": "phone"},
                {"key": "source", "type": "select", "options": sources},
                {"key": "code", "type": "auto_number"},
                {"key": "from_lead", "type": "reference", "target": "lead", "read_only": true},
                {"key": "rating", "type": "select", "options": [{"value": "web"}]},
                {"key": "revenue", "type": "decimal", "scale": 0}]},
            {"key": "contact", "fields": [
                {"key": "name", "type": "text", "required": true},
                {"key": "mobile", "type": "phone"},
                {"key": "customer", "type": "reference", "target": "customer"},
                {"key": "employer", "type": "reference", "target": "contact"}]},
            {"key": "lead", "fields": [
                {"key": "company", "type": "text"},
                {"key": "contact_name", "type": "text"},
                {"key": "phone", "type": "phone"},
                {"key": "email", "type": "email"},
                {"key": "source", "type": "select", "options": sources},
                {"key": "revenue", "type": "decimal", "scale": 2},
                {"key": "size", "type": "integer"},
                {"key": "status", "type": "select", "required": true,
                 "options": [{"value": "new"}, {"value": "converted"}]},
                {"key": "converted_customer", "type": "reference", "target": "customer"},
                {"key": "converted_contact", "type": "reference", "target": "contact"}],
             "conversions": [{"key": "convert", "label": "转化为客户",
                "when": "status != 'converted'",
                "creates": [
                    {"entity": "customer", "as": "customer", "link_field": "converted_customer",
                     "map": {"name": "company", "phone": "phone", "source": "source"}},
                    {"entity": "contact", "as": "contact", "link_field": "converted_contact",
                     "map": {"name": "contact_name", "mobile": "phone", "customer": "$customer"}}],
                "set": {"status": "converted"}}]}
        ]})
    }

    #[test]
    fn a_lead_conversion_validates() {
        let pkg = parse_package(&conversion_package()).expect("the conversion is valid");
        let conversion = &pkg.entities[2].conversions[0];
        assert_eq!(conversion.label(), "转化为客户");
        assert_eq!(
            conversion.target("contact").unwrap().map["customer"],
            "$customer"
        );
        // It reads back as written.
        let json = serde_json::to_value(&pkg).unwrap();
        assert_eq!(
            json["entities"][2]["conversions"],
            conversion_package()["entities"][2]["conversions"]
        );
    }

    #[test]
    fn conversion_maps_are_checked_with_their_paths() {
        let base = "entities[2].conversions[0].creates";
        let cases = [
            (
                json!({"nickname": "company"}),
                "map.nickname",
                "entity \"customer\" has no field \"nickname\"",
            ),
            (
                json!({"name": "fax"}),
                "map.name",
                "entity \"lead\" has no field \"fax\"; give a field of \"lead\", id",
            ),
            (
                json!({"code": "company"}),
                "map.code",
                "\"code\" is computed",
            ),
            (
                json!({"name": "size"}),
                "map.name",
                "integer field \"size\" cannot fill text field \"name\"",
            ),
            (
                json!({"phone": "source"}),
                "map.phone",
                "select field \"source\" cannot fill phone field",
            ),
            (
                json!({"rating": "source"}),
                "map.rating",
                "\"rating\" has no option(s) fair of \"source\"",
            ),
            (
                json!({"revenue": "revenue"}),
                "map.revenue",
                "digits would be lost",
            ),
            (
                json!({"name": "$customer"}),
                "map.name",
                "$customer is this very record",
            ),
            (
                json!({"phone": "id"}),
                "map.phone",
                "the converted record's id: \"phone\" must be a reference field pointing at lead",
            ),
            (
                json!({"from_lead": "converted_customer"}),
                "map.from_lead",
                "points at customer and cannot fill \"from_lead\", which points at lead",
            ),
        ];
        for (map, path, fragment) in cases {
            let mut pkg = conversion_package();
            let creates = &mut pkg["entities"][2]["conversions"][0]["creates"];
            creates[0]["map"] = map.clone();
            assert_only(pkg, &format!("{base}[0].{path}"), fragment);
        }
        // Text-like fills text-like; a read-only target field may be filled, here
        // with the lead's own id.
        let mut pkg = conversion_package();
        pkg["entities"][2]["conversions"][0]["creates"][0]["map"] =
            json!({"name": "email", "phone": "company", "source": "source", "from_lead": "id"});
        assert!(problems(pkg).is_empty());
    }

    #[test]
    fn conversion_aliases_name_earlier_records_of_the_right_entity() {
        let base = "entities[2].conversions[0].creates";
        let with_contact_map = |map: Value| {
            let mut pkg = conversion_package();
            pkg["entities"][2]["conversions"][0]["creates"][1]["map"] = map;
            pkg
        };
        assert_only(
            with_contact_map(json!({"name": "contact_name", "customer": "$account"})),
            &format!("{base}[1].map.customer"),
            "unknown alias $account; records created before this one: customer",
        );
        assert_only(
            with_contact_map(json!({"name": "contact_name", "employer": "$customer"})),
            &format!("{base}[1].map.employer"),
            "$customer is a customer record: \"employer\" must be a reference field pointing at customer",
        );
        // The customer cannot name the contact created after it.
        let mut pkg = conversion_package();
        pkg["entities"][2]["conversions"][0]["creates"][0]["map"]["phone"] = json!("$contact");
        assert_only(
            pkg,
            &format!("{base}[0].map.phone"),
            "$contact is created after this one",
        );
    }

    #[test]
    fn conversion_targets_links_and_keys_are_checked() {
        let path = "entities[2].conversions";
        let mut pkg = conversion_package();
        let conversion = &mut pkg["entities"][2]["conversions"][0];
        conversion["creates"][0]["link_field"] = json!("converted_contact");
        conversion["creates"][1]["link_field"] = json!("company");
        let found = problems(pkg);
        assert_problem(
            &found,
            &format!("{path}[0].creates[0].link_field"),
            "\"converted_contact\" must be a reference field of lead pointing at customer",
        );
        assert_problem(
            &found,
            &format!("{path}[0].creates[1].link_field"),
            "\"company\" must be a reference field of lead pointing at contact",
        );
        assert_eq!(found.len(), 2, "{found:#?}");

        let mut pkg = conversion_package();
        let conversion = &mut pkg["entities"][2]["conversions"][0];
        conversion["creates"][1]["entity"] = json!("person");
        conversion["creates"][1]["as"] = json!("customer");
        conversion["when"] = json!("stauts != 'converted'");
        conversion["set"] = json!({"status": "won", "converted_customer": 1, "fax": "1"});
        let found = problems(pkg);
        assert_problem(
            &found,
            &format!("{path}[0].creates[1].entity"),
            "unknown entity \"person\"",
        );
        assert_problem(
            &found,
            &format!("{path}[0].creates[1].as"),
            "duplicate alias \"customer\"",
        );
        assert_problem(
            &found,
            &format!("{path}[0].when"),
            "\"stauts\" is neither a field",
        );
        assert_problem(
            &found,
            &format!("{path}[0].set.status"),
            "expected one of new, converted",
        );
        assert_problem(&found, &format!("{path}[0].set.fax"), "no field \"fax\"");
        assert_problem(
            &found,
            &format!("{path}[0].set.converted_customer"),
            "is the link_field of creates[0]",
        );
        assert_eq!(found.len(), 6, "{found:#?}");

        let mut pkg = conversion_package();
        let conversions = pkg["entities"][2]["conversions"].as_array_mut().unwrap();
        let mut again = conversions[0].clone();
        again["creates"] = json!([]);
        conversions.push(again);
        conversions[0]["creates"][0]["as"] = json!("source");
        conversions[0]["creates"][1]["map"]["customer"] = json!("$source");
        let found = problems(pkg);
        assert_problem(
            &found,
            &format!("{path}[1].key"),
            "duplicate conversion key \"convert\"",
        );
        assert_problem(
            &found,
            &format!("{path}[1].creates"),
            "at least one record to create",
        );
        assert_problem(
            &found,
            &format!("{path}[0].creates[0].as"),
            "choose another alias",
        );
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn unknown_conversion_keys_are_refused_with_their_path() {
        let mut pkg = conversion_package();
        pkg["entities"][2]["conversions"][0]["creates"][1]["maps"] = json!({});
        let problem = parse_error(pkg);
        assert_eq!(problem.path, "entities[2].conversions[0].creates[1].maps");
        let mut pkg = conversion_package();
        pkg["entities"][2]["conversions"][0]["creates"][1]["map"]["name"] = json!(3);
        let problem = parse_error(pkg);
        assert_eq!(
            problem.path,
            "entities[2].conversions[0].creates[1].map.name"
        );
    }

    // ---- parsing ----

    #[track_caller]
    fn parse_error(pkg: Value) -> Problem {
        let problems = parse_package(&pkg).expect_err("the package is rejected");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][3]["foo"] = json!(1);
        let problem = parse_error(pkg);
        assert_eq!(problem.path, "entities[0].fields[3].foo");
        assert!(
            problem
                .message
                .starts_with("unknown field `foo`, expected one of"),
            "{problem:?}"
        );
        let mut pkg = example();
        pkg["colour"] = json!("red");
        assert_eq!(parse_error(pkg).path, "colour");
    }

    #[test]
    fn type_errors_are_reported_with_their_path() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][3]["type"] = json!("money");
        let problem = parse_error(pkg);
        assert_eq!(problem.path, "entities[0].fields[3].type");
        assert!(
            problem.message.contains("unknown variant `money`"),
            "{problem:?}"
        );
        let mut pkg = example();
        pkg["roles"][0]["permissions"][0]["scope"] = json!("everyone");
        assert_eq!(parse_error(pkg).path, "roles[0].permissions[0].scope");
        let mut pkg = example();
        pkg["entities"][0]["fields"][0]
            .as_object_mut()
            .unwrap()
            .remove("key");
        let problem = parse_error(pkg);
        assert_eq!(problem.path, "entities[0].fields[0]");
        assert!(
            problem.message.contains("missing field `key`"),
            "{problem:?}"
        );
    }

    #[test]
    fn bad_transitions_are_reported_at_the_pipeline() {
        let mut pkg = example();
        pkg["entities"][0]["pipeline"]["transitions"] = json!("backward");
        assert_eq!(parse_error(pkg).path, "entities[0].pipeline.transitions");
    }

    #[test]
    fn a_non_object_package_is_reported_at_the_root() {
        let problem = parse_error(json!("a package"));
        assert_eq!(problem.path, "");
        assert!(
            problem.message.contains("expected struct Package"),
            "{problem:?}"
        );
    }

    #[test]
    fn parse_package_returns_every_validation_problem() {
        let mut pkg = example();
        pkg["entities"][0]["fields"][0]["key"] = json!("order");
        pkg["entities"][0]["fields"][1]["key"] = json!("名称");
        pkg["reports"][0]["roles"] = json!(["cfo"]);
        let problems = parse_package(&pkg).expect_err("invalid");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"entities[0].fields[0].key"),
            "{problems:#?}"
        );
        assert!(
            paths.contains(&"entities[0].fields[1].key"),
            "{problems:#?}"
        );
        assert!(paths.contains(&"reports[0].roles[0]"), "{problems:#?}");
        let json = serde_json::to_value(&problems[0]).unwrap();
        assert!(json.get("path").is_some() && json.get("message").is_some());
    }
}
