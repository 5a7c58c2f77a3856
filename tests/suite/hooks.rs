//! Scripted hooks through the API: `before_save` changes and rejects writes, reads a
//! related record within the user's rights; `after_save`, `on_stage_change` and
//! `on_approved` notify; hostile scripts (endless loops, huge strings, deep recursion,
//! reads of another tenant, a throw after the write) are stopped and change nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common;
use common::TestServer;

const GUARD: &str = r#"
if (record.discount > 30) reject('discount', '折扣不能超过30%');
const raised = !previous || record.discount !== previous.discount;
if (raised && record.discount > 20 && !user.roles.includes('manager')) reject('超过20%的折扣需要经理批准');
record.net = record.amount * (100 - (record.discount || 0)) / 100;
const customer = record.customer ? get('customer', record.customer) : null;
record.customer_name = customer ? customer.name : null;
"#;

fn package(hooks: Value) -> Value {
    json!({
      "format": 1,
      "entities": [
        {"key": "customer", "title_field": "name",
         "fields": [{"key": "name", "type": "text", "required": true},
                    {"key": "credit", "type": "decimal"}]},
        {"key": "quote", "title_field": "title",
         "fields": [{"key": "title", "type": "text", "required": true},
                    {"key": "customer", "type": "reference", "target": "customer"},
                    {"key": "customer_name", "type": "text"},
                    {"key": "amount", "type": "decimal", "required": true},
                    {"key": "discount", "type": "decimal"},
                    {"key": "net", "type": "decimal", "required": true}],
         "pipeline": {"stages": [{"key": "draft"}, {"key": "sent"}, {"key": "won", "won": true}],
                      "transitions": "forward"}}
      ],
      "roles": [
        {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"},
          {"entity": "quote", "actions": ["create", "read", "update"], "scope": "own"}]},
        {"key": "manager", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "all"},
          {"entity": "quote", "actions": ["create", "read", "update"], "scope": "all"}]}
      ],
      "flows": [
        {"key": "quote_review", "label": "报价审批", "entity": "quote",
         "trigger": {"on": "submit"},
         "steps": [{"key": "mgr", "approvers": {"role": "manager"}}]}
      ],
      "hooks": hooks
    })
}

fn guard_hooks() -> Value {
    json!([
      {"key": "quote_guard", "label": "折扣控制", "entity": "quote", "on": "before_save", "script": GUARD},
      {"key": "quote_created", "entity": "quote", "on": "after_save",
       "script": "if (previous === null) notify(record.owner, '新报价 ' + record.title, '净额 ' + record.net);"},
      {"key": "quote_moved", "entity": "quote", "on": "on_stage_change",
       "script": "notify(record.owner, '报价阶段 ' + event.from + ' → ' + event.to);"},
      {"key": "quote_approved", "entity": "quote", "on": "on_approved",
       "script": "notify(record.owner, '报价已批准 ' + event.flow);"}
    ])
}

async fn notification_titles(server: &TestServer, token: &str) -> Vec<String> {
    let notices = server.notifications(token).await;
    notices
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect()
}

async fn count(server: &TestServer, entity: &str) -> usize {
    server.records(entity).await.len()
}

#[tokio::test]
async fn hooks_change_and_reject_writes_and_notify() {
    let server = TestServer::start(package(guard_hooks())).await;
    let (_, rep_token) = server.user("rep1", &["sales"], None).await;
    let (_, other_token) = server.user("rep2", &["sales"], None).await;
    let (_, mgr_token) = server.user("mgr1", &["manager"], None).await;

    let mine = server
        .call(
            &rep_token,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "深圳市震华信息技术有限公司"})),
        )
        .await;
    assert_eq!(mine.status, 201, "{:?}", mine.body);
    let mine = mine.body["id"].as_i64().unwrap();
    let theirs = server
        .call(
            &other_token,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "别人的客户"})),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();

    // before_save computes a field the form leaves to it (net is required) and reads
    // the customer within the user's rights.
    let created = server
        .call(
            &rep_token,
            Method::POST,
            "/api/data/quote",
            Some(json!({"title": "报价一", "customer": mine, "amount": 1000, "discount": 10})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["net"].as_f64(), Some(900.0));
    assert_eq!(
        created.body["customer_name"],
        json!("深圳市震华信息技术有限公司")
    );
    let quote = created.body["id"].as_i64().unwrap();

    // Another rep's customer is outside this rep's rights: get answers null.
    let outside = server
        .call(
            &rep_token,
            Method::POST,
            "/api/data/quote",
            Some(json!({"title": "报价二", "customer": theirs, "amount": 100})),
        )
        .await;
    assert_eq!(outside.status, 201, "{:?}", outside.body);
    assert_eq!(outside.body["customer_name"], Value::Null);

    // reject(field, message) is a 422 at the field; reject(message) names the hook.
    let too_deep = server
        .call(
            &rep_token,
            Method::POST,
            "/api/data/quote",
            Some(json!({"title": "报价三", "amount": 100, "discount": 35})),
        )
        .await;
    assert_eq!(too_deep.status, 422, "{:?}", too_deep.body);
    assert_eq!(too_deep.body["error"]["details"][0]["field"], "discount");
    assert_eq!(
        too_deep.body["error"]["details"][0]["message"],
        "折扣不能超过30%"
    );
    let needs_manager = server
        .call(
            &rep_token,
            Method::PATCH,
            &format!("/api/data/quote/{quote}"),
            Some(json!({"discount": 25})),
        )
        .await;
    assert_eq!(needs_manager.status, 422, "{:?}", needs_manager.body);
    assert_eq!(needs_manager.body["error"]["code"], "rejected");
    assert_eq!(
        needs_manager.body["error"]["message"],
        "超过20%的折扣需要经理批准"
    );
    assert_eq!(
        needs_manager.body["error"]["details"]["hook"],
        "quote_guard"
    );
    assert_eq!(count(&server, "quote").await, 2);
    let unchanged = server.get(&format!("/api/data/quote/{quote}")).await.body;
    assert_eq!(
        (
            unchanged["discount"].as_f64(),
            unchanged["version"].as_i64()
        ),
        (Some(10.0), Some(1))
    );

    // A manager may; the hook recomputes on update.
    let updated = server
        .call(
            &mgr_token,
            Method::PATCH,
            &format!("/api/data/quote/{quote}"),
            Some(json!({"discount": 25})),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["net"].as_f64(), Some(750.0));

    // after_save, on_stage_change and on_approved notify the owner.
    let moved = server
        .call(
            &rep_token,
            Method::POST,
            &format!("/api/data/quote/{quote}/stage"),
            Some(json!({"to": "sent"})),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let approval = server
        .call(
            &rep_token,
            Method::POST,
            &format!("/api/data/quote/{quote}/submit"),
            Some(json!({"flow": "quote_review"})),
        )
        .await;
    assert_eq!(approval.status, 200, "{:?}", approval.body);
    let approval = approval.body["id"].as_i64().unwrap();
    let approved = server
        .call(
            &mgr_token,
            Method::POST,
            &format!("/api/approvals/{approval}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let titles = notification_titles(&server, &rep_token).await;
    for expected in [
        "新报价 报价一",
        "新报价 报价二",
        "报价阶段 draft → sent",
        "报价已批准 quote_review",
    ] {
        assert!(
            titles.iter().any(|t| t == expected),
            "{expected:?} not in {titles:?}"
        );
    }
    assert!(!titles.iter().any(|t| t.contains("报价三")), "{titles:?}");
}

/// Each hostile hook, in turn, guards creates and updates of quotes: every write is
/// refused with an error naming the hook and what stopped it, and nothing changes.
#[tokio::test]
async fn hostile_scripts_are_stopped_and_change_nothing() {
    let server = TestServer::start(package(json!([]))).await;
    let quote = server
        .create("quote", json!({"title": "基线", "amount": 10, "net": 10}))
        .await;
    let id = quote["id"].as_i64().unwrap();
    let hostile = [
        ("endless", "before_save", "while (true) {}", "operations"),
        (
            "huge_string",
            "before_save",
            "record.title = 'x'.repeat(100000000);",
            "memory",
        ),
        (
            "hoarder",
            "before_save",
            "const a = []; while (true) a.push([a.length]);",
            "memory",
        ),
        (
            "deep",
            "before_save",
            "const f = (n) => f(n + 1) + 1; f(0);",
            "stack",
        ),
        (
            "thrower",
            "after_save",
            "throw new Error('after the write');",
            "after the write",
        ),
        (
            "breakout",
            "before_save",
            "get('customer; DROP TABLE quote', 1);",
            "unknown entity",
        ),
        (
            "reads",
            "before_save",
            "for (let i = 0; i < 100; i++) get('customer', i);",
            "at most 20 times",
        ),
        (
            "notices",
            "after_save",
            "for (let i = 0; i < 100; i++) notify(1, 'spam');",
            "at most 20 times",
        ),
    ];
    for (key, on, script, why) in hostile {
        server
            .tenant
            .apply(
                &package(json!([{"key": key, "entity": "quote", "on": on, "script": script}])),
                None,
                false,
            )
            .await
            .unwrap();
        let created = server
            .post(
                "/api/data/quote",
                json!({"title": "新报价", "amount": 5, "net": 5}),
            )
            .await;
        assert_eq!(created.status, 422, "{key}: {:?}", created.body);
        assert_eq!(
            created.body["error"]["code"], "hook_failed",
            "{key}: {:?}",
            created.body
        );
        assert_eq!(created.body["error"]["details"]["hook"], key);
        let message = created.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{key}: {message}");
        let updated = server
            .patch(
                &format!("/api/data/quote/{id}"),
                json!({"title": "改名"}),
                None,
            )
            .await;
        assert_eq!(updated.status, 422, "{key}: {:?}", updated.body);
        let now = server.get(&format!("/api/data/quote/{id}")).await.body;
        assert_eq!(
            (now["title"].clone(), now["version"].clone()),
            (json!("基线"), json!(1)),
            "{key}"
        );
        assert_eq!(count(&server, "quote").await, 1, "{key}");
        assert!(
            notification_titles(&server, &server.token).await.is_empty(),
            "{key}"
        );
    }
}

/// A hook reads by id inside its own tenant only: the same id in another tenant is
/// another record, and the sandbox has no other way out.
#[tokio::test]
async fn a_hook_cannot_read_another_tenant() {
    let other = TestServer::start(package(json!([]))).await;
    let secret = other
        .create("customer", json!({"name": "别家的机密客户"}))
        .await;
    let secret_id = secret["id"].as_i64().unwrap();
    let probe = format!(
        "const c = get('customer', {secret_id}); record.customer_name = c ? c.name : 'none'; \
         record.title = [typeof require, typeof fetch, typeof std, typeof os].join(',');"
    );
    let server = TestServer::start(package(json!([
        {"key": "probe", "entity": "quote", "on": "before_save", "script": probe}
    ])))
    .await;
    let created = server
        .post(
            "/api/data/quote",
            json!({"title": "x", "amount": 1, "net": 1}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["customer_name"], "none");
    assert_eq!(
        created.body["title"],
        "undefined,undefined,undefined,undefined"
    );
}

#[tokio::test]
async fn hooks_that_cannot_work_are_refused_at_apply_with_their_path() {
    let server = TestServer::start(package(json!([]))).await;
    server
        .refused_paths(
            package(json!([
              {"key": "broken", "entity": "quote", "on": "before_save", "script": "record.net = ;"},
              {"key": "nowhere", "entity": "invoice", "on": "after_save", "script": "1;"},
              {"key": "empty", "entity": "quote", "on": "after_save", "script": "  "},
              {"key": "broken", "entity": "quote", "on": "sometimes", "script": "1;"}
            ])),
            &["hooks[3].on"],
        )
        .await;
    let problems = server
        .refused_paths(
            package(json!([
              {"key": "broken", "entity": "quote", "on": "before_save", "script": "record.net = ;"},
              {"key": "nowhere", "entity": "invoice", "on": "after_save", "script": "1;"},
              {"key": "empty", "entity": "quote", "on": "after_save", "script": "  "},
              {"key": "broken", "entity": "quote", "on": "after_save", "script": "1;"}
            ])),
            &[
                "hooks[0].script",
                "hooks[1].entity",
                "hooks[2].script",
                "hooks[3].key",
            ],
        )
        .await;
    assert!(problems.len() >= 4, "{problems:?}");
}
