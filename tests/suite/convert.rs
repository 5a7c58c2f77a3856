//! Conversions over HTTP (线索转化): a lead becomes a customer and its contact in one
//! transaction — created through the ordinary write path, linked to each other and to
//! the lead, the lead marked converted — or nothing changes at all.

use crate::common;

use common::TestServer;
use common::web::WebUser;
use reqwest::Method;
use serde_json::{Value, json};

fn sources() -> Value {
    json!([{"value": "website", "label": "官网咨询"}, {"value": "exhibition", "label": "展会"}])
}

fn regions() -> Value {
    json!([{"value": "south", "label": "华南"}, {"value": "east", "label": "华东"}])
}

/// The lead conversion of the shipped CRM template, on a small package: customers
/// need a unique name and a region; a contact needs its customer.
fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true, "unique": true, "max_length": 200},
          {"key": "code", "type": "auto_number", "format": "C{0000}"},
          {"key": "phone", "type": "phone"},
          {"key": "region", "type": "select", "required": true, "options": regions()},
          {"key": "source", "type": "select", "options": sources()},
          {"key": "from_lead", "type": "reference", "target": "lead", "read_only": true}]},
      {"key": "contact", "label": "联系人", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "customer", "type": "reference", "target": "customer", "required": true},
          {"key": "job_title", "type": "text"},
          {"key": "mobile", "type": "phone"},
          {"key": "email", "type": "email"}]},
      {"key": "lead", "label": "线索", "title_field": "name", "fields": [
          {"key": "name", "type": "text"},
          {"key": "company", "type": "text"},
          {"key": "contact_name", "type": "text"},
          {"key": "job_title", "type": "text"},
          {"key": "phone", "type": "phone"},
          {"key": "email", "type": "email"},
          {"key": "source", "type": "select", "options": sources()},
          {"key": "region", "type": "select", "options": regions()},
          {"key": "status", "type": "select", "required": true, "default": "new",
           "options": [{"value": "new"}, {"value": "converted", "label": "已转为客户"}]},
          {"key": "converted_customer", "type": "reference", "target": "customer",
           "read_only": true, "required_if": "status == 'converted'"},
          {"key": "secret", "type": "text"}],
       "conversions": [{"key": "convert", "label": "转化为客户",
          "when": "status != 'converted'",
          "creates": [
            {"entity": "customer", "as": "customer", "link_field": "converted_customer",
             "map": {"name": "company", "phone": "phone", "source": "source",
                     "region": "region", "from_lead": "id"}},
            {"entity": "contact", "as": "contact",
             "map": {"name": "contact_name", "job_title": "job_title", "mobile": "phone",
                     "email": "secret", "customer": "$customer"}}],
          "set": {"status": "converted"}}]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "lead", "actions": ["create", "read", "update"], "scope": "own",
           "deny_read": ["secret"]},
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"},
          {"entity": "contact", "actions": ["create", "read", "update"], "scope": "own"}]},
      {"key": "marketing", "permissions": [
          {"entity": "lead", "actions": ["create", "read", "update"], "scope": "all"},
          {"entity": "customer", "actions": ["create", "read"], "scope": "all"},
          {"entity": "contact", "actions": ["read"], "scope": "all"}]},
      {"key": "manager", "permissions": [
          {"entity": "lead", "actions": ["read", "update"], "scope": "all"}]},
      {"key": "desk", "permissions": [
          {"entity": "lead", "actions": ["read", "update"], "scope": "all"},
          {"entity": "customer", "actions": ["create", "read"], "scope": "own"},
          {"entity": "contact", "actions": ["create", "read"], "scope": "own"}]}
    ],
    "flows": [{"key": "review", "label": "线索审核", "entity": "lead",
       "steps": [{"key": "mgr", "approvers": {"role": "manager"}}]}]})
}

/// A server with the package: two sales reps, a marketing user and a manager.
struct Crm {
    server: TestServer,
    rep1: (i64, String),
    rep2: (i64, String),
    marketing: (i64, String),
}

impl Crm {
    async fn start() -> Crm {
        let server = TestServer::start(package()).await;
        let rep1 = server.user("rep1", &["sales"], None).await;
        let rep2 = server.user("rep2", &["sales"], None).await;
        let marketing = server.user("mkt", &["marketing"], None).await;
        server.user("boss", &["manager"], None).await;
        Crm {
            server,
            rep1,
            rep2,
            marketing,
        }
    }

    /// A lead created by `token` (its owner).
    async fn lead(&self, token: &str, fields: Value) -> Value {
        let reply = self
            .server
            .call(token, Method::POST, "/api/data/lead", Some(fields))
            .await;
        assert_eq!(reply.status, 201, "lead: {:?}", reply.body);
        reply.body
    }

    async fn convert(&self, token: &str, lead: &Value, body: Option<Value>) -> common::Reply {
        let path = format!("/api/data/lead/{}/convert/convert", lead["id"]);
        self.server.call(token, Method::POST, &path, body).await
    }

    /// Every live record of `entity`, as the administrator sees them.
    async fn all(&self, entity: &str) -> Vec<Value> {
        let reply = self
            .server
            .post(&format!("/api/data/{entity}/query"), json!({"limit": 1000}))
            .await;
        assert_eq!(reply.status, 200, "{entity}: {:?}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    /// What a failed conversion must leave as it was: every customer and contact, and
    /// the lead itself.
    async fn snapshot(&self, lead: &Value) -> (Vec<Value>, Vec<Value>, Value) {
        let lead = self
            .server
            .get(&format!("/api/data/lead/{}", lead["id"]))
            .await;
        (
            self.all("customer").await,
            self.all("contact").await,
            lead.body,
        )
    }

    async fn history(&self, entity: &str, id: &Value) -> Vec<Value> {
        let reply = self
            .server
            .get(&format!("/api/data/{entity}/{id}/history"))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }
}

fn full_lead() -> Value {
    json!({"name": "展会咨询 王先生", "company": "深圳市震华信息技术有限公司",
           "contact_name": "王强", "job_title": "采购经理", "phone": "13800138000",
           "source": "exhibition", "region": "south"})
}

#[tokio::test]
async fn convert_creates_a_linked_customer_and_contact() {
    let crm = Crm::start().await;
    let (rep1, token) = &crm.rep1;
    // The administrator registers the lead for rep1, with a field reps may not read.
    let mut fields = full_lead();
    fields["secret"] = json!("wang@zhenhua.cn");
    fields["owner"] = json!(rep1);
    let lead = crm.lead(&crm.server.token, fields).await;
    // No body at all: the options may be left out.
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let customer = &reply.body["created"]["customer"];
    let contact = &reply.body["created"]["contact"];
    let source = &reply.body["source"];
    assert_eq!(customer["name"], "深圳市震华信息技术有限公司");
    assert_eq!(customer["phone"], "13800138000");
    assert_eq!(customer["source"], "exhibition");
    assert_eq!(customer["region"], "south");
    assert_eq!(customer["code"], "C0001", "auto numbers apply");
    assert_eq!(
        customer["from_lead"], lead["id"],
        "a read-only field the map fills"
    );
    assert_eq!(customer["owner"], *rep1);
    assert_eq!(contact["name"], "王强");
    assert_eq!(contact["job_title"], "采购经理");
    assert_eq!(contact["mobile"], "13800138000");
    assert_eq!(
        contact["customer"], customer["id"],
        "the contact joins the customer"
    );
    assert_eq!(contact["owner"], *rep1);
    // A field the converting user may not read is not copied.
    assert_eq!(contact["email"], Value::Null);
    assert_eq!(source["status"], "converted");
    assert_eq!(source["converted_customer"], customer["id"]);
    assert!(source.get("secret").is_none(), "the answer is masked");
    assert_eq!(reply.body.get("existing"), None);

    // What is stored says the same, and every write is audited as the conversion.
    let stored = crm
        .server
        .get(&format!("/api/data/lead/{}", lead["id"]))
        .await
        .body;
    assert_eq!(stored["status"], "converted");
    assert_eq!(stored["converted_customer"], customer["id"]);
    for (entity, id) in [
        ("lead", &lead["id"]),
        ("customer", &customer["id"]),
        ("contact", &contact["id"]),
    ] {
        let history = crm.history(entity, id).await;
        assert_eq!(
            history.last().unwrap()["action"],
            "convert",
            "{entity}: {history:?}"
        );
    }
    let lead_history = crm.history("lead", &lead["id"]).await;
    assert_eq!(
        lead_history.last().unwrap()["changes"]["status"],
        json!(["new", "converted"])
    );
    assert_eq!(crm.all("customer").await.len(), 1);
    assert_eq!(crm.all("contact").await.len(), 1);

    // An administrator converting a rep's lead makes the rep the owner, and copies
    // what the administrator may read.
    let lead = crm
        .lead(
            token,
            json!({"company": "广州云图科技", "contact_name": "李娜", "region": "east"}),
        )
        .await;
    crm.server
        .patch(
            &format!("/api/data/lead/{}", lead["id"]),
            json!({"secret": "li@yuntu.cn"}),
            None,
        )
        .await;
    let reply = crm.convert(&crm.server.token, &lead, Some(json!({}))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["created"]["customer"]["owner"], *rep1);
    assert_eq!(reply.body["created"]["contact"]["owner"], *rep1);
    assert_eq!(reply.body["created"]["contact"]["email"], "li@yuntu.cn");
    // Someone who may not create records for the lead's owner owns what they create.
    let (desk, desk_token) = crm.server.user("desk1", &["desk"], None).await;
    let lead = crm
        .lead(
            token,
            json!({"company": "佛山顺联", "contact_name": "何", "region": "south"}),
        )
        .await;
    let reply = crm.convert(&desk_token, &lead, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["created"]["customer"]["owner"], desk);
    assert_eq!(reply.body["created"]["contact"]["owner"], desk);
    assert_eq!(reply.body["source"]["owner"], *rep1);
}

#[tokio::test]
async fn converting_twice_is_a_conflict_and_creates_nothing() {
    let crm = Crm::start().await;
    let token = &crm.rep1.1;
    let lead = crm.lead(token, full_lead()).await;
    assert_eq!(crm.convert(token, &lead, None).await.status, 200);
    let before = crm.snapshot(&lead).await;
    let again = crm.convert(token, &lead, None).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["error"]["code"], "conflict");
    let message = again.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("转化为客户") && message.contains("status != 'converted'"),
        "{message}"
    );
    assert_eq!(crm.snapshot(&lead).await, before);
}

#[tokio::test]
async fn a_failing_target_rolls_everything_back() {
    let crm = Crm::start().await;
    let token = &crm.rep1.1;
    // No region on the lead: the customer's required region is missing.
    let mut fields = full_lead();
    fields.as_object_mut().unwrap().remove("region");
    let lead = crm.lead(token, fields).await;
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["customer.region"]);
    assert_eq!(crm.snapshot(&lead).await, before);

    // The contact fails after the customer was written: the customer goes too.
    let lead = crm
        .lead(token, json!({"company": "杭州明远贸易", "region": "east"}))
        .await;
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["contact.name"]);
    assert_eq!(crm.snapshot(&lead).await, before);

    // A customer of that name exists already: the unique name refuses the conversion,
    // and the auto number it would have taken is given back.
    crm.server
        .create(
            "customer",
            json!({"name": "深圳市震华信息技术有限公司", "region": "south"}),
        )
        .await;
    let lead = crm.lead(token, full_lead()).await;
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["customer.name"]);
    assert_eq!(crm.snapshot(&lead).await, before);
    let (_, fresh) = crm.server.user("rep3", &["sales"], None).await;
    let lead = crm
        .lead(
            &fresh,
            json!({"company": "东莞新材", "contact_name": "赵六", "region": "south"}),
        )
        .await;
    let reply = crm.convert(&fresh, &lead, None).await;
    assert_eq!(
        reply.body["created"]["customer"]["code"], "C0002",
        "{:?}",
        reply.body
    );
}

#[tokio::test]
async fn without_the_create_right_on_a_target_nothing_changes() {
    let crm = Crm::start().await;
    let token = &crm.marketing.1;
    let lead = crm.lead(token, full_lead()).await;
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], "forbidden");
    assert_eq!(crm.snapshot(&lead).await, before);
}

#[tokio::test]
async fn a_lead_out_of_reach_is_not_found() {
    let crm = Crm::start().await;
    let lead = crm.lead(&crm.rep1.1, full_lead()).await;
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(&crm.rep2.1, &lead, None).await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    assert_eq!(crm.snapshot(&lead).await, before);
    // An unknown conversion is not found either.
    let path = format!("/api/data/lead/{}/convert/promote", lead["id"]);
    let reply = crm
        .server
        .call(&crm.rep1.1, Method::POST, &path, None)
        .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
}

#[tokio::test]
async fn a_locked_lead_is_a_conflict() {
    let crm = Crm::start().await;
    let token = &crm.rep1.1;
    let lead = crm.lead(token, full_lead()).await;
    let submitted = crm
        .server
        .call(
            token,
            Method::POST,
            &format!("/api/data/lead/{}/submit", lead["id"]),
            Some(json!({"flow": "review"})),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    let before = crm.snapshot(&lead).await;
    let reply = crm.convert(token, &lead, None).await;
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("转化为客户") && message.contains("locked"),
        "{message}"
    );
    assert_eq!(crm.snapshot(&lead).await, before);
}

#[tokio::test]
async fn use_existing_attaches_the_contact_to_an_existing_customer() {
    let crm = Crm::start().await;
    let token = &crm.rep1.1;
    let customer = crm
        .server
        .call(
            token,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "深圳市震华信息技术有限公司", "region": "south"})),
        )
        .await
        .body;
    let lead = crm.lead(token, full_lead()).await;
    let reply = crm
        .convert(
            token,
            &lead,
            Some(json!({"use_existing": {"customer": customer["id"]}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["created"].as_object().unwrap().len(), 1);
    assert_eq!(reply.body["created"]["contact"]["customer"], customer["id"]);
    assert_eq!(reply.body["existing"]["customer"]["id"], customer["id"]);
    assert_eq!(reply.body["source"]["converted_customer"], customer["id"]);
    assert_eq!(crm.all("customer").await.len(), 1, "no customer is created");
    assert_eq!(crm.all("contact").await.len(), 1);

    // Records the caller cannot read, and aliases the conversion does not have, are
    // refused; nothing changes.
    let other = crm
        .server
        .call(
            &crm.rep2.1,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "广州云图科技", "region": "south"})),
        )
        .await
        .body;
    let lead = crm
        .lead(
            token,
            json!({"company": "x", "contact_name": "陈", "region": "east"}),
        )
        .await;
    let before = crm.snapshot(&lead).await;
    let reply = crm
        .convert(
            token,
            &lead,
            Some(json!({"use_existing": {"customer": other["id"]}})),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(TestServer::fields_of(&reply), ["use_existing.customer"]);
    for body in [
        json!({"use_existing": {"account": other["id"]}}),
        json!({"use_existing": {"customer": "x"}}),
        json!({"attach": {}}),
    ] {
        let reply = crm.convert(token, &lead, Some(body.clone())).await;
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
    }
    assert_eq!(crm.snapshot(&lead).await, before);
}

#[tokio::test]
async fn invalid_conversions_are_refused_at_apply_with_their_path() {
    let crm = Crm::start().await;
    let path = "entities[2].conversions[0]";
    // (JSON pointer within the conversion, new value, path of the problem, message)
    let cases = [
        (
            "/creates/1/map/customer",
            json!("$contact"),
            "creates[1].map.customer",
            "$contact is this very record",
        ),
        (
            "/creates/0/map/region",
            json!("source"),
            "creates[0].map.region",
            "has no option(s) website, exhibition",
        ),
        (
            "/creates/0/link_field",
            json!("company"),
            "creates[0].link_field",
            "must be a reference field of lead pointing at customer",
        ),
        (
            "/creates/1/entity",
            json!("person"),
            "creates[1].entity",
            "unknown entity \"person\"",
        ),
        (
            "/when",
            json!("stage == 'won'"),
            "when",
            "\"stage\" is neither a field",
        ),
    ];
    for (pointer, value, at, fragment) in cases {
        let mut pkg = package();
        *pkg["entities"][2]["conversions"][0]
            .pointer_mut(pointer)
            .unwrap() = value;
        let reply = crm.server.put("/api/meta", pkg).await;
        assert_eq!(reply.status, 422, "{at}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_metadata");
        let details = reply.body["error"]["details"].as_array().unwrap();
        assert!(
            details.iter().any(|d| d["path"] == format!("{path}.{at}")
                && d["message"].as_str().unwrap().contains(fragment)),
            "{at}: {details:?}"
        );
    }
    let mut pkg = package();
    pkg["entities"][2]["conversions"][0]["creates"][0]["mapping"] = json!({});
    let reply = crm.server.put("/api/meta", pkg).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(
        reply.body["error"]["details"][0]["path"],
        format!("{path}.creates[0].mapping")
    );
}

#[tokio::test]
async fn the_crm_template_converts_its_leads() {
    let server = TestServer::start(metacrm::templates::package("crm-base").unwrap()).await;
    let lead = server
        .create(
            "lead",
            json!({"name": "官网咨询", "company": "苏州恒信精密机械有限公司", "contact_name": "周敏",
                   "job_title": "总经理", "phone": "13912345678", "email": "zhou@hengxin.cn",
                   "source": "website", "industry": "manufacturing", "region": "east"}),
        )
        .await;
    let reply = server
        .post(
            &format!("/api/data/lead/{}/convert/convert", lead["id"]),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let customer = &reply.body["created"]["customer"];
    let contact = &reply.body["created"]["contact"];
    assert_eq!(customer["name"], "苏州恒信精密机械有限公司");
    assert_eq!(customer["industry"], "manufacturing");
    assert_eq!(
        customer["category"], "potential",
        "the customer's defaults apply"
    );
    assert_eq!(contact["customer"], customer["id"]);
    assert_eq!(contact["email"], "zhou@hengxin.cn");
    assert_eq!(reply.body["source"]["status"], "converted");
    assert_eq!(reply.body["source"]["converted_customer"], customer["id"]);
    let again = server
        .post(
            &format!("/api/data/lead/{}/convert/convert", lead["id"]),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);

    // The endpoint is in the OpenAPI document, its body optional.
    let spec = server.get("/api/openapi.json").await.body;
    let operation = &spec["paths"]["/data/{entity}/{id}/convert/{key}"]["post"];
    assert!(
        operation.is_object(),
        "{:?}",
        spec["paths"]
            .as_object()
            .map(|p| p.keys().collect::<Vec<_>>())
    );
    assert_ne!(operation["requestBody"]["required"], true);
}

#[tokio::test]
async fn the_record_page_offers_conversions_that_apply() {
    let crm = Crm::start().await;
    let lead = crm.lead(&crm.rep1.1, full_lead()).await;
    let rep = WebUser::login(&crm.server, "rep1", common::PASSWORD).await;
    let page = rep.page(&format!("/e/lead/{}", lead["id"])).await;
    assert_eq!(page.status, 200);
    let html = page.unescaped();
    let action = format!("/e/lead/{}/convert/convert", lead["id"]);
    assert!(html.contains(&action), "{html}");
    assert!(html.contains("转化为客户"));
    assert!(html.contains(&format!("name=\"_csrf\" value=\"{}\"", rep.csrf().await)));
    // Marketing may not create contacts: no button for them.
    let marketing = WebUser::login(&crm.server, "mkt", common::PASSWORD).await;
    let page = marketing.page(&format!("/e/lead/{}", lead["id"])).await;
    assert!(!page.unescaped().contains(&action));
    // Converted, the lead offers it no more.
    assert_eq!(crm.convert(&crm.rep1.1, &lead, None).await.status, 200);
    let page = rep.page(&format!("/e/lead/{}", lead["id"])).await;
    assert!(!page.unescaped().contains(&action));
}

#[tokio::test]
async fn the_record_page_converts_and_shows_the_customer() {
    let crm = Crm::start().await;
    let rep = WebUser::login(&crm.server, "rep1", common::PASSWORD).await;
    let csrf = rep.csrf().await;
    let lead = crm.lead(&crm.rep1.1, full_lead()).await;
    let action = format!("/e/lead/{}/convert/convert", lead["id"]);
    let forged = rep.post_form(&action, &[("_csrf", "forged")]).await;
    assert_eq!(forged.status().as_u16(), 403);
    let response = rep.post_form(&action, &[("_csrf", &csrf)]).await;
    assert_eq!(response.status().as_u16(), 303);
    let customer = &crm.all("customer").await[0];
    assert_eq!(
        response.headers()["location"],
        format!("/e/customer/{}", customer["id"]).as_str()
    );
    // Again: the conflict shows on the record page, where its actions' errors show.
    let response = rep.post_form(&action, &[("_csrf", &csrf)]).await;
    assert_eq!(response.status().as_u16(), 409);
    let html = response.text().await.unwrap();
    let message = html
        .split("id=\"record-message\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_default();
    assert!(
        message.contains("cannot be converted by 转化为客户 (convert)"),
        "{html}"
    );
    // A failing customer names its field there.
    let lead = crm
        .lead(
            &crm.rep1.1,
            json!({"company": "无区域公司", "contact_name": "孙"}),
        )
        .await;
    let action = format!("/e/lead/{}/convert/convert", lead["id"]);
    let response = rep.post_form(&action, &[("_csrf", &csrf)]).await;
    assert_eq!(response.status().as_u16(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("转化失败: customer.region: 必填"), "{html}");
}
