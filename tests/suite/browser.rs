//! The web application in a real browser (headless Chromium through chromedriver):
//! the central story from the designer to the manager's funnel, an approval done
//! entirely in the browser, conditional visibility, and a `<script>` label that
//! stays text. Each step leaves a screenshot under `target/tmp/browser/<test>/`.

use crate::common;

use common::browser::Browser;
use common::{ADMIN, PASSWORD, TestServer};
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "label": "客户名称", "type": "text", "required": true, "searchable": true},
          {"key": "kind", "label": "客户性质", "type": "select",
           "options": [{"value": "company", "label": "企业"}, {"value": "person", "label": "个人"}]},
          {"key": "id_card", "label": "身份证号", "type": "text",
           "visible_if": "kind == 'person'", "required_if": "kind == 'person'"},
          {"key": "note", "label": "<script>window.__pwned = 1</script>备注", "type": "text"},
          {"key": "amount", "label": "金额", "type": "decimal", "scale": 2},
          {"key": "licence", "label": "营业执照", "type": "attachment"},
          {"key": "parent", "label": "上级单位", "type": "reference", "target": "customer"}
        ],
        "pipeline": {"stages": [
          {"key": "contact", "label": "初步接触", "probability": 10},
          {"key": "quote", "label": "报价", "probability": 40},
          {"key": "signed", "label": "签单", "probability": 100, "won": true},
          {"key": "lost", "label": "流失", "probability": 0, "lost": true}], "transitions": "forward"},
        "duplicate_check": {"block": true},
        "pool": {"reclaim_after_days": 30},
        "layout": {"sections": [{"label": "基本信息", "columns": 2,
          "fields": ["name", "kind", "id_card", "note", "amount", "licence", "parent"]}]}}
    ],
    "roles": [
      {"key": "sales", "label": "销售", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]},
      {"key": "manager", "label": "销售经理", "permissions": [
          {"entity": "customer", "actions": ["read", "update"], "scope": "all"}]}
    ],
    "flows": [{"key": "discount", "label": "折扣审批", "entity": "customer",
      "steps": [{"key": "mgr", "label": "经理审批", "approvers": {"role": "manager"}}]}],
    "reports": [
      {"key": "funnel", "label": "销售漏斗", "entity": "customer", "kind": "funnel",
       "group_by": [{"field": "stage"}], "measures": [{"fn": "count", "label": "客户数"}],
       "chart": "funnel", "roles": ["manager"]}
    ]})
}

/// Creates a customer as the user of `token` (so they own it) and returns its id.
async fn customer_of(server: &TestServer, token: &str, record: Value) -> i64 {
    let created = server
        .call(
            token,
            reqwest::Method::POST,
            "/api/data/customer",
            Some(record),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_i64().unwrap()
}

async fn start() -> TestServer {
    let server = TestServer::start(package()).await;
    server.user("sales1", &["sales"], None).await;
    server.user("boss", &["manager"], None).await;
    server
}

/// An admin adds a select field and a stage in the designer and publishes; a sales
/// user sees the field on the create form, is told it is required, fills it and
/// saves; the record is in the list and found by pinyin; the manager's funnel has
/// it, with the new stage in its place.
#[tokio::test]
async fn central_story_from_designer_to_funnel() {
    let server = start().await;
    let base = &server.base;
    let tenant = &server.tenant.key;
    let mut b = Browser::start("central_story").await;

    b.login(base, tenant, ADMIN, PASSWORD).await;
    b.goto(&format!("{base}/designer")).await;
    b.click("#designer a[data-entity=\"customer\"]").await;
    b.shot("designer").await;
    b.click("#add-field").await;
    b.fill("#designer input[name=\"key\"]", "level").await;
    b.fill("#designer input[name=\"label\"]", "客户等级").await;
    b.select("#designer select[name=\"type\"]", "select").await;
    for (key, label) in [("a", "A级"), ("b", "B级")] {
        b.click("#add-option").await;
        b.eval(&format!(
            "const keys = document.querySelectorAll('#designer input[name=\"option-key\"]');
             const labels = document.querySelectorAll('#designer input[name=\"option-label\"]');
             const k = keys[keys.length - 1], l = labels[labels.length - 1];
             k.value = '{key}'; k.dispatchEvent(new Event('input', {{bubbles: true}}));
             l.value = '{label}'; l.dispatchEvent(new Event('input', {{bubbles: true}}));
             return true;"
        ))
        .await;
    }
    let required = b.find("#designer input[name=\"required\"]").await;
    if required.prop("checked").await.unwrap().as_deref() != Some("true") {
        required.click().await.unwrap();
    }
    b.shot("field-editor").await;
    b.click("#field-done").await;
    b.click("#designer a[data-tab=\"stages\"]").await;
    b.click("#add-stage").await;
    b.eval(
        "const last = (name) => { const all = document.querySelectorAll(`#designer input[name=\"${name}\"]`); return all[all.length - 1]; };
         for (const [name, value] of [['stage-key', 'negotiate'], ['stage-label', '谈判'], ['stage-probability', '60']]) {
           const input = last(name); input.value = value; input.dispatchEvent(new Event('input', {bubbles: true}));
           input.dispatchEvent(new Event('change', {bubbles: true}));
         }
         return true;",
    )
    .await;
    b.shot("stage-added").await;
    b.click("#publish").await;
    b.wait_for("#plan li").await;
    let plan = b.text("#plan").await;
    assert!(plan.contains("level"), "the plan adds the column: {plan}");
    b.shot("plan").await;
    b.click("#apply").await;
    b.wait_until(
        "the package is published",
        "!document.getElementById('published').hidden",
    )
    .await;
    b.shot("published").await;
    let meta = server.get("/api/meta").await.body;
    let customer = &meta["entities"][0];
    let level = customer["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "level")
        .expect("the field is published");
    assert_eq!(level["type"], "select");
    assert_eq!(level["required"], true);
    assert_eq!(level["options"].as_array().unwrap().len(), 2);
    let stages: Vec<&str> = customer["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert!(stages.contains(&"negotiate"), "{stages:?}");

    b.login(base, tenant, "sales1", PASSWORD).await;
    b.goto(&format!("{base}/e/customer/new")).await;
    b.wait_for("#record-form .form-field[data-field=\"level\"] select")
        .await;
    b.fill("#f-name", "深圳市震华信息技术有限公司").await;
    b.shot("form-filled").await;
    b.click("#save-record").await;
    b.wait_until(
        "the missing level is shown",
        "!document.querySelector('.field-error[data-error-for=\"level\"]').hidden",
    )
    .await;
    let message = b.text(".field-error[data-error-for=\"level\"]").await;
    assert_eq!(message, "必填", "the error speaks the page's language");
    b.shot("validation-error").await;
    b.select("#f-level", "a").await;
    b.click("#save-record").await;
    b.wait_for("#record[data-id]").await;
    assert_eq!(b.text("#record-title").await, "深圳市震华信息技术有限公司");
    b.shot("record").await;

    b.goto(&format!("{base}/e/customer?col=name&col=level"))
        .await;
    let list = b.text("#records tbody").await;
    assert!(
        list.contains("深圳市震华信息技术有限公司") && list.contains("A级"),
        "{list}"
    );
    b.shot("list").await;
    b.fill("#global-search", "zhenhua").await;
    b.wait_until("search by pinyin finds it", "[...document.querySelectorAll('#search-results .hit')].some(a => a.textContent.includes('震华'))").await;
    b.shot("search").await;

    b.login(base, tenant, "boss", PASSWORD).await;
    b.goto(&format!("{base}/reports/funnel")).await;
    b.wait_for("#report-view table tbody tr").await;
    let funnel = b.text("#report-view table").await;
    assert!(
        funnel.contains("谈判"),
        "the new stage is in the funnel: {funnel}"
    );
    let first_row = b.text("#report-view table tbody tr").await;
    assert!(
        first_row.contains("初步接触") && first_row.contains('1'),
        "{first_row}"
    );
    b.shot("funnel").await;
    b.close().await;
}

/// A sales user submits a record for approval on its page; the manager approves it in
/// the inbox; the record's timeline shows it approved.
#[tokio::test]
async fn approval_entirely_in_the_browser() {
    let server = start().await;
    let base = &server.base;
    let tenant = &server.tenant.key;
    let sales = server.login("sales1", PASSWORD).await;
    let id = customer_of(
        &server,
        &sales,
        json!({"name": "华润万家", "amount": "50000"}),
    )
    .await;
    let mut b = Browser::start("approval").await;

    b.login(base, tenant, "sales1", PASSWORD).await;
    b.goto(&format!("{base}/e/customer/{id}")).await;
    b.click("#submit-approval").await;
    b.wait_for("#locked").await;
    b.shot("submitted").await;

    b.login(base, tenant, "boss", PASSWORD).await;
    b.goto(&format!("{base}/approvals")).await;
    b.wait_for("#inbox tr[data-approval]").await;
    b.shot("inbox").await;
    b.fill("#inbox .comment", "同意，注意回款").await;
    b.click("#inbox button.approve").await;
    b.wait_until(
        "the task leaves the inbox",
        "!document.querySelector('#inbox tr[data-approval]')",
    )
    .await;
    b.goto(&format!("{base}/e/customer/{id}")).await;
    b.wait_for(".approval[data-status=\"approved\"]").await;
    let timeline = b.text("#timeline").await;
    assert!(timeline.contains("同意，注意回款"), "{timeline}");
    b.shot("approved").await;
    b.close().await;
}

/// `visible_if` follows the user's typing; a label holding `<script>` is text; a file
/// chosen in an attachment field is uploaded, saved with the record, and downloads
/// from the record page.
#[tokio::test]
async fn conditional_fields_attachments_and_harmless_labels() {
    let server = start().await;
    let base = &server.base;
    let mut b = Browser::start("conditional").await;
    b.login(base, &server.tenant.key, "sales1", PASSWORD).await;
    b.goto(&format!("{base}/e/customer/new")).await;
    let id_card = ".form-field[data-field=\"id_card\"]";
    b.wait_until(
        "the id card field starts hidden",
        &format!("document.querySelector('{id_card}').hidden"),
    )
    .await;
    b.select("#f-kind", "person").await;
    b.wait_until(
        "choosing 个人 shows the id card field",
        &format!("!document.querySelector('{id_card}').hidden"),
    )
    .await;
    b.wait_until(
        "and makes it required",
        "!document.querySelector('[data-required-for=\"id_card\"]').hidden",
    )
    .await;
    b.shot("person").await;
    b.select("#f-kind", "company").await;
    b.wait_until(
        "choosing 企业 hides it again",
        &format!("document.querySelector('{id_card}').hidden"),
    )
    .await;
    b.shot("company").await;

    assert_eq!(
        b.eval("return window.__pwned === undefined;").await,
        json!(true),
        "the label's script ran"
    );
    let label = b.text(".form-field[data-field=\"note\"] label").await;
    assert!(
        label.contains("<script>window.__pwned = 1</script>备注"),
        "the label is shown as text: {label}"
    );

    let file = tempfile::Builder::new().suffix(".txt").tempfile().unwrap();
    std::fs::write(file.path(), "营业执照副本").unwrap();
    b.fill("#f-name", "深圳市华强电子有限公司").await;
    b.find("#f-licence")
        .await
        .send_keys(&file.path().display().to_string())
        .await
        .expect("choose a file");
    b.wait_for(".attachments .attachment-list li[data-file]")
        .await;
    b.shot("uploaded").await;
    b.click("#save-record").await;
    b.wait_for(".record-body ul.files a").await;
    b.shot("record-with-file").await;
    let fetched = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('ul.files a').href).then(r => r.text().then(t => done([r.status, t])));",
            vec![],
        )
        .await
        .expect("download");
    assert_eq!(
        fetched,
        json!([200, "营业执照副本"]),
        "the file downloads from the record page"
    );
    b.close().await;
}

/// The duplicate warning while typing and the refused duplicate on save; the
/// optimistic-lock conflict explained, with a reload that shows the other version; a
/// saved view and a bulk reassignment from the list.
#[tokio::test]
async fn duplicates_conflicts_views_and_reassignment() {
    let server = start().await;
    let base = &server.base;
    let tenant = &server.tenant.key;
    let sales = server.login("sales1", PASSWORD).await;
    let mut ids = Vec::new();
    for name in ["深圳市震华信息技术有限公司", "华润万家", "华润置地"] {
        ids.push(customer_of(&server, &sales, json!({"name": name})).await);
    }
    let mut b = Browser::start("lists_and_forms").await;
    b.login(base, tenant, "sales1", PASSWORD).await;

    b.goto(&format!("{base}/e/customer/new")).await;
    b.fill("#f-name", "震华信息").await;
    b.wait_until("the duplicate warning shows", "!document.getElementById('duplicates').hidden && document.querySelector('#duplicates li a')").await;
    assert!(
        b.text("#duplicates")
            .await
            .contains("深圳市震华信息技术有限公司")
    );
    b.shot("duplicate-warning").await;
    b.fill("#f-name", "深圳市震华信息技术有限公司").await;
    b.click("#save-record").await;
    b.wait_until(
        "the save is refused as a duplicate",
        "!document.getElementById('form-errors').hidden",
    )
    .await;
    b.shot("duplicate-refused").await;
    let count = server
        .post(
            "/api/data/customer/query",
            json!({"filter": {"field": "name", "op": "eq", "value": "深圳市震华信息技术有限公司"}}),
        )
        .await;
    assert_eq!(
        count.body["items"].as_array().unwrap().len(),
        1,
        "no duplicate was created"
    );

    let id = ids[1];
    b.goto(&format!("{base}/e/customer/{id}/edit")).await;
    b.wait_for("#f-name").await;
    let changed = server
        .call(
            &sales,
            reqwest::Method::PATCH,
            &format!("/api/data/customer/{id}"),
            Some(json!({"amount": "88.00"})),
        )
        .await;
    assert_eq!(changed.status, 200);
    b.fill("#f-name", "华润万家超市").await;
    b.click("#save-record").await;
    b.wait_until(
        "the conflict is explained",
        "!document.getElementById('conflict').hidden",
    )
    .await;
    b.shot("conflict").await;
    b.click("#conflict-reload").await;
    b.wait_until(
        "the reloaded form has the other change",
        "document.getElementById('f-amount') && document.getElementById('f-amount').value === '88'",
    )
    .await;
    let name = b
        .eval("return document.getElementById('f-name').value;")
        .await;
    assert_eq!(
        name,
        json!("华润万家"),
        "the reload shows the stored version"
    );

    b.login(base, tenant, ADMIN, PASSWORD).await;
    b.goto(&format!("{base}/e/customer?q=%E5%8D%8E%E6%B6%A6"))
        .await;
    b.wait_for("#records tbody tr[data-id]").await;
    b.click("#save-view").await;
    b.client
        .send_alert_text("华润客户")
        .await
        .expect("the view name prompt");
    b.client.accept_alert().await.unwrap();
    b.wait_until("the saved view is listed", "[...document.querySelectorAll('#saved-views a[data-view]')].some(a => a.textContent === '华润客户')").await;
    b.shot("saved-view").await;
    let boss = server.get("/api/users").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "boss")
        .expect("boss")["id"]
        .as_i64()
        .unwrap();
    b.click("#select-all").await;
    b.select("#assign-owner", &boss.to_string()).await;
    b.click("#assign-selected").await;
    b.wait_until(
        "the reassignment is reported",
        "document.getElementById('bulk-message').textContent.includes('2')",
    )
    .await;
    b.shot("reassigned").await;
    for id in &ids[1..] {
        let record = server.get(&format!("/api/data/customer/{id}")).await.body;
        assert_eq!(record["owner"], boss, "{record}");
    }
    let untouched = server
        .get(&format!("/api/data/customer/{}", ids[0]))
        .await
        .body;
    assert_ne!(untouched["owner"], boss, "only the listed records moved");

    // A reference filter picks its record by searching, then filters the list by it.
    let linked = server
        .patch(
            &format!("/api/data/customer/{}", ids[2]),
            json!({"parent": ids[0]}),
            None,
        )
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    b.goto(&format!("{base}/e/customer")).await;
    b.click("#list-filters details.more-filters summary").await;
    b.fill(".filter[data-filter=\"parent\"] .reference-search", "震华")
        .await;
    b.click(&format!(
        ".filter[data-filter=\"parent\"] .dropdown .hit[data-id=\"{}\"]",
        ids[0]
    ))
    .await;
    b.click("#list-filters button[type=submit]").await;
    b.wait_until(
        "the list is filtered by the parent",
        "location.search.includes('f.parent=')",
    )
    .await;
    let rows = b.eval("return [...document.querySelectorAll('#records tbody tr[data-id]')].map(tr => Number(tr.dataset.id));").await;
    assert_eq!(
        rows,
        json!([ids[2]]),
        "only the child of 深圳市震华 is listed"
    );
    b.shot("reference-filter").await;
    b.close().await;
}

/// The rest of the daily pages in the browser: a stage move from the stage bar; a
/// report built with the report builder, previewed with a chart, saved and opened;
/// a designer mistake shown next to the field that has it, with nothing published.
#[tokio::test]
async fn stage_bar_report_builder_and_designer_errors() {
    let server = start().await;
    let base = &server.base;
    let tenant = &server.tenant.key;
    let sales = server.login("sales1", PASSWORD).await;
    let id = customer_of(&server, &sales, json!({"name": "华为技术有限公司"})).await;
    let mut b = Browser::start("pages").await;

    b.login(base, tenant, "sales1", PASSWORD).await;
    b.goto(&format!("{base}/e/customer/{id}")).await;
    b.click("button.move-stage[data-stage=\"quote\"]").await;
    b.wait_for(".stage-bar li.current[data-stage=\"quote\"]")
        .await;
    b.shot("stage-moved").await;
    let record = server.get(&format!("/api/data/customer/{id}")).await.body;
    assert_eq!(record["stage"], "quote");

    b.login(base, tenant, "boss", PASSWORD).await;
    b.goto(&format!("{base}/reports/new")).await;
    b.select("#report-builder select[name=\"entity\"]", "customer")
        .await;
    b.click("#add-group").await;
    b.select("#report-builder select[name=\"group-field\"]", "stage")
        .await;
    b.click("#add-measure").await;
    b.select("#report-builder select[name=\"measure-fn\"]", "count")
        .await;
    b.select("#report-builder select[name=\"chart\"]", "bar")
        .await;
    b.wait_until(
        "the preview shows the quote stage",
        "[...document.querySelectorAll('#preview table tbody tr')].some(tr => tr.textContent.includes('报价'))",
    )
    .await;
    b.wait_for("#preview canvas").await;
    b.shot("builder-preview").await;
    b.fill(
        "#report-builder input[name=\"report-key\"]",
        "by_stage_mine",
    )
    .await;
    b.fill("#report-builder input[name=\"report-label\"]", "各阶段客户")
        .await;
    b.click("#save-report").await;
    b.wait_until("the report is saved", "document.querySelector('a.view-report') && document.querySelector('a.view-report').offsetParent !== null").await;
    let saved = server.get("/api/reports/by_stage_mine").await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    b.goto(&format!("{base}/reports/by_stage_mine")).await;
    b.wait_for("#report-view table tbody tr").await;
    assert!(b.text("#report-view table").await.contains("报价"));
    b.shot("report-view").await;

    let before = server.get("/api/meta/versions").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    b.login(base, tenant, ADMIN, PASSWORD).await;
    b.goto(&format!("{base}/designer")).await;
    b.click("#designer a[data-entity=\"customer\"]").await;
    b.click("#add-field").await;
    b.fill("#designer input[name=\"key\"]", "name").await;
    b.fill("#designer input[name=\"label\"]", "重复的字段")
        .await;
    b.click("#field-done").await;
    b.click("#publish").await;
    b.wait_for("#errors li.error[data-path]").await;
    b.wait_until(
        "the mistake is shown next to the field",
        "[...document.querySelectorAll('#designer .error[data-path]')].some(e => !e.closest('#errors') && e.offsetParent !== null)",
    )
    .await;
    b.shot("designer-error").await;
    let errors = b.text("#errors").await;
    assert!(errors.contains("name"), "{errors}");
    let after = server.get("/api/meta/versions").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing was published");
    b.close().await;
}

/// The public pool and a rejection in the browser: a record left uncontacted returns to
/// the pool and a salesperson claims it there; the manager rejects a submission, with
/// the comment a rejection requires, and the record's timeline shows it.
#[tokio::test]
async fn pool_claim_and_rejection() {
    let server = start().await;
    let base = &server.base;
    let tenant = &server.tenant.key;
    let sales = server.login("sales1", PASSWORD).await;
    let idle = server
        .create("customer", json!({"name": "久未联系的客户"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let catalog = server.tenant.catalog().await.clone();
    let later = chrono::Utc::now() + chrono::Duration::days(31);
    let reclaimed = metacrm::workflow::pool::reclaim(&server.tenant.db, &catalog, later)
        .await
        .unwrap();
    assert_eq!(reclaimed, vec![("customer".to_string(), 1)]);
    let mut b = Browser::start("pool_and_reject").await;

    b.login(base, tenant, "sales1", PASSWORD).await;
    b.goto(&format!("{base}/pool/customer")).await;
    b.click(&format!("button.claim[data-id=\"{idle}\"]")).await;
    b.wait_for(&format!("#record[data-id=\"{idle}\"]")).await;
    b.shot("claimed").await;
    let record = server.get(&format!("/api/data/customer/{idle}")).await.body;
    let me = server.get("/api/users").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "sales1")
        .expect("sales1")["id"]
        .clone();
    assert_eq!(record["owner"], me, "the claim makes sales1 the owner");

    let id = customer_of(&server, &sales, json!({"name": "美的集团"})).await;
    let submitted = server
        .call(
            &sales,
            reqwest::Method::POST,
            &format!("/api/data/customer/{id}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    b.login(base, tenant, "boss", PASSWORD).await;
    b.goto(&format!("{base}/approvals")).await;
    b.click("#inbox button.reject").await;
    b.wait_until(
        "a rejection asks for a comment",
        "document.getElementById('approval-message').textContent.length > 0",
    )
    .await;
    assert!(
        b.eval("return !!document.querySelector('#inbox tr[data-approval]');")
            .await
            == json!(true),
        "nothing was rejected without a comment"
    );
    b.fill("#inbox .comment", "折扣过大，请重新报价").await;
    b.click("#inbox button.reject").await;
    b.wait_until(
        "the task leaves the inbox",
        "!document.querySelector('#inbox tr[data-approval]')",
    )
    .await;
    b.goto(&format!("{base}/e/customer/{id}")).await;
    b.wait_for(".approval[data-status=\"rejected\"]").await;
    assert!(b.text("#timeline").await.contains("折扣过大，请重新报价"));
    b.shot("rejected").await;

    // Delegating (转审) hands the task to someone else's inbox.
    let other = customer_of(&server, &sales, json!({"name": "格力电器"})).await;
    let submitted = server
        .call(
            &sales,
            reqwest::Method::POST,
            &format!("/api/data/customer/{other}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    let admin_id = server.get("/api/auth/me").await.body["id"].clone();
    b.goto(&format!("{base}/approvals")).await;
    b.select("#inbox .delegate-to", &admin_id.to_string()).await;
    b.click("#inbox button.delegate").await;
    b.wait_until(
        "the task leaves the manager's inbox",
        "!document.querySelector('#inbox tr[data-approval]')",
    )
    .await;
    let inbox = server.get("/api/approvals/inbox").await.body;
    assert_eq!(
        inbox["items"].as_array().unwrap().len(),
        1,
        "the admin has it now: {inbox}"
    );
    assert_eq!(inbox["items"][0]["record"], other);
    b.close().await;
}

/// An admin imports a spreadsheet from the list page: the check lists the refused row
/// with its column, the import runs as a job to the end, and the records are listed.
#[tokio::test]
async fn a_spreadsheet_is_checked_then_imported_from_the_list() {
    let server = start().await;
    let base = &server.base;
    let mut b = Browser::start("import").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("客户.csv");
    std::fs::write(&file, "客户名称*,金额,客户性质\n导入甲公司,\"1,200.50\",企业\n导入乙公司,很多,企业\n导入丙公司,8,个人\n").unwrap();

    b.login(base, &server.tenant.key, ADMIN, PASSWORD).await;
    b.goto(&format!("{base}/e/customer")).await;
    b.click("#import-link").await;
    b.wait_for("#import-file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    b.click("#import-check").await;
    b.wait_for("#import-errors").await;
    b.shot("checked").await;
    let errors = b.text("#import-errors").await;
    assert!(
        errors.contains("金额") && errors.contains("很多"),
        "{errors}"
    );
    assert!(
        errors.contains("身份证号"),
        "required_if for 个人 names its field: {errors}"
    );
    assert!(
        b.text("#import-counts").await.contains('1'),
        "one row would be created"
    );
    let listed = server.post("/api/data/customer/query", json!({})).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        0,
        "a check changes nothing"
    );

    b.click("#import-run").await;
    b.wait_for("#import-done").await;
    b.shot("imported").await;
    b.goto(&format!("{base}/e/customer")).await;
    assert!(b.text("main").await.contains("导入甲公司"));
    b.close().await;
}
