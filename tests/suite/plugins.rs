//! Bundled plugins on the crm-base template: listed and enabled by an administrator
//! with a dry run first, settings checked, disabling keeps the data; and each bundled
//! plugin doing its job — quote numbering and discount guard, usage points with their
//! report, the won-deal chat robot.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common;
use crate::webhooks::start_receiver;
use common::TestServer;
use common::web::WebUser;

async fn crm_base() -> TestServer {
    let server = TestServer::start(json!({"format": 1})).await;
    let package = metacrm::templates::package("crm-base").unwrap();
    let reply = server.put("/api/meta", package).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    server
}

async fn enable(server: &TestServer, name: &str, settings: Value) -> common::Reply {
    server
        .post(
            "/api/plugins",
            json!({"name": name, "enabled": true, "settings": settings}),
        )
        .await
}

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> common::Reply {
    server.call(token, method, path, Some(body)).await
}

#[tokio::test]
async fn plugins_are_enabled_after_a_dry_run_and_disabled_without_losing_data() {
    let server = crm_base().await;
    let listed = server.get("/api/plugins").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quote_guard", "usage_points", "won_deal_robot"]);
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["enabled"] == false)
    );
    let (_, rep) = server.user("rep1", &["sales"], None).await;
    assert_eq!(
        server
            .call(&rep, Method::GET, "/api/plugins", None)
            .await
            .status,
        403
    );
    let by_rep = call(
        &server,
        &rep,
        Method::POST,
        "/api/plugins",
        json!({"name": "usage_points", "enabled": true}),
    )
    .await;
    assert_eq!(by_rep.status, 403);

    // Settings are checked and named.
    let missing = enable(&server, "won_deal_robot", json!({})).await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert_eq!(
        missing.body["error"]["details"][0]["field"],
        "settings.robot_url"
    );
    let wrong = enable(
        &server,
        "usage_points",
        json!({"won_points": "many", "bonus": 1}),
    )
    .await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);
    let fields: Vec<&str> = wrong.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["settings.bonus", "settings.won_points"]);
    assert_eq!(
        enable(&server, "no_such_plugin", json!({})).await.status,
        404
    );

    // A dry run shows the plan and changes nothing.
    let version = server
        .get("/api/meta/versions")
        .await
        .body
        .as_array()
        .map(|v| v.len());
    let dry = server
        .post(
            "/api/plugins",
            json!({"name": "usage_points", "enabled": true, "dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(
        (dry.body["dry_run"].clone(), dry.body["changed"].clone()),
        (json!(true), json!(true))
    );
    assert!(
        dry.body["steps"].to_string().contains("points_entry"),
        "{:?}",
        dry.body
    );
    assert!(server.get("/api/meta").await.body["plugins"].is_null());
    assert_eq!(
        server
            .get("/api/meta/versions")
            .await
            .body
            .as_array()
            .map(|v| v.len()),
        version
    );

    // Enabled: staff earn points from what they do.
    let enabled = enable(&server, "usage_points", json!({"customer_points": 7})).await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    assert_eq!(enabled.body["changed"], true);
    let customer = call(
        &server,
        &rep,
        Method::POST,
        "/api/data/customer",
        json!({"name": "深圳市震华信息技术有限公司", "region": "south", "category": "intent"}),
    )
    .await;
    assert_eq!(customer.status, 201, "{:?}", customer.body);
    let customer_id = customer.body["id"].as_i64().unwrap();
    let activity = call(
        &server,
        &rep,
        Method::POST,
        "/api/data/activity",
        json!({"subject": "上门拜访", "kind": "visit", "customer": customer_id, "activity_date": "2026-11-20", "status": "planned"}),
    )
    .await;
    assert_eq!(activity.status, 201, "{:?}", activity.body);
    assert!(
        server.records("points_entry").await.len() == 1,
        "a planned activity earns nothing yet"
    );
    let done = call(
        &server,
        &rep,
        Method::PATCH,
        &format!("/api/data/activity/{}", activity.body["id"]),
        json!({"status": "done", "result": "客户有意向，下周报价"}),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let entries = server.records("points_entry").await;
    let mut points: Vec<(String, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["points"].as_i64().unwrap(),
            )
        })
        .collect();
    points.sort();
    assert_eq!(
        points,
        [("activity".to_string(), 1), ("customer".to_string(), 7)]
    );
    let rep_id = customer.body["owner"].clone();
    assert!(entries.iter().all(|e| e["staff"] == rep_id), "{entries:?}");
    // The plugin's scheduled rule tells each earner of this week's entries.
    let run = server
        .post("/api/schedules/points_week_end/run", json!({}))
        .await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(run.body["notified"], 1, "{:?}", run.body);
    let report = server.get("/api/reports/points_by_quarter/run").await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    let rows = report.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]
            .as_array()
            .unwrap()
            .iter()
            .any(|cell| cell.as_f64() == Some(8.0)),
        "{rows:?}"
    );

    // Disabled: the entity is archived with its rows, the hooks stop; enabled again,
    // the rows are back.
    let disabled = server
        .post(
            "/api/plugins",
            json!({"name": "usage_points", "enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    let meta = server.get("/api/meta").await.body;
    assert!(
        meta["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["key"] != "points_entry")
    );
    assert!(
        meta["hooks"].is_null() && meta["plugins"].is_null(),
        "{:?}",
        meta["hooks"]
    );
    let another = call(
        &server,
        &rep,
        Method::POST,
        "/api/data/customer",
        json!({"name": "广州某某贸易有限公司", "region": "south", "category": "intent"}),
    )
    .await;
    assert_eq!(another.status, 201, "{:?}", another.body);
    let again = enable(&server, "usage_points", json!({"customer_points": 7})).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(server.records("points_entry").await.len(), 2);
    let listed = server.get("/api/plugins").await.body;
    let usage = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "usage_points")
        .unwrap()
        .clone();
    assert_eq!(
        (
            usage["enabled"].clone(),
            usage["values"]["customer_points"].clone()
        ),
        (json!(true), json!(7))
    );
    assert!(
        usage["contributed"]
            .as_array()
            .unwrap()
            .contains(&json!("entities/points_entry"))
    );

    // A plugin never takes a key the package already uses for something else.
    let mut package = server.get("/api/meta").await.body;
    package["hooks"]
        .as_array_mut()
        .unwrap()
        .retain(|h| h["key"] != "points_for_won");
    package["plugins"][0]["contributed"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c != "hooks/points_for_won");
    package["hooks"].as_array_mut().unwrap().push(
        json!({"key": "points_for_won", "entity": "customer", "on": "after_save", "script": "1;"}),
    );
    assert_eq!(server.put("/api/meta", package).await.status, 200);
    let clash = enable(&server, "usage_points", json!({})).await;
    assert_eq!(clash.status, 409, "{:?}", clash.body);
    assert!(
        clash.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hooks/points_for_won")
    );
}

#[tokio::test]
async fn quote_guard_numbers_quotes_and_guards_discounts_and_prices() {
    let server = crm_base().await;
    let enabled = enable(
        &server,
        "quote_guard",
        json!({"prefix": "ZH", "max_discount": 25}),
    )
    .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let (_, rep) = server.user("rep1", &["sales"], None).await;
    let (_, manager) = server.user("mgr1", &["sales_manager"], None).await;
    let customer = call(&server, &rep, Method::POST, "/api/data/customer", json!({"name": "深圳市震华信息技术有限公司", "short_name": "震华", "region": "south", "category": "intent"})).await;
    assert_eq!(customer.status, 201, "{:?}", customer.body);
    let customer = customer.body["id"].as_i64().unwrap();
    let product = server
        .create("product", json!({"name": "CRM 专业版", "code": "P-1", "category": "software", "unit": "set", "list_price": "200.00", "min_price": "100.00"}))
        .await["id"]
        .as_i64()
        .unwrap();

    let quote = |discount: f64| json!({"title": "年度订阅报价", "customer": customer, "amount": "10000.00", "discount_rate": discount});
    let created = call(&server, &rep, Method::POST, "/api/data/quote", quote(5.0)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let number = created.body["quote_no"].as_str().unwrap();
    let code = created.body["code"].as_str().unwrap();
    assert_eq!(number, format!("ZH-震华-{code}"));
    let id = created.body["id"].as_i64().unwrap();
    let form = server.get("/api/meta/entities/quote/form").await;
    assert!(
        form.body.to_string().contains("quote_no"),
        "the plugin's section shows the field"
    );

    let too_much_for_rep = call(&server, &rep, Method::POST, "/api/data/quote", quote(12.0)).await;
    assert_eq!(too_much_for_rep.status, 422, "{:?}", too_much_for_rep.body);
    assert_eq!(
        too_much_for_rep.body["error"]["details"][0]["field"],
        "discount_rate"
    );
    let by_manager = call(
        &server,
        &manager,
        Method::POST,
        "/api/data/quote",
        quote(12.0),
    )
    .await;
    assert_eq!(by_manager.status, 201, "{:?}", by_manager.body);
    let over_the_cap = call(
        &server,
        &manager,
        Method::POST,
        "/api/data/quote",
        quote(30.0),
    )
    .await;
    assert_eq!(over_the_cap.status, 422, "{:?}", over_the_cap.body);
    assert!(
        over_the_cap.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("25%")
    );
    // The number stays what it was given; users cannot write it.
    let renumber = call(
        &server,
        &rep,
        Method::PATCH,
        &format!("/api/data/quote/{id}"),
        json!({"quote_no": "X"}),
    )
    .await;
    assert_eq!(renumber.status, 422, "{:?}", renumber.body);
    let edited = call(
        &server,
        &rep,
        Method::PATCH,
        &format!("/api/data/quote/{id}"),
        json!({"notes": "已电话沟通"}),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["quote_no"], number);

    let line = |price: &str| json!({"quote": id, "item": "CRM 专业版", "product": product, "quantity": "2", "unit_price": price});
    let below = call(
        &server,
        &rep,
        Method::POST,
        "/api/data/quote_line",
        line("80.00"),
    )
    .await;
    assert_eq!(below.status, 422, "{:?}", below.body);
    assert_eq!(below.body["error"]["details"][0]["field"], "unit_price");
    assert_eq!(
        call(
            &server,
            &rep,
            Method::POST,
            "/api/data/quote_line",
            line("120.00")
        )
        .await
        .status,
        201
    );
    assert_eq!(
        call(
            &server,
            &manager,
            Method::POST,
            "/api/data/quote_line",
            line("80.00")
        )
        .await
        .status,
        201
    );

    // The plugin's print format: the number, the lines and the amount in capitals.
    let printed = server
        .fetch(&rep, &format!("/api/data/quote/{id}/print/external"))
        .await;
    assert_eq!(printed.status, 200);
    let html = String::from_utf8(printed.bytes).unwrap();
    for expected in [number, "CRM 专业版", "9,500.00", "玖仟伍佰元整"] {
        assert!(html.contains(expected), "{expected} missing from {html}");
    }
}

#[tokio::test]
async fn won_deal_robot_posts_to_the_chat_robot() {
    let server = crm_base().await;
    let (robot, received) = start_receiver(0).await;
    let enabled = enable(
        &server,
        "won_deal_robot",
        json!({"robot_url": format!("{robot}/cgi-bin/webhook/send")}),
    )
    .await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    let customer = server
        .create(
            "customer",
            json!({"name": "深圳市震华信息技术有限公司", "region": "south", "category": "intent"}),
        )
        .await;
    let deal = server
        .create(
            "opportunity",
            json!({"name": "震华 CRM 项目", "customer": customer["id"], "expected_amount": "300000.00",
                   "signed_date": "2026-11-24", "contract_amount": "280000.00"}),
        )
        .await;
    let won = server
        .post(
            &format!("/api/data/opportunity/{}/stage", deal["id"]),
            json!({"to": "won"}),
        )
        .await;
    assert_eq!(won.status, 200, "{:?}", won.body);
    metacrm::plugin::webhooks::run(&server.tenant, &reqwest::Client::new(), chrono::Utc::now())
        .await
        .unwrap();
    let sent = received.lock().unwrap().received.clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]
            .body
            .contains("签单喜报：震华 CRM 项目，签约金额 280000"),
        "{}",
        sent[0].body
    );
}

/// The automation page: administrators see the plugins with their settings and state,
/// the delivery log and the scheduled rules; others are refused.
#[tokio::test]
async fn the_automation_page_shows_plugins_deliveries_and_schedules() {
    let server = crm_base().await;
    let enabled = enable(&server, "quote_guard", json!({"prefix": "ZH"})).await;
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);
    server.user("rep1", &["sales"], None).await;
    let admin = WebUser::login(&server, common::ADMIN, common::PASSWORD).await;
    let page = admin.page("/automation").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let html = page.unescaped();
    for expected in [
        "报价编号与折扣控制",
        "员工积分",
        "签单喜报机器人",
        "data-setting=\"robot_url\"",
        "value=\"ZH\"",
        "已启用",
        "followups_due",
        "id=\"nav-automation\"",
    ] {
        assert!(html.contains(expected), "{expected} missing from the page");
    }
    let rep = WebUser::login(&server, "rep1", common::PASSWORD).await;
    assert_eq!(rep.page("/automation").await.status, 403);
    assert!(!rep.page("/").await.unescaped().contains("nav-automation"));
}
