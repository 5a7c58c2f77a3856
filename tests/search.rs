//! Customer search over HTTP with the embedded backend: Chinese fragments, pinyin,
//! initials, typos, phone digits, snippets, permission filtering inside the engine,
//! masked fields, updates and deletes through the outbox, duplicate checks.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true, "searchable": true},
            {"key": "phone", "type": "phone", "searchable": true},
            {"key": "notes", "type": "long_text"}
        ]},
        {"key": "contact", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "searchable": true}
        ]}
    ], "roles": [
        {"key": "sales", "permissions": [
            {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]},
        {"key": "clerk", "permissions": [
            {"entity": "customer", "actions": ["read"], "scope": "all", "deny_read": ["phone"]}]}
    ]})
}

async fn search(server: &TestServer, token: &str, q: &str) -> Vec<String> {
    let reply = server
        .call(
            token,
            Method::GET,
            &format!("/api/search?q={}", urlencode(q)),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{q}: {:?}", reply.body);
    reply.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_string())
        .collect()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

const ZHENHUA: &str = "深圳市震华信息技术有限公司";

#[tokio::test(flavor = "multi_thread")]
async fn chinese_pinyin_initials_typos_and_phone_digits_find_customers() {
    let server = TestServer::start(package()).await;
    for (name, phone) in [
        (ZHENHUA, "0755-8888 6666"),
        ("北京益瑞盈商贸有限公司", "010-6543 2100"),
        ("ACME Trading Ltd", "+86 138 0013 8000"),
    ] {
        server
            .create("customer", json!({"name": name, "phone": phone}))
            .await;
    }
    let token = server.token.clone();
    for query in [
        "震华",
        "华信",
        "zhenhua",
        "zh hua",
        "szzh",
        "shenzhen zhenhua",
        "8888",
        "88886666",
    ] {
        let titles = search(&server, &token, query).await;
        assert_eq!(
            titles.first().map(String::as_str),
            Some(ZHENHUA),
            "{query}: {titles:?}"
        );
    }
    assert_eq!(
        search(&server, &token, "acne").await,
        vec!["ACME Trading Ltd"],
        "one typo"
    );
    assert_eq!(
        search(&server, &token, "0013 8000").await,
        vec!["ACME Trading Ltd"]
    );
    assert!(
        search(&server, &token, "益瑞盈")
            .await
            .contains(&"北京益瑞盈商贸有限公司".to_string())
    );
    assert!(search(&server, &token, "不存在的公司").await.is_empty());
    // Snippets highlight what matched, escaped.
    let reply = server.get("/api/search?q=zhenhua").await;
    let hit = &reply.body["hits"][0];
    assert_eq!(hit["entity"], json!("customer"));
    assert!(hit["id"].is_i64() && hit["score"].as_f64().unwrap() > 0.0);
    assert_eq!(hit["snippet"], json!("深圳市<em>震华</em>信息技术有限公司"));
    let bad = server.get("/api/search?q=%20").await;
    assert_eq!(bad.status, 400);
    let unknown = server.get("/api/search?q=x&entity=nothing").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn results_are_filtered_by_scope_and_masks_inside_the_engine() {
    let server = TestServer::start(package()).await;
    let (rep, rep_token) = server.user("rep", &["sales"], None).await;
    let (_, clerk_token) = server.user("clerk", &["clerk"], None).await;
    // Many of someone else's matches, one of the rep's: the rep's page is still full.
    for index in 0..30 {
        server
            .create(
                "customer",
                json!({"name": format!("震华分公司{index}"), "phone": "0755-1234 5678"}),
            )
            .await;
    }
    server
        .create(
            "customer",
            json!({"name": "震华总部", "phone": "0755-1234 5678", "owner": rep}),
        )
        .await;
    let reply = server
        .call(&rep_token, Method::GET, "/api/search?q=震华&limit=5", None)
        .await;
    let titles: Vec<&str> = reply.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["震华总部"]);
    assert_eq!(
        search(&server, &server.token.clone(), "震华").await.len(),
        20,
        "default limit"
    );
    // The clerk may not read phones: no match by phone, no phone in snippets.
    assert!(search(&server, &clerk_token, "12345678").await.is_empty());
    let reply = server
        .call(&clerk_token, Method::GET, "/api/search?q=震华总部", None)
        .await;
    assert!(!reply.body.to_string().contains("1234"), "{:?}", reply.body);
    // Someone with no read right on the entity finds nothing in it.
    let (_, nobody) = server.user("nobody", &[], None).await;
    assert!(search(&server, &nobody, "震华").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_the_index_through_the_outbox() {
    let server = TestServer::start(package()).await;
    let token = server.token.clone();
    let id = server
        .create("customer", json!({"name": "旧名字公司"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(search(&server, &token, "旧名字").await, vec!["旧名字公司"]);
    server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"name": "新名称集团"}),
            None,
        )
        .await;
    assert!(search(&server, &token, "旧名字").await.is_empty());
    assert_eq!(
        search(&server, &token, "xinmingcheng").await,
        vec!["新名称集团"]
    );
    server.delete(&format!("/api/data/customer/{id}")).await;
    assert!(search(&server, &token, "新名称").await.is_empty());
    // A rebuild from the database gives the same answers.
    let catalog = server.tenant.catalog().await;
    server.create("customer", json!({"name": "重建测试"})).await;
    let count = metacrm::search::indexer::reindex(
        &server.tenant,
        &catalog,
        server.tenants.search.as_ref(),
        catalog.entity("customer").unwrap(),
        &|_| {},
    )
    .await
    .unwrap();
    drop(catalog);
    assert_eq!(count, 1);
    assert_eq!(search(&server, &token, "重建").await, vec!["重建测试"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_are_found_before_creating() {
    let server = TestServer::start(package()).await;
    let (rep, rep_token) = server.user("rep", &["sales"], None).await;
    let existing = server
        .create(
            "customer",
            json!({"name": ZHENHUA, "phone": "0755-8888 6666", "owner": rep}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    server.create("customer", json!({"name": "无关公司"})).await;
    // The front desk (admin here) and the rep both see the likely duplicate.
    for token in [server.token.clone(), rep_token] {
        let reply = server
            .call(
                &token,
                Method::POST,
                "/api/data/customer/duplicates",
                Some(json!({"name": "震华信息", "phone": "8888 6666"})),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let items = reply.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0]["id"], json!(existing));
        assert_eq!(items[0]["owner"], json!(rep));
        assert_eq!(items[0]["fields"], json!(["name", "phone"]));
        assert!(items[0].get("notes").is_none());
    }
    let nothing = server
        .post("/api/data/customer/duplicates", json!({"name": "完全不同"}))
        .await;
    assert_eq!(nothing.body["items"], json!([]));
    let bad = server
        .post("/api/data/customer/duplicates", json!(["x"]))
        .await;
    assert_eq!(bad.status, 400);
}
