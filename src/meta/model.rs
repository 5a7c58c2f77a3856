//! The metadata package: serde types for the whole document a tenant publishes.
//!
//! Every struct rejects unknown keys so that a typo in a package is an error, not a
//! silently ignored option. Semantic checks (identifiers, references, expressions)
//! live in [`super::validate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The current package format.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub format: u32,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<Flow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<Report>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dashboards: Vec<Dashboard>,
    /// The company as printed documents show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    /// Record events sent to other systems (`plugin::webhooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    /// Rules the scheduler runs at set times (`plugin::schedules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// Scripts run on record events (`plugin::hooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// Bundled plugins enabled for the tenant (`plugin::packages`): what each merged
    /// into this package, so that disabling takes exactly that out again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<EnabledPlugin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledPlugin {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub settings: serde_json::Map<String, Value>,
    /// What the plugin added, as `list/key` (`hooks/quote_guard`) or, for what it
    /// added to an entity of the package, `entities/ENTITY/list/key`.
    pub contributed: Vec<String>,
}

/// A JavaScript function body run in a sandbox when a record of `entity` is saved,
/// changes stage or finishes an approval. It sees `record`, `previous`, `user` and
/// `event`, and may call `reject`, `notify`, `get` and `console.log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub entity: String,
    pub on: HookEvent,
    pub script: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// Before a create or an update is written: may change fields or reject.
    BeforeSave,
    /// After a create or an update is written, in its transaction.
    AfterSave,
    OnStageChange,
    OnApproved,
    OnRejected,
}

impl HookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::BeforeSave => "before_save",
            HookEvent::AfterSave => "after_save",
            HookEvent::OnStageChange => "on_stage_change",
            HookEvent::OnApproved => "on_approved",
            HookEvent::OnRejected => "on_rejected",
        }
    }
}

/// A rule run at the times a cron pattern names, in China time: "every weekday at
/// 09:00, tell owners which customers are due a follow-up today".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Five fields: minute hour day-of-month month day-of-week (`0 9 * * 1-5`).
    pub cron: String,
    pub notify: ScheduledNotice,
}

/// Notifies people of the records a filter finds, one notification per person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledNotice {
    pub entity: String,
    /// A filter tree (relative dates are taken on the day of the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    pub to: NoticeRecipients,
    /// Templates over `count`, `records` (`[{id, title}]`, at most 20) and `label`.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Who a scheduled notice goes to: each record's owner (about their own records), or
/// every active user with a role (about all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeRecipients {
    Owner,
    Role(String),
}

/// An HTTP endpoint told of record events: a JSON body, or a text message for a chat
/// robot (企业微信/钉钉 群机器人).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// Only this entity's records (all entities when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Only events whose record satisfies this condition (`stage == 'won'`); needs
    /// `entity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Signs each delivery (HMAC-SHA256 over `<timestamp>.<body>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The chat message, a template over `record`, `title`, `entity` and `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    Created,
    Updated,
    StageChanged,
    Deleted,
    Approved,
    Rejected,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Created => "created",
            WebhookEvent::Updated => "updated",
            WebhookEvent::StageChanged => "stage_changed",
            WebhookEvent::Deleted => "deleted",
            WebhookEvent::Approved => "approved",
            WebhookEvent::Rejected => "rejected",
        }
    }

    /// How a chat message names the event.
    pub fn label(self) -> &'static str {
        match self {
            WebhookEvent::Created => "已创建",
            WebhookEvent::Updated => "已更新",
            WebhookEvent::StageChanged => "阶段变更",
            WebhookEvent::Deleted => "已删除",
            WebhookEvent::Approved => "审批通过",
            WebhookEvent::Rejected => "审批驳回",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{event, tenant, entity, id, title, record}`.
    #[default]
    Json,
    /// `{"msgtype": "text", "text": {"content": …}}`, what 企业微信 and 钉钉 robots read.
    ChatText,
}

/// Company details for printed documents (报价单, 出库单): the letterhead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// The company's full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// 纳税人识别号.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<String>,
    /// The logo: a file id from `POST /api/files` (an image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// A line at the foot of every printed page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
}

/// A print format of an entity (打印模板): a minijinja HTML template rendered over one
/// record, its child records and the company's branding, on A4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintTemplate {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub template: String,
    /// Print across the page (wide tables).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub landscape: bool,
}

impl PrintTemplate {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }
}

impl Package {
    pub fn empty() -> Self {
        Package {
            format: FORMAT,
            entities: Vec::new(),
            roles: Vec::new(),
            flows: Vec::new(),
            reports: Vec::new(),
            dashboards: Vec::new(),
            branding: None,
            webhooks: Vec::new(),
            schedules: Vec::new(),
            hooks: Vec::new(),
            plugins: Vec::new(),
        }
    }

    pub fn entity(&self, key: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.key == key)
    }

    /// The hooks `entity` runs on `event`, in package order.
    pub fn hooks_for<'p>(
        &'p self,
        entity: &'p str,
        event: HookEvent,
    ) -> impl Iterator<Item = &'p Hook> + 'p {
        self.hooks
            .iter()
            .filter(move |h| h.entity == entity && h.on == event)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The field shown as the record's title (search hits, references, timelines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_field: Option<String>,
    /// Rename an existing entity: its table is renamed, its data kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<Followup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_check: Option<DuplicateCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// Print formats (`GET /api/data/{e}/{id}/print/{key}`); `default` is built in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prints: Vec<PrintTemplate>,
    /// Conversions (`POST /api/data/{e}/{id}/convert/{key}`): a lead into a customer
    /// and a contact, in one transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversions: Vec<Conversion>,
}

impl Entity {
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }
}

/// A conversion (转化) of a record into new records of other entities — a lead into a
/// customer and a contact — created in order in one transaction, linked to each other
/// and to the converted record, which is then updated by `set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// An expression over the record: the conversion is offered only while it holds
    /// (e.g. `status != 'converted'`, so that a record converts once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The records created, in order: a later one may point at an earlier one.
    pub creates: Vec<ConversionTarget>,
    /// Fields of the converted record set once the records are created (literals).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub set: serde_json::Map<String, Value>,
}

impl Conversion {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }

    /// The created record named `alias`.
    pub fn target(&self, alias: &str) -> Option<&ConversionTarget> {
        self.creates.iter().find(|t| t.alias == alias)
    }
}

/// One record a conversion creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionTarget {
    /// The entity of the new record.
    pub entity: String,
    /// The record's name within the conversion: `$alias` in a later `map`, its key in
    /// the answer, the prefix of its field errors.
    #[serde(rename = "as")]
    pub alias: String,
    /// A reference field of the converted record that receives the new record's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_field: Option<String>,
    /// Target field → a field key of the converted record whose value it takes, `id`
    /// (the converted record's id, for a reference back to it), or `$alias`: the id
    /// of a record created earlier in the same conversion.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
}

impl ConversionTarget {
    /// The `map` value naming the converted record's own id.
    pub const SOURCE_ID: &'static str = "id";

    /// The alias a `map` value names (`$customer` → `customer`), if it names one.
    pub fn alias_of(source: &str) -> Option<&str> {
        source.strip_prefix('$')
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Boolean,
    Date,
    Datetime,
    Select,
    MultiSelect,
    Reference,
    User,
    Email,
    Phone,
    Url,
    Attachment,
    AutoNumber,
}

impl FieldType {
    pub const ALL: [FieldType; 16] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Select,
        FieldType::MultiSelect,
        FieldType::Reference,
        FieldType::User,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Attachment,
        FieldType::AutoNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Reference => "reference",
            FieldType::User => "user",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Attachment => "attachment",
            FieldType::AutoNumber => "auto_number",
        }
    }

    /// Types whose value is a string of free text.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::LongText
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Decimal)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub searchable: bool,
    /// A JSON string is an expression (`"today()"`, `"'intent'"`); any other JSON value
    /// is a literal. A string equal to one of a select's option values is that option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<SelectOption>,
    /// The target entity of a `reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Digits after the decimal point of a `decimal` (0–6, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_if: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if: Option<String>,
    /// Display format of an `auto_number`: `{YYYY}`, `{MM}`, `{DD}` and `{0000}` (the
    /// sequence, zero-padded to as many digits as zeros). Default `{0}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Rename an existing field: its column is renamed, its data kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Field {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }

    /// Scale of a decimal field; other types have none.
    pub fn decimal_scale(&self) -> u32 {
        match self.field_type {
            FieldType::Decimal => self.scale.unwrap_or(2),
            _ => 0,
        }
    }

    /// Computed or system-assigned: never taken from user input.
    pub fn is_computed(&self) -> bool {
        self.formula.is_some() || self.field_type == FieldType::AutoNumber
    }

    /// How the `default` reads. A JSON value that is not a string is a literal. A
    /// string is a literal when it is written like a value of the field's type: an
    /// option of a `select`; on a `date` or `datetime`, text that begins like a date
    /// (`2024-01-01`, `2024-01-01T09:00:00+08:00`); on a `decimal`, a plain number
    /// (`"12.50"`, kept exact). Any other string is an expression.
    pub fn default_spec(&self) -> Option<DefaultSpec<'_>> {
        let default = self.default.as_ref()?;
        let Value::String(text) = default else {
            return Some(DefaultSpec::Literal(default));
        };
        let literal = match self.field_type {
            FieldType::Select => self.options.iter().any(|o| o.value == *text),
            FieldType::Date | FieldType::Datetime => begins_like_a_date(text),
            FieldType::Decimal => is_plain_number(text),
            _ => false,
        };
        Some(if literal {
            DefaultSpec::Literal(default)
        } else {
            DefaultSpec::Expression(text)
        })
    }
}

/// A field's default, read by [`Field::default_spec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultSpec<'a> {
    /// A value, converted like a client's value for the field.
    Literal(&'a Value),
    /// An expression over the record being created.
    Expression(&'a str),
}

/// `YYYY-MM-DD` at the start (digits and dashes only; whether it is a real date is
/// checked as the field's value).
fn begins_like_a_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// `12`, `-3`, `12.50`: digits with an optional minus sign and decimal point.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectOption {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl SelectOption {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub transitions: Transitions,
}

impl Pipeline {
    /// The label of the stage `key`, or the key itself for a stage no longer there.
    pub fn stage_label<'p>(&'p self, key: &'p str) -> &'p str {
        self.stages
            .iter()
            .find(|s| s.key == key)
            .map_or(key, Stage::label)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub won: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lost: bool,
}

impl Stage {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }
}

/// `"forward"`, `"any"`, or an explicit list of allowed moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Transitions {
    Mode(TransitionMode),
    List(Vec<Transition>),
}

impl Default for Transitions {
    fn default() -> Self {
        Transitions::Mode(TransitionMode::Forward)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionMode {
    Forward,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Follow-up cycle: contact each record every N days, N chosen by a select field's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Followup {
    pub field: String,
    pub days: BTreeMap<String, u32>,
    /// What counts as a contact: creating a record of this activity entity whose
    /// reference field points at the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityLink>,
}

/// An activity entity and its reference field to the followed-up entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityLink {
    pub entity: String,
    pub field: String,
}

/// Public pool (公海): records nobody followed up for this long return to the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub reclaim_after_days: u32,
    /// Records one user may claim from the pool per day (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_limit: Option<u32>,
    /// Records of the entity one user may own for a claim to be allowed: a claim that
    /// would go beyond is refused (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_limit: Option<u32>,
}

/// Duplicate check (查重) when creating records: the title field and phone and email
/// fields are compared with existing records; a certain duplicate (same phone, same
/// email, same name once region and company-form words are stripped) is refused
/// when `block` is on, unless a user allowed to override asks to (`?force=true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateCheck {
    #[serde(default)]
    pub block: bool,
    /// Roles that may create a certain duplicate anyway (besides administrators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub force_roles: Vec<String>,
}

impl Entity {
    /// Whether records track their last contact (`last_contact_at`): entities with a
    /// follow-up cycle or a public pool.
    pub fn tracks_contacts(&self) -> bool {
        self.followup.is_some() || self.pool.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default = "one_column")]
    pub columns: u32,
    pub fields: Vec<String>,
}

fn one_column() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    /// May use the designer (publish metadata).
    #[serde(default, skip_serializing_if = "is_false")]
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub entity: String,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_read: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_write: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Export,
    Import,
    Assign,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Own,
    Department,
    Subordinates,
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub entity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    pub steps: Vec<FlowStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_approve: Option<FlowEffect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reject: Option<FlowEffect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<FlowNotify>,
}

impl Flow {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.key)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub on: TriggerOn,
    /// Stage key for `stage_enter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOn {
    Submit,
    Create,
    Update,
    StageEnter,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowStep {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub approvers: Approvers,
    #[serde(default)]
    pub mode: StepMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// Who approves a step: exactly one of the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_of: Option<ManagerOf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagerOf {
    Submitter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepMode {
    #[default]
    Any,
    All,
}

/// What a finished flow does to its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowEffect {
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub set: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowNotify {
    /// Role keys copied (抄送) on the outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub entity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReportKind>,
    /// A filter tree (see `store::filter`); checked against the entity's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<GroupBy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<SortKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    /// For a `comparison`: the period compared with the one before it (default year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<ComparePeriod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparePeriod {
    Month,
    Quarter,
    Year,
}

impl ComparePeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            ComparePeriod::Month => "month",
            ComparePeriod::Quarter => "quarter",
            ComparePeriod::Year => "year",
        }
    }

    pub fn months(self) -> u32 {
        match self {
            ComparePeriod::Month => 1,
            ComparePeriod::Quarter => 3,
            ComparePeriod::Year => 12,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Table,
    Funnel,
    Forecast,
    Pivot,
    Comparison,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Table => "table",
            ReportKind::Funnel => "funnel",
            ReportKind::Forecast => "forecast",
            ReportKind::Pivot => "pivot",
            ReportKind::Comparison => "comparison",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBy {
    /// A field key, or `reference_field.target_field` to group through a reference.
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<DateBucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateBucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl DateBucket {
    pub fn as_str(self) -> &'static str {
        match self {
            DateBucket::Day => "day",
            DateBucket::Week => "week",
            DateBucket::Month => "month",
            DateBucket::Quarter => "quarter",
            DateBucket::Year => "year",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    #[serde(rename = "fn")]
    pub function: MeasureFn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Measure {
    /// The measure's column key in a report's output: `count`, `sum:amount`, ….
    pub fn key(&self) -> String {
        match &self.field {
            Some(field) => format!("{}:{field}", self.function.as_str()),
            None => self.function.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureFn {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl MeasureFn {
    pub fn as_str(self) -> &'static str {
        match self {
            MeasureFn::Count => "count",
            MeasureFn::CountDistinct => "count_distinct",
            MeasureFn::Sum => "sum",
            MeasureFn::Avg => "avg",
            MeasureFn::Min => "min",
            MeasureFn::Max => "max",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    pub field: String,
    #[serde(default)]
    pub desc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    Table,
    Bar,
    Line,
    Pie,
    Funnel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Report keys, in display order.
    pub reports: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}
