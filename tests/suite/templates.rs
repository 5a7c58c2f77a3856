//! The shipped metadata templates: each publishes cleanly, its sample data loads
//! through the normal write path, the API returns exactly what the samples say (with
//! references, users, formulas and defaults resolved), its report filters are valid
//! filters, its roles give the sample users the rows they should see, and publishing
//! the same package again changes nothing.

use crate::common;

use std::collections::{BTreeMap, HashMap};

use common::{ADMIN, TestServer};
use reqwest::Method;
use serde_json::{Map, Value, json};

const CRM_BASE: &str = include_str!("../../metadata/samples/crm-base.json");
const TRAINING: &str = include_str!("../../metadata/samples/training-services.json");
const MANUFACTURING: &str = include_str!("../../metadata/samples/manufacturing-service.json");

/// A tenant with one template published and its samples loaded.
struct Loaded {
    server: TestServer,
    package: Value,
    samples: Value,
    /// Sample username → user id.
    users: HashMap<String, i64>,
    /// Entity → its records in creation order.
    records: BTreeMap<String, Vec<Value>>,
}

impl Loaded {
    async fn new(name: &str, samples: &str) -> Loaded {
        let server = TestServer::start(json!({"format": 1})).await;
        let package = metacrm::templates::package(name).unwrap();
        let reply = server.put("/api/meta", package.clone()).await;
        assert_eq!(reply.status, 200, "publishing {name}: {:#?}", reply.body);
        assert_eq!(reply.body["changed"], true, "{name}: {:?}", reply.body);

        let admin = metacrm::auth::users::find_by_username(&server.tenant.db, ADMIN)
            .await
            .unwrap()
            .expect("the tenant administrator exists");
        let count = metacrm::templates::load_samples(&server.tenant, name, admin.id)
            .await
            .unwrap_or_else(|e| panic!("samples of {name}: {e}"));
        let samples: Value = serde_json::from_str(samples).unwrap();
        let expected: usize = samples["records"]
            .as_object()
            .unwrap()
            .values()
            .map(|records| records.as_array().unwrap().len())
            .sum();
        assert_eq!(count, expected, "{name}: records loaded");

        let reply = server.get("/api/users").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let users = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["username"].as_str().unwrap().to_string(),
                    u["id"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut loaded = Loaded {
            server,
            package,
            samples,
            users,
            records: BTreeMap::new(),
        };
        for entity in loaded.entity_keys() {
            let records = loaded.query(&loaded.server.token, &entity, json!({})).await;
            loaded.records.insert(entity, records);
        }
        loaded
    }

    fn entity_keys(&self) -> Vec<String> {
        self.package["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect()
    }

    fn entity(&self, key: &str) -> &Value {
        self.package["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("no entity {key}"))
    }

    fn field(&self, entity: &str, key: &str) -> Option<&Value> {
        self.entity(entity)["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
    }

    /// Every record of `entity` the token's user may read, oldest first.
    async fn query(&self, token: &str, entity: &str, filter: Value) -> Vec<Value> {
        let mut body = json!({"sort": ["id"], "limit": 1000});
        if filter.as_object().is_some_and(|f| !f.is_empty()) {
            body["filter"] = filter;
        }
        let reply = self
            .server
            .send(
                reqwest::Method::POST,
                &format!("/api/data/{entity}/query"),
                Some(body),
                Some(token),
                &[],
            )
            .await;
        assert_eq!(reply.status, 200, "query {entity}: {:#?}", reply.body);
        assert!(reply.body["next"].is_null(), "{entity}: more than one page");
        reply.body["items"].as_array().unwrap().clone()
    }

    /// The record of `entity` whose `field` is `value`.
    fn find(&self, entity: &str, field: &str, value: &str) -> &Value {
        let found: Vec<&Value> = self.records[entity]
            .iter()
            .filter(|r| r[field] == value)
            .collect();
        assert_eq!(found.len(), 1, "{entity} with {field} = {value:?}");
        found[0]
    }

    fn id_of(&self, entity: &str, field: &str, value: &str) -> i64 {
        self.find(entity, field, value)["id"].as_i64().unwrap()
    }

    fn user(&self, username: &str) -> i64 {
        *self
            .users
            .get(username)
            .unwrap_or_else(|| panic!("no user {username}"))
    }

    /// The catalog lists the expected entities, in order.
    async fn assert_entities(&self, expected: &[&str]) {
        let meta = self.server.get("/api/meta").await.body;
        let keys: Vec<&str> = meta["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, expected);
        // The template is written the way the platform writes packages back.
        if let Some(at) = first_difference(&self.package, &meta, String::new()) {
            panic!("the published package differs from the template at {at}");
        }
    }

    /// Every entity has a title and a form whose layout places each field once.
    async fn assert_forms(&self) {
        for key in self.entity_keys() {
            let entity = self.entity(&key);
            assert!(entity["title_field"].is_string(), "{key} has no title");
            let reply = self
                .server
                .get(&format!("/api/meta/entities/{key}/form"))
                .await;
            assert_eq!(reply.status, 200, "form of {key}: {:?}", reply.body);
            let mut placed: Vec<&str> = reply.body["sections"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["fields"].as_array().unwrap())
                .map(|f| f["key"].as_str().unwrap())
                .collect();
            placed.sort();
            let mut fields: Vec<&str> = entity["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["key"].as_str().unwrap())
                .collect();
            fields.sort();
            assert_eq!(placed, fields, "layout of {key}");
        }
    }

    /// Each entity holds exactly its sample records, and every value written in the
    /// samples reads back: plain values as given, `$user` as that user's id, `$ref`
    /// as the id of the target record with that title.
    fn assert_samples_read_back(&self) {
        let records = self.samples["records"].as_object().unwrap();
        for (entity, samples) in records {
            let samples = samples.as_array().unwrap();
            let stored = &self.records[entity];
            assert_eq!(stored.len(), samples.len(), "{entity}: record count");
            for (index, (sample, stored)) in samples.iter().zip(stored).enumerate() {
                for (key, value) in sample.as_object().unwrap() {
                    let at = format!("{entity}[{index}].{key}");
                    let actual = &stored[key];
                    if let Some(username) = value.get("$user") {
                        assert_eq!(
                            actual,
                            &json!(self.user(username.as_str().unwrap())),
                            "{at}"
                        );
                    } else if let Some(title) = value.get("$ref") {
                        let field = self.field(entity, key).unwrap();
                        let target = field["target"].as_str().unwrap();
                        let title_field = self.entity(target)["title_field"].as_str().unwrap();
                        let id = self.id_of(target, title_field, title.as_str().unwrap());
                        assert_eq!(actual, &json!(id), "{at}");
                    } else {
                        assert_same(value, actual, &at);
                    }
                }
            }
        }
        for entity in self.entity_keys() {
            if !records.contains_key(&entity) {
                assert!(self.records[&entity].is_empty(), "{entity} has no samples");
            }
        }
    }

    /// Owners are spread over several sample users in each entity with many records.
    fn assert_owners_spread(&self, entities: &[&str]) {
        for entity in entities {
            let mut owners: Vec<i64> = self.records[*entity]
                .iter()
                .map(|r| r["owner"].as_i64().unwrap())
                .collect();
            owners.sort();
            owners.dedup();
            assert!(owners.len() >= 3, "{entity}: owners {owners:?}");
        }
    }

    /// Every shipped report runs (as JSON and as XLSX) and every dashboard shows each
    /// of its panels; a report without a filter over sample records has rows.
    async fn assert_reports_run(&self) {
        for report in self.package["reports"].as_array().unwrap() {
            let key = report["key"].as_str().unwrap();
            let reply = self.server.get(&format!("/api/reports/{key}/run")).await;
            assert_eq!(reply.status, 200, "report {key}: {:#?}", reply.body);
            let entity = report["entity"].as_str().unwrap();
            let has_samples = !self.records[entity].is_empty();
            if report.get("filter").is_none() && has_samples {
                let rows = reply.body["rows"].as_array().unwrap();
                assert!(!rows.is_empty(), "report {key} has no rows");
            }
            let xlsx = self
                .server
                .get(&format!("/api/reports/{key}/run?format=xlsx"))
                .await;
            assert_eq!(xlsx.status, 200, "report {key} as XLSX");
        }
        for dashboard in self.package["dashboards"].as_array().unwrap() {
            let key = dashboard["key"].as_str().unwrap();
            let reply = self.server.get(&format!("/api/dashboards/{key}")).await;
            assert_eq!(reply.status, 200, "dashboard {key}: {:#?}", reply.body);
            for panel in reply.body["reports"].as_array().unwrap() {
                assert!(panel.get("result").is_some(), "dashboard {key}: {panel:#?}");
            }
        }
    }

    /// Every shipped scheduled rule runs cleanly over the samples.
    async fn assert_schedules_run(&self) {
        let schedules = self.package["schedules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for schedule in schedules {
            let key = schedule["key"].as_str().unwrap();
            let ran = self
                .server
                .post(&format!("/api/schedules/{key}/run"), json!({}))
                .await;
            assert_eq!(ran.status, 200, "schedule {key}: {:?}", ran.body);
            assert_eq!(ran.body["status"], "done", "schedule {key}: {:?}", ran.body);
        }
    }

    /// Publishing the same package again is a no-op.
    async fn assert_republish_is_noop(&self) {
        let reply = self.server.put("/api/meta", self.package.clone()).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["changed"], false, "{:?}", reply.body);
        assert_eq!(reply.body["steps"], json!([]));
        let versions = self.server.get("/api/meta/versions").await.body;
        assert_eq!(versions["items"].as_array().unwrap().len(), 1);
    }

    /// Logs a sample user in with their sample password.
    async fn login(&self, username: &str) -> String {
        let password = self.samples["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .and_then(|u| u["password"].as_str())
            .unwrap_or_else(|| panic!("no sample user {username}"));
        self.server.login(username, password).await
    }

    /// How many sample records of `entity` name `username` as owner.
    fn owned_by(&self, entity: &str, usernames: &[&str]) -> usize {
        self.samples["records"][entity]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["owner"]["$user"]
                    .as_str()
                    .is_some_and(|u| usernames.contains(&u))
            })
            .count()
    }

    /// The user sees exactly `expected` records of `entity`.
    async fn assert_sees(&self, username: &str, entity: &str, expected: usize) {
        let token = self.login(username).await;
        let seen = self.query(&token, entity, json!({})).await;
        assert_eq!(seen.len(), expected, "{username} reading {entity}");
    }

    /// A request as a sample user (by token).
    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self.server.call(token, method.clone(), path, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {:#?}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// Submits a record to a flow as `token`'s user; answers the approval.
    async fn submit(&self, token: &str, entity: &str, id: i64, flow: &str) -> Value {
        self.call(
            token,
            Method::POST,
            &format!("/api/data/{entity}/{id}/submit"),
            Some(json!({"flow": flow})),
        )
        .await
    }

    /// Acts on an approval as `token`'s user, after checking it is in their inbox.
    async fn act(&self, token: &str, approval: &Value, action: &str, body: Value) -> Value {
        let id = approval["id"].as_i64().unwrap();
        let inbox = self
            .call(token, Method::GET, "/api/approvals/inbox", None)
            .await;
        assert!(
            inbox["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|item| item["id"] == id),
            "approval {id} is not in the inbox: {inbox:#?}"
        );
        self.call(
            token,
            Method::POST,
            &format!("/api/approvals/{id}/{action}"),
            Some(body),
        )
        .await
    }

    /// Every record of `entity` (all pages), oldest first, as the administrator.
    async fn all(&self, entity: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = Value::Null;
        loop {
            let mut body = json!({"sort": ["id"], "limit": 1000});
            if !after.is_null() {
                body["after"] = after.clone();
            }
            let reply = self
                .server
                .post(&format!("/api/data/{entity}/query"), body)
                .await;
            assert_eq!(reply.status, 200, "query {entity}: {:#?}", reply.body);
            items.extend(reply.body["items"].as_array().unwrap().iter().cloned());
            after = reply.body["next"].clone();
            if after.is_null() {
                return items;
            }
        }
    }

    async fn create(&self, entity: &str, record: Value) -> Value {
        self.server.create(entity, record).await
    }
}

/// A sample value and what the API returned for it: numbers compared by value,
/// datetimes as instants, everything else exactly.
fn assert_same(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            assert!((e - a).abs() < 1e-6, "{at}: {e} != {a}");
        }
        (Value::String(e), Value::String(a)) if chrono::DateTime::parse_from_rfc3339(e).is_ok() => {
            let e = chrono::DateTime::parse_from_rfc3339(e).unwrap();
            let a = chrono::DateTime::parse_from_rfc3339(a)
                .unwrap_or_else(|_| panic!("{at}: {a:?} is not a datetime"));
            assert_eq!(e, a, "{at}");
        }
        _ => assert_eq!(expected, actual, "{at}"),
    }
}

/// Where two JSON values first differ, as a path.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let (x, y) = (a.get(key), b.get(key));
                match (x, y) {
                    (Some(x), Some(y)) => {
                        if let Some(found) = first_difference(x, y, format!("{at}.{key}")) {
                            return Some(found);
                        }
                    }
                    _ => return Some(format!("{at}.{key}: {x:?} vs {y:?}")),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

fn assert_money(value: &Value, expected: f64, what: &str) {
    assert!(
        (number(value) - expected).abs() < 0.001,
        "{what}: {value} != {expected}"
    );
}

/// `field` of every record of `entity`, counted by value.
fn tally(records: &[Value], field: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts
            .entry(record[field].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_base_template_loads_with_samples() {
    let t = Loaded::new("crm-base", CRM_BASE).await;
    t.assert_entities(&[
        "campaign",
        "customer",
        "contact",
        "lead",
        "product",
        "opportunity",
        "activity",
        "quote",
        "quote_line",
        "sales_order",
        "order_line",
        "payment",
        "invoice_request",
        "expense",
        "article",
        "quota",
    ])
    .await;
    t.assert_forms().await;
    t.assert_samples_read_back();
    t.assert_owners_spread(&[
        "customer",
        "contact",
        "lead",
        "opportunity",
        "activity",
        "invoice_request",
        "expense",
    ]);
    t.assert_reports_run().await;
    t.assert_schedules_run().await;

    // Formulas: line amounts, the discounted quote total, the validity date.
    for line in t.records["quote_line"]
        .iter()
        .chain(&t.records["order_line"])
    {
        let expected = number(&line["quantity"]) * number(&line["unit_price"]);
        assert_money(&line["amount"], expected, "line amount");
    }
    let quote = t.find("quote", "title", "震华信息 进销存专业版升级报价");
    assert_money(&quote["amount"], 152000.0, "quote amount");
    assert_money(
        &quote["final_amount"],
        144400.0,
        "final amount after 5% off",
    );
    assert_eq!(quote["valid_until"], "2026-10-16");
    let code = quote["code"].as_str().unwrap();
    assert!(
        code.len() == 13 && code.starts_with("QT") && code.as_bytes()[8] == b'-',
        "quote code {code}"
    );
    let line = t.find("quote_line", "item", "实施服务 12 人天");
    assert_money(&line["amount"], 18000.0, "12 × 1500");
    assert_eq!(
        line["quote"],
        json!(t.id_of("quote", "title", "震华信息 进销存专业版升级报价"))
    );
    let order = t.find("sales_order", "title", "恒达五金 ERP 财务一体化");
    assert_money(&order["amount"], 275448.0, "order amount");
    assert_money(&order["unpaid_amount"], 55089.6, "unpaid");
    assert_eq!(order["stage"], "shipped");
    let campaign = t.find("campaign", "name", "2026 华南智能制造展");
    assert_money(&campaign["roi"], 459.5, "campaign ROI %");
    let planned = t.find("campaign", "name", "2027 新年续费邮件推广");
    assert!(planned["roi"].is_null(), "no cost, no ROI");
    let late = t.find("payment", "title", "恒达五金 上线款 30%");
    assert_eq!(late["overdue_days"], 5);
    assert!(t.find("payment", "title", "恒达五金 质保金 20%")["overdue_days"].is_null());

    // References, including a customer's parent company.
    let zhenhua = t.id_of("customer", "name", "深圳市震华信息技术有限公司");
    assert_eq!(t.find("contact", "name", "陈建华")["customer"], zhenhua);
    assert_eq!(
        t.find("customer", "name", "深圳市震华信息技术有限公司东莞分公司")["parent"],
        zhenhua
    );
    assert_eq!(
        tally(&t.records["opportunity"], "stage"),
        BTreeMap::from([
            ("followup".into(), 3),
            ("initial".into(), 2),
            ("lost".into(), 1),
            ("negotiation".into(), 3),
            ("quote".into(), 3),
            ("won".into(), 3),
        ])
    );

    // Defaults and conditional requirements on new records.
    let activity = t
        .create(
            "activity",
            json!({"subject": "电话回访", "kind": "call", "customer": zhenhua, "result": "客户满意"}),
        )
        .await;
    let admin = t.user(ADMIN);
    assert_eq!(
        activity["assigned_to"], admin,
        "assigned_to defaults to the owner"
    );
    assert_eq!(activity["status"], "done");
    assert!(activity["activity_date"].is_string());
    let reply = t
        .server
        .post(
            "/api/data/lead",
            json!({"name": "无联系方式", "source": "website"}),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let mut fields = TestServer::fields_of(&reply);
    fields.sort();
    assert_eq!(fields, ["email", "phone"]);
    let lead = t
        .create(
            "lead",
            json!({"email": "only@mail.cn", "source": "website"}),
        )
        .await;
    assert_eq!(lead["status"], "new");
    let reply = t
        .server
        .post(
            "/api/data/customer",
            json!({"name": "深圳市震华信息技术有限公司", "region": "south"}),
        )
        .await;
    // The duplicate check answers first, naming the existing customer; forcing past
    // it still meets the unique name.
    assert_eq!(reply.status, 409, "duplicate customer: {:?}", reply.body);
    assert_eq!(
        reply.body["error"]["details"]["matches"][0]["verdict"],
        "certain"
    );
    let reply = t
        .server
        .post(
            "/api/data/customer?force=true",
            json!({"name": "深圳市震华信息技术有限公司", "region": "south"}),
        )
        .await;
    assert_eq!(reply.status, 422, "duplicate customer: {:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["name"]);

    // Roles: a rep sees their own customers, the manager the whole sales team's,
    // finance every customer; the rep does not see product costs.
    let zhangwei = t.owned_by("customer", &["zhangwei"]);
    assert!(zhangwei >= 3);
    t.assert_sees("zhangwei", "customer", zhangwei).await;
    let team = t.owned_by("customer", &["zhangwei", "lina", "wangqiang", "liuyang"]);
    t.assert_sees("chenjing", "customer", team).await;
    t.assert_sees("zhaomin", "customer", t.records["customer"].len())
        .await;
    let token = t.login("zhangwei").await;
    let products = t.query(&token, "product", json!({})).await;
    assert_eq!(products.len(), t.records["product"].len());
    assert!(products.iter().all(|p| p.get("cost_price").is_none()));
    assert!(products.iter().all(|p| p.get("list_price").is_some()));

    // 开票申请: the tax split; a rep's request goes through the sales manager and
    // finance (开票审批), and finance then records the invoice.
    let issued = t.find("invoice_request", "title", "恒达五金 首付款 50% 开票");
    assert_money(&issued["tax_amount"], 15844.35, "137724 × 13 / 113");
    assert_money(&issued["net_amount"], 121879.65, "without tax");
    let service_fee = t.find("invoice_request", "title", "中科恒信 年度运维续约开票");
    assert_money(&service_fee["tax_amount"], 1811.32, "6% on services");
    let zhangwei = t.login("zhangwei").await;
    let chenjing = t.login("chenjing").await;
    let zhaomin = t.login("zhaomin").await;
    let hengda = t.id_of("customer", "name", "东莞市恒达精密五金制品有限公司");
    let request = json!({
        "title": "恒达五金 质保金 20% 开票", "customer": hengda,
        "sales_order": t.id_of("sales_order", "title", "恒达五金 ERP 财务一体化"),
        "payment": t.id_of("payment", "title", "恒达五金 质保金 20%"),
        "amount": "55089.60", "buyer_name": "东莞市恒达精密五金制品有限公司",
        "buyer_tax_no": "91441900MA4W7D5Y2N"});
    let reply = t
        .server
        .call(
            &zhangwei,
            Method::POST,
            "/api/data/invoice_request",
            Some(request.clone()),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(
        TestServer::fields_of(&reply),
        ["receiver_email"],
        "a 数电发票 needs a mailbox"
    );
    let mut request = object(request);
    request.insert("receiver_email".into(), json!("caiwu@hengda-hw.cn"));
    let created = t
        .call(
            &zhangwei,
            Method::POST,
            "/api/data/invoice_request",
            Some(Value::Object(request)),
        )
        .await;
    let path = format!("/api/data/invoice_request/{}", created["id"]);
    assert_eq!(created["status"], "draft");
    assert_eq!(created["invoice_type"], "e_special");
    assert_money(&created["tax_amount"], 6337.74, "55089.6 × 13 / 113");
    assert_money(&created["net_amount"], 48751.86, "without tax");
    assert!(created["code"].as_str().unwrap().starts_with("KP"));
    let reply = t
        .server
        .call(
            &zhangwei,
            Method::PATCH,
            &path,
            Some(json!({"status": "issued"})),
        )
        .await;
    assert_eq!(
        reply.status, 403,
        "a rep does not issue invoices: {:?}",
        reply.body
    );
    let approval = t
        .submit(
            &zhangwei,
            "invoice_request",
            created["id"].as_i64().unwrap(),
            "invoice_approval",
        )
        .await;
    assert_eq!(approval["step"], "manager");
    let step = t
        .act(
            &chenjing,
            &approval,
            "approve",
            json!({"comment": "同意开票"}),
        )
        .await;
    assert_eq!(step["step"], "finance", "gm skipped: amount ≤ 500000");
    let done = t.act(&zhaomin, &approval, "approve", json!({})).await;
    assert_eq!(done["status"], "approved");
    let approved = t.call(&zhaomin, Method::GET, &path, None).await;
    assert_eq!(approved["status"], "approved");
    let reply = t
        .server
        .call(
            &zhaomin,
            Method::PATCH,
            &path,
            Some(json!({"status": "issued"})),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let mut missing = TestServer::fields_of(&reply);
    missing.sort();
    assert_eq!(missing, ["invoice_no", "issue_date"]);
    let issued = t
        .call(
            &zhaomin,
            Method::PATCH,
            &path,
            Some(json!({"status": "issued", "invoice_no": "04512399", "issue_date": "2026-11-24"})),
        )
        .await;
    assert_eq!(issued["status"], "issued");

    // 费用 per customer: above 5000 the general manager approves too; finance rejects.
    let lina = t.login("lina").await;
    let expense = t
        .call(
            &lina,
            Method::POST,
            "/api/data/expense",
            Some(
                json!({"title": "广州-上海 明德贸易总部汇报 差旅", "kind": "travel",
                        "customer": t.id_of("customer", "name", "广州天河明德贸易有限公司"),
                        "amount": 6200, "receipt_count": 6}),
            ),
        )
        .await;
    assert_eq!(expense["status"], "draft");
    assert_eq!(
        expense["rep"],
        t.user("lina"),
        "the rep defaults to the owner"
    );
    assert!(expense["code"].as_str().unwrap().starts_with("FY"));
    let approval = t
        .submit(
            &lina,
            "expense",
            expense["id"].as_i64().unwrap(),
            "expense_approval",
        )
        .await;
    assert_eq!(approval["step"], "manager");
    let step = t.act(&chenjing, &approval, "approve", json!({})).await;
    assert_eq!(step["step"], "gm", "6200 > 5000");
    let zhoujianguo = t.login("zhoujianguo").await;
    let step = t.act(&zhoujianguo, &approval, "approve", json!({})).await;
    assert_eq!(step["step"], "finance");
    let done = t
        .act(
            &zhaomin,
            &approval,
            "reject",
            json!({"comment": "缺少酒店发票，请补齐后重新提交"}),
        )
        .await;
    assert_eq!(done["status"], "rejected");
    let rejected = t
        .call(
            &lina,
            Method::GET,
            &format!("/api/data/expense/{}", expense["id"]),
            None,
        )
        .await;
    assert_eq!(rejected["status"], "rejected");

    // Discounts: quote approval (报价审批) applies above 10% off; the manager decides.
    let small = t.id_of("quote", "title", "明德贸易 门店进销存报价");
    let reply = t
        .server
        .call(
            &t.login("lina").await,
            Method::POST,
            &format!("/api/data/quote/{small}/submit"),
            Some(json!({"flow": "quote_approval"})),
        )
        .await;
    assert_eq!(
        reply.status, 422,
        "no discount, no approval: {:?}",
        reply.body
    );
    let discounted = t.find("quote", "title", "震华信息 CRM 系统报价");
    assert_eq!(discounted["discount_rate"], 12);
    let approval = t
        .submit(
            &zhangwei,
            "quote",
            discounted["id"].as_i64().unwrap(),
            "quote_approval",
        )
        .await;
    let done = t.act(&chenjing, &approval, "approve", json!({})).await;
    assert_eq!(done["status"], "approved", "gm only above 20% off");
    let quote = t
        .call(
            &zhangwei,
            Method::GET,
            &format!("/api/data/quote/{}", discounted["id"]),
            None,
        )
        .await;
    assert_eq!(quote["status"], "approved");

    // 客服/售后: every customer without credit terms, their own service calls, no payments.
    let hejing = t.login("hejing").await;
    let customers = t.query(&hejing, "customer", json!({})).await;
    assert_eq!(customers.len(), t.records["customer"].len());
    assert!(customers.iter().all(|c| c.get("credit_limit").is_none()));
    let activities = t.query(&hejing, "activity", json!({})).await;
    assert!(activities.len() > t.owned_by("activity", &["hejing"]));
    t.call(
        &hejing,
        Method::POST,
        "/api/data/activity",
        Some(
            json!({"subject": "震华信息 报表模板需求回访", "kind": "callback",
                    "customer": t.id_of("customer", "name", "深圳市震华信息技术有限公司"),
                    "result": "已转实施顾问评估"}),
        ),
    )
    .await;
    let reply = t
        .server
        .call(
            &hejing,
            Method::POST,
            "/api/data/payment/query",
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);

    t.assert_republish_is_noop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn training_services_template_loads_with_samples() {
    let t = Loaded::new("training-services", TRAINING).await;
    t.assert_entities(&[
        "customer",
        "contact_record",
        "action_plan",
        "quote",
        "contract",
        "collection_form",
        "training_session",
        "payment_confirmation",
        "invoice",
        "expense",
        "points_record",
    ])
    .await;
    t.assert_forms().await;
    t.assert_samples_read_back();
    t.assert_owners_spread(&["customer", "contact_record", "quote", "expense"]);
    t.assert_reports_run().await;

    // The eight-stage pipeline, every stage but one populated.
    assert_eq!(
        tally(&t.records["customer"], "stage"),
        BTreeMap::from([
            ("final_payment".into(), 1),
            ("first_payment".into(), 1),
            ("followup".into(), 2),
            ("initial".into(), 3),
            ("lost".into(), 1),
            ("negotiation".into(), 2),
            ("quote".into(), 2),
            ("signed".into(), 1),
            ("training".into(), 1),
        ])
    );

    // Formulas: a formula reading another formula, date arithmetic, a computed select.
    let quote = t.find("quote", "title", "震华信息 秋季户外拓展两天一夜");
    assert_money(&quote["base_amount"], 91200.0, "120 people × 2 days × 380");
    assert_money(&quote["total_amount"], 98040.0, "(91200 + 12000) × 95%");
    assert_eq!(quote["valid_until"], "2026-10-01");
    let contract = t.find("contract", "title", "震华信息 2026 秋季拓展合同");
    assert_money(&contract["contract_amount"], 98040.0, "contract");
    assert_money(&contract["outstanding"], 49020.0, "outstanding");
    assert_eq!(contract["training_days"], 2);
    assert_eq!(
        contract["quote"],
        json!(t.id_of("quote", "title", "震华信息 秋季户外拓展两天一夜"))
    );
    let levels: BTreeMap<String, Value> = t.records["training_session"]
        .iter()
        .map(|s| {
            (
                s["title"].as_str().unwrap().to_string(),
                s["quality_level"].clone(),
            )
        })
        .collect();
    assert_eq!(levels["华阳电子 新员工入职培训 第 1 期"], "excellent");
    assert_eq!(levels["华阳电子 新员工入职培训 第 2 期"], "good");
    assert_eq!(levels["华阳电子 新员工入职培训 第 5 期"], "average");
    assert!(levels["瑞丰金融 领导力训练营"].is_null());
    let session = t.find("training_session", "title", "震华信息 秋季拓展 第一天");
    assert_eq!(session["trainer"], t.user("chenhao"));
    assert_eq!(session["assistant"], t.user("linxue"));
    let invoice = t.find("invoice", "title", "华阳电子 全款发票");
    assert_money(&invoice["tax_amount"], 6769.81, "119600 × 6 / 106");
    let plan = t.find("action_plan", "title", "拜访德兴实业刘总，敲定年会方案");
    assert_eq!(plan["main_to"], t.user("huangwei"));
    assert_eq!(plan["cc_user"], t.user("chenhao"));
    assert_eq!(plan["notify_departments"], json!(["training", "finance"]));

    // Conditional rules: a finished session needs a rating; a finished plan a summary.
    let zhenhua = t.id_of("customer", "name", "深圳市震华信息技术有限公司");
    let reply = t
        .server
        .post(
            "/api/data/training_session",
            json!({"title": "补训", "customer": zhenhua, "service_category": "team_building",
                   "training_date": "2026-11-23", "time_slot": "afternoon", "duration_hours": 3,
                   "trainer": t.user("chenhao"), "status": "done"}),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["quality_score"]);
    let reply = t
        .server
        .post(
            "/api/data/action_plan",
            json!({"title": "回访", "plan_date": "2026-11-23", "purpose": "回访",
                   "main_to": t.user("huangwei"), "status": "done"}),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["summary"]);
    let expense = t
        .create(
            "expense",
            json!({"title": "停车费", "customer": zhenhua, "kind": "transport", "amount": 20}),
        )
        .await;
    assert_eq!(expense["rep"], t.user(ADMIN), "rep defaults to the owner");
    assert_eq!(expense["status"], "pending");

    // Roles: reps see their own customers, the sales manager both teams', trainers
    // every customer but not the expected amounts.
    let zhangmin = t.owned_by("customer", &["zhangmin"]);
    t.assert_sees("zhangmin", "customer", zhangmin).await;
    let teams = t.owned_by("customer", &["zhangmin", "liqiang", "wangfang", "zhaolei"]);
    t.assert_sees("huangwei", "customer", teams).await;
    let token = t.login("chenhao").await;
    let customers = t.query(&token, "customer", json!({})).await;
    assert_eq!(customers.len(), t.records["customer"].len());
    assert!(customers.iter().all(|c| c.get("expected_amount").is_none()));

    // Vehicles and drivers on the training schedule: the monthly vehicle report counts
    // each vehicle's trips.
    let reply = t.server.get("/api/reports/vehicle_usage/run").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let trips: f64 = reply.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| number(&row[3]))
        .sum();
    let with_vehicle = t.records["training_session"]
        .iter()
        .filter(|s| s["vehicle"].is_string() && s["status"] != "cancelled")
        .count();
    assert_eq!(trips as usize, with_vehicle, "{:#?}", reply.body);
    // Generated demo data is crm-base's: a demo tenant of another template (restarted
    // with the default --template crm-base) gets none.
    for template in ["crm-base", "training-services"] {
        let report =
            metacrm::templates::generate_demo_data(&t.server.tenant, template, 10, false).await;
        assert!(report.unwrap().is_none(), "{template}");
    }

    t.assert_republish_is_noop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn manufacturing_service_template_loads_with_samples() {
    let t = Loaded::new("manufacturing-service", MANUFACTURING).await;
    t.assert_entities(&[
        "product",
        "customer",
        "contact",
        "marketing_activity",
        "opportunity",
        "competitor",
        "sales_contract",
        "sales_order",
        "order_change",
        "outbound_order",
        "shipment",
        "invoice_request",
        "payment",
        "vehicle",
        "fault_report",
        "repair_order",
        "parts_recovery",
        "complaint",
        "report_8d",
        "satisfaction_survey",
        "inspection",
        "visit_record",
    ])
    .await;
    t.assert_forms().await;
    t.assert_samples_read_back();
    t.assert_owners_spread(&["customer", "contact", "opportunity", "fault_report"]);
    t.assert_reports_run().await;

    // Warranty from commissioning, else delivery, plus the warranty months.
    let warranty = |vin: &str| t.find("vehicle", "vin", vin)["warranty_until"].clone();
    assert_eq!(warranty("LZHBEV6125S000101"), "2030-07-01");
    assert_eq!(warranty("LZHBEV6125S000104"), "2030-06-20");
    assert_eq!(warranty("ZP350-2611-0001"), "2034-11-21");
    assert_eq!(warranty("LZHBEV6820R000055"), "2027-04-22");

    // Order amounts and receivables, a tax split, averages and next dates.
    let order = t.find("sales_order", "title", "莞通公交 第一批 30 台");
    assert_money(&order["amount"], 33_600_000.0, "30 × 1 120 000");
    assert_money(&order["outstanding"], 13_440_000.0, "after the advance");
    assert_eq!(
        order["product"],
        json!(t.id_of("product", "model_code", "ZH6105BEV"))
    );
    let invoice = t.find("invoice_request", "title", "莞通公交 第一批 30 台开票");
    assert_money(&invoice["tax_amount"], 3_865_486.73, "13% included");
    let survey = t.find(
        "satisfaction_survey",
        "title",
        "鹏运巴士 2026 年度满意度回访",
    );
    assert_money(&survey["overall_score"], 4.3, "(4 + 4 + 5) / 3");
    let inspection = t.find("inspection", "title", "鹏运巴士 三车队月度巡检");
    assert_eq!(inspection["next_inspection"], "2027-02-02");
    assert_eq!(inspection["items_checked"].as_array().unwrap().len(), 5);

    // The decision tree: contacts point at their superiors.
    assert_eq!(
        t.find("contact", "name", "罗志强")["reports_to"],
        json!(t.id_of("contact", "name", "黄振国"))
    );
    assert!(t.find("contact", "name", "黄振国")["reports_to"].is_null());

    // Pipelines: repairs start → in progress → done; complaints close the loop.
    assert_eq!(
        tally(&t.records["repair_order"], "stage"),
        BTreeMap::from([
            ("done".into(), 4),
            ("in_progress".into(), 1),
            ("start".into(), 2)
        ])
    );
    assert_eq!(
        t.find("complaint", "title", "沪畅配送 高压故障维修时间过长")["stage"],
        "closed"
    );

    // Out-of-warranty repairs need a charge; a partial shipment needs a reason.
    let customer = t.id_of("customer", "name", "北京京运通客运有限公司");
    let repair = object(
        json!({"title": "更换雨刮电机", "customer": customer, "fault_type": "body",
        "reported_at": "2026-11-23T09:00:00+08:00", "technician": t.user("zhouqiang"),
        "warranty_type": "out_warranty"}),
    );
    let reply = t
        .server
        .post("/api/data/repair_order", Value::Object(repair.clone()))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["charge"]);
    let mut paid = repair;
    paid.insert("charge".into(), json!(680));
    let created = t.create("repair_order", Value::Object(paid)).await;
    assert_eq!(created["stage"], "start");
    assert!(created["code"].as_str().unwrap().starts_with("WX"));
    let order_id = t.id_of("sales_order", "title", "钱江公交 120 台（分三批交付）");
    let reply = t
        .server
        .post(
            "/api/data/shipment",
            json!({"title": "钱江 第 1 批", "sales_order": order_id, "batch_no": 1, "quantity": 12,
                   "ship_date": "2026-11-28", "is_partial": true}),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["partial_reason"]);

    // Roles: a regional rep sees their own customers, the sales manager all regions',
    // after-sales every order but not its prices.
    let south = t.owned_by("customer", &["liujianhua"]);
    t.assert_sees("liujianhua", "customer", south).await;
    t.assert_sees("chenzhigang", "customer", t.records["customer"].len())
        .await;
    let token = t.login("zhaogang").await;
    let orders = t.query(&token, "sales_order", json!({})).await;
    assert_eq!(orders.len(), t.records["sales_order"].len());
    assert!(orders.iter().all(|o| o.get("unit_price").is_none()));
    assert!(orders.iter().all(|o| o.get("configuration").is_some()));

    // 旧件回收: each part's warranty end from its delivery date and warranty months, and
    // whether it failed within it (保内旧件 are claimed from the supplier).
    let part = |title: &str| t.find("parts_recovery", "title", title);
    for (title, until, in_warranty) in [
        ("D10103 电机控制器旧件返厂", "2030-06-18", true),
        ("D10102 电池模组旧件", "2033-06-18", true),
        ("F2888 高压线束旧件返厂分析", "2026-09-01", false),
        ("K8055 后轮摩擦片旧件", "2026-04-10", false),
    ] {
        assert_eq!(part(title)["warranty_until"], until, "{title}");
        assert_eq!(part(title)["in_warranty"], in_warranty, "{title}");
    }
    assert_eq!(
        part("D10103 电机控制器旧件返厂")["repair_order"],
        json!(t.id_of("repair_order", "title", "D10103 电机控制器更换"))
    );
    // A new one: 18 months from 31 August end on 28 February; recomputed on update.
    let zhaogang = t.login("zhaogang").await;
    let recovered = t
        .call(
            &zhaogang,
            Method::POST,
            "/api/data/parts_recovery",
            Some(json!({"title": "E60302 充电枪锁止电机旧件",
                        "repair_order": t.id_of("repair_order", "title", "E60302 充电枪锁止机构调整"),
                        "customer": t.id_of("customer", "name", "东莞市莞通公共汽车有限公司"),
                        "part_name": "充电枪锁止电机", "part_no": "CG-LK-220",
                        "supplier": "深圳市联驰电驱科技有限公司",
                        "installed_date": "2024-08-31", "warranty_months": 18,
                        "failure_date": "2026-03-01", "disposal": "supplier_claim"})),
        )
        .await;
    assert_eq!(recovered["warranty_until"], "2026-02-28");
    assert_eq!(recovered["in_warranty"], false);
    assert_eq!(recovered["status"], "pending");
    assert_eq!(recovered["quantity"], 1);
    assert_eq!(recovered["approved"], false);
    assert!(recovered["code"].as_str().unwrap().starts_with("JH"));
    let path = format!("/api/data/parts_recovery/{}", recovered["id"]);
    let corrected = t
        .call(
            &zhaogang,
            Method::PATCH,
            &path,
            Some(json!({"failure_date": "2026-02-28"})),
        )
        .await;
    assert_eq!(corrected["in_warranty"], true);
    // 旧件处置审批: quality, then finance for a supplier claim; approval marks it.
    let approval = t
        .submit(
            &zhaogang,
            "parts_recovery",
            recovered["id"].as_i64().unwrap(),
            "parts_disposal",
        )
        .await;
    assert_eq!(approval["step"], "quality");
    let step = t
        .act(&t.login("limin").await, &approval, "approve", json!({}))
        .await;
    assert_eq!(step["step"], "finance");
    let done = t
        .act(&t.login("wufang").await, &approval, "approve", json!({}))
        .await;
    assert_eq!(done["status"], "approved");
    let reply = t
        .server
        .call(
            &zhaogang,
            Method::PATCH,
            &path,
            Some(json!({"status": "claimed", "received_date": "2026-03-05"})),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["claim_amount"]);
    let claimed = t
        .call(
            &zhaogang,
            Method::PATCH,
            &path,
            Some(json!({"status": "claimed", "received_date": "2026-03-05", "claim_amount": 420})),
        )
        .await;
    assert_eq!(claimed["approved"], true);
    assert_eq!(claimed["status"], "claimed");

    t.assert_republish_is_noop().await;
}

/// `serve --demo`'s generated data on top of crm-base and its samples: realistic,
/// consistent records written through the records store, and a generator that adds
/// only what is missing when it runs again (after a restart or an interrupted run).
#[tokio::test(flavor = "multi_thread")]
async fn crm_base_demo_data_is_generated_once_and_consistent() {
    use metacrm::demo_data::{DemoOptions, generate};

    let t = Loaded::new("crm-base", CRM_BASE).await;
    let tenant = &t.server.tenant;
    let options = |customers| DemoOptions {
        customers,
        ..DemoOptions::default()
    };
    // An interrupted run (the last batch short), the full run, and a restart.
    let first = metacrm::templates::generate_demo_data(tenant, "crm-base", 90, false)
        .await
        .unwrap()
        .expect("crm-base has generated demo data");
    assert_eq!(first.count("customer"), 90);
    assert_eq!(first.existing_customers, 0);
    let second = generate(tenant, &options(200)).await.unwrap();
    assert_eq!(second.count("customer"), 110);
    assert_eq!(second.existing_customers, 90);
    let third = generate(tenant, &options(200)).await.unwrap();
    assert_eq!(third.total(), 0, "{third:?}");
    assert_eq!(third.existing_customers, 200);
    eprintln!(
        "demo data for 200 customers: {:?} in {:?} + {:?}",
        second.created, first.elapsed, second.elapsed
    );

    // Every generated record is there, next to the samples.
    let mut by_entity: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entity in [
        "customer",
        "contact",
        "lead",
        "opportunity",
        "activity",
        "quote",
        "quote_line",
        "sales_order",
        "order_line",
        "payment",
    ] {
        let records = t.all(entity).await;
        let samples = t.records[entity].len();
        let generated = first.count(entity) + second.count(entity);
        assert_eq!(records.len(), samples + generated, "{entity}");
        by_entity.insert(entity.to_string(), records[samples..].to_vec());
    }
    let customers = &by_entity["customer"];
    assert!(by_entity["contact"].len() >= customers.len());
    assert!(by_entity["activity"].len() >= 2 * customers.len());
    assert!(by_entity["lead"].len() >= customers.len() / 5);
    assert!(!by_entity["sales_order"].is_empty());
    assert!(!by_entity["payment"].is_empty());

    // Company names: unique, shaped like registered names, never a sample's.
    let mut names: Vec<&str> = t.records["customer"]
        .iter()
        .chain(customers)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "company names are unique");
    for customer in customers {
        let name = customer["name"].as_str().unwrap();
        let city = customer["city"].as_str().unwrap();
        assert!(name.starts_with(city) && name.ends_with("公司"), "{name}");
        assert!(
            customer["address"].as_str().unwrap().starts_with(city),
            "{customer}"
        );
        assert!(customer["region"].is_string() && customer["tax_no"].is_string());
    }
    let mobile = regex::Regex::new(r"^1[3-9][0-9]{9}$").unwrap();
    for contact in &by_entity["contact"] {
        let number = contact["mobile"].as_str().unwrap();
        assert!(mobile.is_match(number), "{number}");
    }

    // Owners are the sample reps, spread; service calls are the service desk's.
    let reps: Vec<i64> = ["zhangwei", "lina", "wangqiang", "liuyang"]
        .iter()
        .map(|u| t.user(u))
        .collect();
    let owners = tally(
        &customers
            .iter()
            .map(|c| json!({"owner": c["owner"].to_string()}))
            .collect::<Vec<_>>(),
        "owner",
    );
    assert_eq!(owners.len(), 4, "{owners:?}");
    for rep in &reps {
        assert!(
            owners[&rep.to_string()] >= customers.len() / 10,
            "{owners:?}"
        );
    }
    for activity in &by_entity["activity"] {
        if activity["kind"] == "service" || activity["kind"] == "callback" {
            assert_eq!(activity["owner"], t.user("hejing"));
        } else {
            assert!(reps.contains(&activity["owner"].as_i64().unwrap()));
        }
    }

    // Opportunities across every stage of the pipeline.
    let stages = tally(&by_entity["opportunity"], "stage");
    let opportunities = by_entity["opportunity"].len();
    for stage in ["initial", "followup", "quote", "negotiation", "won", "lost"] {
        let n = stages.get(stage).copied().unwrap_or(0);
        assert!(n * 20 >= opportunities, "{stage}: {stages:?}");
    }
    // Follow-ups over the last year, a few planned ahead.
    let today = chrono::Utc::now().date_naive();
    let dates: Vec<chrono::NaiveDate> = by_entity["activity"]
        .iter()
        .map(|a| a["activity_date"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(dates.iter().any(|d| (today - *d).num_days() > 300));
    assert!(dates.iter().any(|d| (today - *d).num_days() < 30));
    assert!(dates.iter().all(|d| (today - *d).num_days() <= 366));

    // Money adds up: quote lines make the quote, orders match their payments.
    let mut quoted: BTreeMap<i64, f64> = BTreeMap::new();
    for line in &by_entity["quote_line"] {
        *quoted.entry(line["quote"].as_i64().unwrap()).or_default() += number(&line["amount"]);
    }
    for quote in &by_entity["quote"] {
        let id = quote["id"].as_i64().unwrap();
        assert_money(&quote["amount"], quoted[&id], "quote amount = its lines");
    }
    let mut received: BTreeMap<i64, f64> = BTreeMap::new();
    for payment in &by_entity["payment"] {
        let order = payment["sales_order"].as_i64().unwrap();
        *received.entry(order).or_default() +=
            payment["amount_received"].as_f64().unwrap_or_default();
    }
    for order in &by_entity["sales_order"] {
        let id = order["id"].as_i64().unwrap();
        let paid = received.get(&id).copied().unwrap_or_default();
        assert_money(&order["received_amount"], paid, "received = payments");
        let status = match paid {
            0.0 => "unpaid",
            p if (p - number(&order["amount"])).abs() < 0.001 => "paid",
            _ => "partial",
        };
        assert_eq!(order["payment_status"], status, "{order}");
    }

    // Written like any write: the owner created it (audit), follow-ups count as contacts,
    // and query and search find it.
    let customer = &customers[customers.len() / 2];
    let name = customer["name"].as_str().unwrap();
    let id = customer["id"].as_i64().unwrap();
    let history = t
        .server
        .get(&format!("/api/data/customer/{id}/history"))
        .await
        .body;
    assert_eq!(history["items"][0]["action"], "create");
    assert_eq!(history["items"][0]["user"], customer["owner"]);
    assert!(customer["last_contact_at"].is_string(), "{customer}");
    let found = t
        .query(
            &t.server.token,
            "customer",
            json!({"field": "name", "op": "eq", "value": name}),
        )
        .await;
    assert_eq!(found.len(), 1);
    let reply = t
        .server
        .get(&format!(
            "/api/search?entity=customer&q={}",
            name.bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["hits"][0]["id"], id, "{:#?}", reply.body);
    // The rep who owns it finds it by its short name too.
    let owner = ["zhangwei", "lina", "wangqiang", "liuyang"]
        .into_iter()
        .find(|u| json!(t.user(u)) == customer["owner"])
        .unwrap();
    let token = t.login(owner).await;
    let short = customer["short_name"].as_str().unwrap();
    let reply = t
        .server
        .call(
            &token,
            Method::GET,
            &format!(
                "/api/search?entity=customer&q={}",
                short
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            ),
            None,
        )
        .await;
    assert!(
        reply.body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == id),
        "{short}: {:#?}",
        reply.body
    );

    // The reports run over the generated data: the funnel shows every stage.
    let funnel = t.server.get("/api/reports/sales_funnel/run").await;
    assert_eq!(funnel.status, 200, "{:?}", funnel.body);
}
