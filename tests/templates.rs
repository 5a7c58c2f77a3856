//! The shipped metadata templates: each publishes cleanly, its sample data loads
//! through the normal write path, the API returns exactly what the samples say (with
//! references, users, formulas and defaults resolved), its report filters are valid
//! filters, its roles give the sample users the rows they should see, and publishing
//! the same package again changes nothing.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{ADMIN, TestServer};
use serde_json::{Map, Value, json};

const CRM_BASE: &str = include_str!("../metadata/samples/crm-base.json");
const TRAINING: &str = include_str!("../metadata/samples/training-services.json");
const MANUFACTURING: &str = include_str!("../metadata/samples/manufacturing-service.json");

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
        "article",
        "quota",
    ])
    .await;
    t.assert_forms().await;
    t.assert_samples_read_back();
    t.assert_owners_spread(&["customer", "contact", "lead", "opportunity", "activity"]);
    t.assert_reports_run().await;

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

    t.assert_republish_is_noop().await;
}
