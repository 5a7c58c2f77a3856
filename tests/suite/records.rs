//! Records over HTTP: every field type, formulas, defaults, auto numbers, references,
//! validation errors, optimistic locking, concurrency, cursor pagination, history.

use crate::common;

use std::collections::BTreeSet;

use common::TestServer;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name", "fields": [
            {"key": "name", "label": "单位名称", "type": "text", "required": true, "max_length": 50, "unique": true, "searchable": true},
            {"key": "notes", "type": "long_text"},
            {"key": "employees", "type": "integer", "min": 0, "max": 100000},
            {"key": "revenue", "type": "decimal", "scale": 2, "min": 0},
            {"key": "vip", "type": "boolean", "read_only": true},
            {"key": "active", "type": "boolean"},
            {"key": "signed_on", "type": "date"},
            {"key": "last_contact", "type": "datetime"},
            {"key": "category", "type": "select", "default": "intent",
             "options": [{"value": "intent", "label": "意向客户"}, {"value": "nurture", "label": "培育客户"}]},
            {"key": "tags", "type": "multi_select", "options": [{"value": "a"}, {"value": "b"}, {"value": "c"}]},
            {"key": "parent", "type": "reference", "target": "customer"},
            {"key": "rep", "type": "user"},
            {"key": "email", "type": "email"},
            {"key": "phone", "type": "phone", "indexed": true},
            {"key": "website", "type": "url"},
            {"key": "files", "type": "attachment"},
            {"key": "code", "type": "auto_number", "format": "C{0000}"},
            {"key": "warranty_months", "type": "integer"},
            {"key": "warranty_until", "type": "date", "formula": "add_months(signed_on, warranty_months)"},
            {"key": "reason", "type": "text", "required_if": "category == 'nurture'"},
            {"key": "sku", "type": "text", "pattern": "^[A-Z]{3}-[0-9]+$"},
            {"key": "score", "type": "integer", "default": 60}
        ]},
        {"key": "contact", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "customer", "type": "reference", "target": "customer"}
        ]}
    ]})
}

async fn count(server: &TestServer, entity: &str) -> usize {
    let reply = server
        .post(&format!("/api/data/{entity}/query"), json!({"limit": 1000}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_field_type_round_trips_with_defaults_formulas_and_auto_numbers() {
    let server = TestServer::start(package()).await;
    let contract = server.upload("合同.pdf", b"%PDF-1.4 contract").await;
    let input = json!({
        "files": [contract],
        "name": "深圳市震华信息技术有限公司",
        "notes": "第一行\n第二行",
        "employees": 120,
        "revenue": "1234567.89",
        "active": true,
        "signed_on": "2024-01-31",
        "last_contact": "2024-03-05T09:30:00+08:00",
        "tags": ["a", "c"],
        "rep": 1,
        "email": "sales@zhenhua.cn",
        "phone": "0755-8888 6666",
        "website": "https://zhenhua.cn",
        "warranty_months": 13,
        "sku": "ABC-42"
    });
    let created = server.create("customer", input.clone()).await;
    for key in [
        "name",
        "notes",
        "employees",
        "active",
        "signed_on",
        "tags",
        "rep",
        "email",
        "phone",
        "website",
        "files",
        "warranty_months",
        "sku",
    ] {
        assert_eq!(created[key], input[key], "field {key}");
    }
    assert_eq!(created["revenue"], json!(1234567.89));
    assert_eq!(created["last_contact"], json!("2024-03-05T01:30:00.000Z"));
    assert_eq!(created["category"], json!("intent"), "select default");
    assert_eq!(created["score"], json!(60), "literal default");
    assert_eq!(
        created["warranty_until"],
        json!("2025-02-28"),
        "formula clamps to month end"
    );
    assert_eq!(created["code"], json!("C0001"));
    assert_eq!(created["version"], json!(1));
    assert_eq!(created["vip"], Value::Null);
    let id = created["id"].as_i64().unwrap();
    let fetched = server.get(&format!("/api/data/customer/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created);

    let second = server
        .create("customer", json!({"name": "第二家", "parent": id}))
        .await;
    assert_eq!(second["code"], json!("C0002"));
    assert_eq!(second["parent"], json!(id));

    // A patch recomputes the formula from the merged record.
    let patched = server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"warranty_months": 1, "signed_on": "2024-01-31"}),
            Some(1),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["warranty_until"], json!("2024-02-29"));
    assert_eq!(patched.body["version"], json!(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn decimals_stay_exact() {
    let server = TestServer::start(package()).await;
    let values = ["0.1", "0.2", "99999999999.99", "0.07"];
    for (i, value) in values.iter().enumerate() {
        let created = server
            .create(
                "customer",
                json!({"name": format!("d{i}"), "revenue": value}),
            )
            .await;
        assert_eq!(created["revenue"].to_string(), *value);
    }
    let too_precise = server
        .post(
            "/api/data/customer",
            json!({"name": "x", "revenue": "1.005"}),
        )
        .await;
    assert_eq!(too_precise.status, 422);
    assert_eq!(TestServer::fields_of(&too_precise), vec!["revenue"]);
    let filtered = server
        .post(
            "/api/data/customer/query",
            json!({"filter": {"field": "revenue", "op": "eq", "value": 0.1}}),
        )
        .await;
    assert_eq!(filtered.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_are_refused_per_field_and_change_nothing() {
    let server = TestServer::start(package()).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"employees": 5}), vec!["name"]),
        (json!({"name": "a", "employees": "many"}), vec!["employees"]),
        (json!({"name": "a", "employees": -1}), vec!["employees"]),
        (json!({"name": "a", "revenue": -5}), vec!["revenue"]),
        (json!({"name": "a", "revenue": "abc"}), vec!["revenue"]),
        (json!({"name": "x".repeat(51)}), vec!["name"]),
        (json!({"name": "a", "sku": "abc"}), vec!["sku"]),
        (json!({"name": "a", "email": "not-an-email"}), vec!["email"]),
        (json!({"name": "a", "website": "ftp://x"}), vec!["website"]),
        (
            json!({"name": "a", "signed_on": "2024-02-30"}),
            vec!["signed_on"],
        ),
        (
            json!({"name": "a", "last_contact": "yesterday"}),
            vec!["last_contact"],
        ),
        (
            json!({"name": "a", "category": "unknown"}),
            vec!["category"],
        ),
        (json!({"name": "a", "tags": ["z"]}), vec!["tags"]),
        (json!({"name": "a", "active": "yes"}), vec!["active"]),
        (json!({"name": "a", "nickname": "b"}), vec!["nickname"]),
        (json!({"name": "a", "vip": true}), vec!["vip"]),
        (
            json!({"name": "a", "warranty_until": "2024-01-01"}),
            vec!["warranty_until"],
        ),
        (json!({"name": "a", "code": "C9"}), vec!["code"]),
        (json!({"name": "a", "category": "nurture"}), vec!["reason"]),
        (json!({"name": "a", "parent": 999}), vec!["parent"]),
        (json!({"name": "a", "rep": 999}), vec!["rep"]),
        (
            json!({"name": "a", "files": [{"name": "no file key"}]}),
            vec!["files"],
        ),
        (json!({"name": "", "employees": "x"}), vec!["employees"]),
    ];
    for (input, fields) in cases {
        let reply = server.post("/api/data/customer", input.clone()).await;
        assert_eq!(reply.status, 422, "{input} → {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], json!("validation_failed"));
        let got: BTreeSet<String> = TestServer::fields_of(&reply).into_iter().collect();
        let want: BTreeSet<String> = fields.iter().map(|s| s.to_string()).collect();
        assert!(
            want.is_subset(&got),
            "{input}: expected errors on {want:?}, got {:?}",
            reply.body
        );
    }
    let not_object = server.post("/api/data/customer", json!([1, 2])).await;
    assert_eq!(not_object.status, 400);
    assert_eq!(count(&server, "customer").await, 0, "nothing was created");

    // A refused patch leaves the record as it was.
    let created = server.create("customer", json!({"name": "ok"})).await;
    let id = created["id"].as_i64().unwrap();
    let refused = server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"employees": "x", "notes": "changed"}),
            None,
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        server.get(&format!("/api/data/customer/{id}")).await.body,
        created
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn injection_looking_values_are_stored_verbatim() {
    let server = TestServer::start(package()).await;
    let nasty = [
        "Robert'); DROP TABLE e_customer;--",
        "\" OR 1=1 --",
        "%_\\ like wildcards",
        "<script>alert(1)</script>",
        "emoji 😀 and 中文",
    ];
    for name in nasty {
        let created = server
            .create("customer", json!({"name": name, "notes": name}))
            .await;
        assert_eq!(created["name"], json!(name));
    }
    let found = server
        .post(
            "/api/data/customer/query",
            json!({"filter": {"field": "name", "op": "contains", "value": "%_\\"}}),
        )
        .await;
    assert_eq!(found.status, 200);
    let names: Vec<&str> = found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["%_\\ like wildcards"],
        "LIKE wildcards in a filter are literal"
    );
    assert_eq!(count(&server, "customer").await, nasty.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn unique_values_and_references_are_enforced() {
    let server = TestServer::start(package()).await;
    let parent = server.create("customer", json!({"name": "母公司"})).await;
    let duplicate = server
        .post("/api/data/customer", json!({"name": "母公司"}))
        .await;
    assert_eq!(duplicate.status, 422);
    assert_eq!(TestServer::fields_of(&duplicate), vec!["name"]);
    let parent_id = parent["id"].as_i64().unwrap();
    let contact = server
        .create("contact", json!({"name": "张三", "customer": parent_id}))
        .await;

    let refused = server
        .delete(&format!("/api/data/customer/{parent_id}"))
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contact")
    );

    let contact_id = contact["id"].as_i64().unwrap();
    assert_eq!(
        server
            .delete(&format!("/api/data/contact/{contact_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .delete(&format!("/api/data/customer/{parent_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .get(&format!("/api/data/customer/{parent_id}"))
            .await
            .status,
        404
    );
    // The recycle bin does not block the name.
    server.create("customer", json!({"name": "母公司"})).await;
    // A reference to a deleted record is refused.
    let dangling = server
        .post(
            "/api/data/contact",
            json!({"name": "李四", "customer": parent_id}),
        )
        .await;
    assert_eq!(dangling.status, 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_versions_conflict() {
    let server = TestServer::start(package()).await;
    let created = server.create("customer", json!({"name": "版本"})).await;
    let path = format!("/api/data/customer/{}", created["id"]);
    let (a, b) = tokio::join!(
        server.patch(&path, json!({"notes": "a"}), Some(1)),
        server.patch(&path, json!({"notes": "b"}), Some(1)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let conflict = if a.status == 409 { a } else { b };
    assert_eq!(conflict.body["error"]["code"], json!("version_conflict"));
    assert_eq!(
        conflict.body["error"]["details"]["current_version"],
        json!(2)
    );
    let bad_header = server
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"notes": "c"})),
            Some(&server.token),
            &[("If-Match", "abc")],
        )
        .await;
    assert_eq!(bad_header.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_creates_get_distinct_gap_free_numbers() {
    let server = TestServer::start(package()).await;
    let creates = (0..100).map(|i| {
        let server = &server;
        async move {
            server
                .create("customer", json!({"name": format!("并发{i}")}))
                .await
        }
    });
    let created = futures::future::join_all(creates).await;
    let codes: BTreeSet<String> = created
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = (1..=100).map(|n| format!("C{n:04}")).collect();
    assert_eq!(codes, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_pagination_over_equal_sort_keys_visits_every_record_once() {
    let server = TestServer::start(package()).await;
    for i in 0..23 {
        let category = if i % 3 == 0 { "nurture" } else { "intent" };
        let employees = if i % 4 == 0 {
            Value::Null
        } else {
            json!(i % 2)
        };
        server
            .create("customer", json!({"name": format!("c{i:02}"), "category": category, "reason": "r", "employees": employees}))
            .await;
    }
    for sort in [
        json!(["category"]),
        json!(["-category", "employees"]),
        json!([{"field": "employees", "desc": true}]),
        json!(["employees", "-name"]),
        json!([]),
    ] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut request = json!({"sort": sort, "limit": 4});
            if let Some(cursor) = &after {
                request["after"] = json!(cursor);
            }
            let page = server.post("/api/data/customer/query", request).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            for item in page.body["items"].as_array().unwrap() {
                seen.push(item["name"].as_str().unwrap().to_string());
            }
            match page.body["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 23, "sort {sort}: {seen:?}");
        assert_eq!(unique.len(), 23, "sort {sort}: duplicates in {seen:?}");
    }
    let bad = server
        .post("/api/data/customer/query", json!({"after": "garbage"}))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_cover_every_operator() {
    let server = TestServer::start(package()).await;
    let rows = [
        ("甲公司", 10, "2024-01-10", vec!["a"]),
        ("乙公司", 20, "2024-02-10", vec!["b"]),
        ("丙工厂", 30, "2024-03-10", vec!["a", "b"]),
    ];
    for (name, employees, signed_on, tags) in rows {
        server
            .create(
                "customer",
                json!({"name": name, "employees": employees, "signed_on": signed_on, "tags": tags}),
            )
            .await;
    }
    server.create("customer", json!({"name": "丁"})).await;
    let names = |filter: Value| {
        let server = &server;
        async move {
            let reply = server
                .post(
                    "/api/data/customer/query",
                    json!({"filter": filter, "sort": ["name"]}),
                )
                .await;
            assert_eq!(reply.status, 200, "{filter}: {:?}", reply.body);
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect::<BTreeSet<_>>()
        }
    };
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names(json!({"field": "employees", "op": "eq", "value": 20})).await,
        set(&["乙公司"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "ne", "value": 20})).await,
        set(&["甲公司", "丙工厂", "丁"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "lt", "value": 20})).await,
        set(&["甲公司"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "lte", "value": 20})).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "gt", "value": 20})).await,
        set(&["丙工厂"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "gte", "value": 20})).await,
        set(&["乙公司", "丙工厂"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "in", "value": [10, 30]})).await,
        set(&["甲公司", "丙工厂"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "nin", "value": [10, 30]})).await,
        set(&["乙公司", "丁"])
    );
    assert_eq!(
        names(json!({"field": "name", "op": "contains", "value": "公司"})).await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        names(json!({"field": "name", "op": "starts_with", "value": "丙"})).await,
        set(&["丙工厂"])
    );
    assert_eq!(
        names(json!({"field": "tags", "op": "contains", "value": "b"})).await,
        set(&["乙公司", "丙工厂"])
    );
    assert_eq!(
        names(json!({"field": "employees", "op": "is_null", "value": true})).await,
        set(&["丁"])
    );
    assert_eq!(
        names(
            json!({"field": "signed_on", "op": "between", "value": ["2024-01-01", "2024-02-10"]})
        )
        .await,
        set(&["甲公司", "乙公司"])
    );
    assert_eq!(
        names(json!({"or": [{"field": "employees", "op": "eq", "value": 10}, {"not": {"field": "employees", "op": "lte", "value": 20}}]})).await,
        set(&["甲公司", "丙工厂"])
    );
    assert_eq!(
        names(json!({"and": [{"field": "owner", "op": "eq", "value": {"user": "me"}}, {"field": "created_at", "op": "gte", "value": {"relative": "start_of_year"}}]})).await.len(),
        4
    );
    for (filter, path) in [
        (
            json!({"field": "nope", "op": "eq", "value": 1}),
            "filter.field",
        ),
        (
            json!({"field": "employees", "op": "like", "value": 1}),
            "filter.op",
        ),
        (
            json!({"and": [{"field": "employees", "op": "eq", "value": "x"}]}),
            "filter.and[0].value",
        ),
        (
            json!({"field": "employees", "op": "contains", "value": "1"}),
            "filter.value",
        ),
        (
            json!({"field": "signed_on", "op": "gte", "value": {"relative": "someday"}}),
            "filter.value",
        ),
    ] {
        let reply = server
            .post("/api/data/customer/query", json!({"filter": filter}))
            .await;
        assert_eq!(reply.status, 400, "{filter}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(path),
            "{filter}: {:?}",
            reply.body
        );
    }
    let over = server
        .post("/api/data/customer/query", json!({"limit": 100000}))
        .await;
    assert_eq!(over.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_records_who_changed_what() {
    let server = TestServer::start(package()).await;
    let created = server
        .create("customer", json!({"name": "历史", "employees": 1}))
        .await;
    let id = created["id"].as_i64().unwrap();
    server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"employees": 2}),
            Some(1),
        )
        .await;
    let history = server
        .get(&format!("/api/data/customer/{id}/history"))
        .await;
    assert_eq!(history.status, 200);
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], json!("create"));
    assert_eq!(items[0]["changes"]["name"], json!([null, "历史"]));
    assert_eq!(items[1]["action"], json!("update"));
    assert_eq!(items[1]["changes"], json!({"employees": [1, 2]}));
    assert_eq!(items[1]["user"], created["created_by"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_have_the_contract_shape() {
    let server = TestServer::start(package()).await;
    let unknown_entity = server.get("/api/data/nothing/1").await;
    assert_eq!(unknown_entity.status, 404);
    assert_eq!(unknown_entity.body["error"]["code"], json!("not_found"));
    let missing = server.get("/api/data/customer/424242").await;
    assert_eq!(missing.status, 404);
    let no_token = server
        .send(reqwest::Method::GET, "/api/meta", None, None, &[])
        .await;
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.body["error"]["code"], json!("unauthorized"));
    let bad_token = server
        .send(reqwest::Method::GET, "/api/meta", None, Some("forged"), &[])
        .await;
    assert_eq!(bad_token.status, 401);
    let bad_id = server.get("/api/data/customer/abc").await;
    assert_eq!(bad_id.status, 400);
    assert!(bad_id.body["error"]["message"].is_string());
    let bad_json = server
        .client
        .post(format!("{}/api/data/customer", server.base))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let body: Value = bad_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("bad_request"));
    // The server answers 413 from the announced length, before reading the body (so
    // the client here only sends the headers).
    let response = raw_request(
        &server,
        &format!(
            "POST /api/data/customer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.token,
            9 * 1024 * 1024
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
    let no_route = server.get("/api/nothing/here").await;
    assert_eq!(no_route.status, 404);
    assert_eq!(no_route.body["error"]["code"], json!("not_found"));
    assert_eq!(count(&server, "customer").await, 0);
}

/// Sends raw bytes and reads the reply until the server closes or a second passes.
async fn raw_request(server: &TestServer, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        stream.read_to_end(&mut reply),
    )
    .await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_logout_and_wrong_passwords() {
    let server = TestServer::start(package()).await;
    let wrong = server
        .send(reqwest::Method::POST, "/api/auth/login", Some(json!({"tenant": server.tenant.key, "username": "admin", "password": "wrong password"})), None, &[])
        .await;
    assert_eq!(wrong.status, 401);
    let unknown_user = server
        .send(reqwest::Method::POST, "/api/auth/login", Some(json!({"tenant": server.tenant.key, "username": "ghost", "password": "wrong password"})), None, &[])
        .await;
    let unknown_tenant = server
        .send(reqwest::Method::POST, "/api/auth/login", Some(json!({"tenant": "no_such_tenant", "username": "admin", "password": "wrong password"})), None, &[])
        .await;
    assert_eq!(unknown_user.status, 401);
    assert_eq!(unknown_tenant.status, 401);
    assert_eq!(wrong.body, unknown_user.body, "no user enumeration");
    assert_eq!(wrong.body, unknown_tenant.body, "no tenant enumeration");

    let token = server.login(common::ADMIN, common::PASSWORD).await;
    let me = server
        .send(
            reqwest::Method::GET,
            "/api/auth/me",
            None,
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(me.body["username"], json!("admin"));
    assert_eq!(me.body["is_admin"], json!(true));
    assert_eq!(me.body["roles"], json!([]));
    let out = server
        .send(
            reqwest::Method::POST,
            "/api/auth/logout",
            None,
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(out.status, 200);
    let after = server
        .send(
            reqwest::Method::GET,
            "/api/auth/me",
            None,
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(after.status, 401, "the token is revoked");
    assert_eq!(
        server.get("/api/auth/me").await.status,
        200,
        "other sessions live on"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expression_defaults_read_the_values_sent_with_them() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "contract", "fields": [
            {"key": "signed_on", "type": "date"},
            {"key": "due_on", "type": "date", "default": "add_days(signed_on, 30)"},
            {"key": "category", "type": "select", "default": "intent",
             "options": [{"value": "intent"}, {"value": "nurture"}]},
            {"key": "summary", "type": "text", "default": "'类别:' ~ category"},
            {"key": "amount", "type": "decimal", "default": "(quantity or 0) * 2"},
            {"key": "quantity", "type": "integer"}
        ]}
    ]}))
    .await;
    let created = server
        .create(
            "contract",
            json!({"signed_on": "2024-01-15", "quantity": 4}),
        )
        .await;
    assert_eq!(created["due_on"], json!("2024-02-14"), "{created}");
    assert_eq!(
        created["summary"],
        json!("类别:intent"),
        "an earlier default"
    );
    assert_eq!(created["amount"], json!(8), "a field listed after it");
    let sent = server
        .create(
            "contract",
            json!({"signed_on": "2024-01-15", "category": "nurture"}),
        )
        .await;
    assert_eq!(sent["summary"], json!("类别:nurture"));
    assert_eq!(sent["amount"], json!(0));
    // A default never overrides what the input gives, null included.
    let given = server
        .create(
            "contract",
            json!({"signed_on": "2024-01-15", "due_on": "2024-12-31", "summary": null}),
        )
        .await;
    assert_eq!(given["due_on"], json!("2024-12-31"));
    assert_eq!(given["summary"], Value::Null);
    let nothing = server.create("contract", json!({})).await;
    assert_eq!(nothing["due_on"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn string_defaults_written_like_values_are_those_values() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "course", "fields": [
            {"key": "name", "type": "text", "default": "'未命名'"},
            {"key": "starts_on", "type": "date", "default": "2024-01-01"},
            {"key": "opens_at", "type": "datetime", "default": "2024-01-01T09:00:00+08:00"},
            {"key": "fee", "type": "decimal", "scale": 2, "default": "1999.90"},
            {"key": "ends_on", "type": "date", "default": "add_days(starts_on, 2)"}
        ]}
    ]}))
    .await;
    let created = server.create("course", json!({})).await;
    assert_eq!(created["name"], json!("未命名"));
    assert_eq!(created["starts_on"], json!("2024-01-01"));
    assert_eq!(created["opens_at"], json!("2024-01-01T01:00:00.000Z"));
    assert_eq!(created["fee"], json!(1999.9));
    assert_eq!(created["ends_on"], json!("2024-01-03"));
    let form = server.get("/api/meta/entities/course/form").await;
    assert_eq!(form.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn formula_results_are_coerced_like_round() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "line", "fields": [
            {"key": "qty", "type": "integer"},
            {"key": "price", "type": "decimal", "scale": 3},
            {"key": "half", "type": "integer", "formula": "(qty or 0) / 2"},
            {"key": "eighth", "type": "decimal", "scale": 2, "formula": "(price or 0) / 8"},
            {"key": "rounded", "type": "decimal", "scale": 2, "formula": "round((price or 0) / 8, 2)"}
        ]}
    ]}))
    .await;
    // Division yields a float: 4 / 2 is 2.0, which an integer field takes.
    let whole = server.create("line", json!({"qty": 4})).await;
    assert_eq!(whole["half"], json!(2));
    // Half away from zero (四舍五入), the same as round(): 0.125 → 0.13, -0.125 → -0.13.
    let up = server.create("line", json!({"price": 1})).await;
    assert_eq!(up["eighth"], json!(0.13));
    assert_eq!(up["eighth"], up["rounded"]);
    let down = server.create("line", json!({"price": -1})).await;
    assert_eq!(down["eighth"], json!(-0.13));
    assert_eq!(down["eighth"], down["rounded"]);
    let exact = server.create("line", json!({"price": "0.36"})).await;
    assert_eq!(exact["eighth"], json!(0.05), "0.045 rounds up too");
    // A fraction is not a whole number: refused, naming the field.
    let odd = server.post("/api/data/line", json!({"qty": 5})).await;
    assert_eq!(odd.status, 422, "{:?}", odd.body);
    assert_eq!(TestServer::fields_of(&odd), vec!["half"]);
    let message = odd.body["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"half\"") && message.contains("2.5"),
        "{message}"
    );
    assert_eq!(count(&server, "line").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_select_contains_matches_option_codes_exactly() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "account", "fields": [
            {"key": "name", "type": "text"},
            {"key": "tags", "type": "multi_select", "options": [
                {"value": "VIP"}, {"value": "vip"}, {"value": "Gov"}, {"value": "Gov2"}]}
        ]}
    ]}))
    .await;
    for (name, tags) in [
        ("upper", json!(["VIP"])),
        ("lower", json!(["vip"])),
        ("gov", json!(["Gov", "VIP"])),
        ("gov2", json!(["Gov2"])),
        ("none", json!([])),
    ] {
        server
            .create("account", json!({"name": name, "tags": tags}))
            .await;
    }
    let names = |op: &'static str, value: &'static str| {
        let server = &server;
        async move {
            let reply = server
                .post(
                    "/api/data/account/query",
                    json!({"filter": {"field": "tags", "op": op, "value": value}, "sort": ["name"]}),
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("contains", "VIP").await, ["gov", "upper"]);
    assert_eq!(names("contains", "vip").await, ["lower"]);
    assert_eq!(names("contains", "Gov").await, ["gov"]);
    assert_eq!(names("starts_with", "Gov2").await, ["gov2"]);
    assert!(names("contains", "gov").await.is_empty());
    assert!(names("contains", "Vip").await.is_empty());
    let not = server
        .post(
            "/api/data/account/query",
            json!({"filter": {"not": {"field": "tags", "op": "contains", "value": "VIP"}}, "sort": ["name"]}),
        )
        .await;
    let rest: Vec<&str> = not.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["gov2", "lower", "none"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn expressions_auto_numbers_and_filters_share_the_tenant_clock() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "visit", "fields": [
            {"key": "code", "type": "auto_number", "format": "V{YYYY}-{MM}-{DD}-{0}"},
            {"key": "visited_on", "type": "date", "default": "today()"},
            {"key": "noted_at", "type": "datetime", "default": "now()"},
            {"key": "noted_on", "type": "date", "formula": "add_days(noted_at, 0)"}
        ]}
    ]}))
    .await;
    let today = metacrm::clock::today().format("%Y-%m-%d").to_string();
    let visit = server.create("visit", json!({})).await;
    let code = visit["code"].as_str().unwrap();
    let visited_on = visit["visited_on"].as_str().unwrap();
    // (A run that straddles midnight China time may see two dates; allow it.)
    if today == metacrm::clock::today().format("%Y-%m-%d").to_string() {
        assert_eq!(visited_on, today, "today() is the tenant's date");
        assert_eq!(code, format!("V{today}-1"), "auto-number date");
        assert_eq!(visit["noted_on"], json!(today), "the date of now()");
    }
    let reply = server
        .post(
            "/api/data/visit/query",
            json!({"filter": {"field": "visited_on", "op": "eq", "value": {"relative": "today"}}}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 1);
}

/// Creates `inputs` as one batch (an import's path) and commits.
async fn insert_together(
    records: &metacrm::store::records::Records<'_>,
    tenant: &metacrm::tenant::Tenant,
    access: &metacrm::auth::Access,
    inputs: Vec<Value>,
) -> metacrm::store::records::Inserted {
    let prepared = inputs
        .iter()
        .map(|input| records.prepare_create(input, access).unwrap())
        .collect();
    let txn = tenant.db.begin_write().await.unwrap();
    let inserted = records
        .insert_many(&txn, prepared, access, "import")
        .await
        .unwrap();
    txn.commit().await.unwrap();
    inserted
}

#[tokio::test(flavor = "multi_thread")]
async fn records_written_together_are_checked_and_journaled_like_single_creates() {
    use metacrm::auth::{Access, users};
    use metacrm::store::{journal, records::Records};
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true, "unique": true},
            {"key": "code", "type": "auto_number", "format": "C{0000}"},
            {"key": "parent", "type": "reference", "target": "customer"},
            {"key": "rep", "type": "user"},
            {"key": "files", "type": "attachment"}],
         "pipeline": {"stages": [{"key": "contact"}, {"key": "signed", "won": true}]}}
    ]}))
    .await;
    let licence = server.upload("执照.pdf", b"%PDF-1.4 licence").await;
    let mut never_uploaded = licence.clone();
    never_uploaded["file"] = json!("ab".repeat(32));
    let tenant = &server.tenant;
    let catalog = tenant.catalog().await;
    let records = Records::new(&tenant.db, &catalog, catalog.entity("customer").unwrap());
    assert!(records.inserts_in_batches());
    let admin = users::find_by_username(&tenant.db, common::ADMIN)
        .await
        .unwrap()
        .unwrap();
    let access = Access::full(admin.id);
    let single = records
        .create(&json!({"name": "单独创建", "files": [licence]}), &access)
        .await
        .unwrap();

    // Nothing shared within the batch: written together, refusals named per record.
    let inserted = insert_together(
        &records,
        tenant,
        &access,
        vec![
            json!({"name": "甲", "files": [licence], "parent": single["id"], "rep": admin.id}),
            json!({"name": "单独创建"}),
            json!({"name": "乙", "parent": 999_999}),
            json!({"name": "丙", "rep": 999_999}),
            json!({"name": "丁", "files": [never_uploaded]}),
            json!({"name": "戊"}),
        ],
    )
    .await;
    let refused: Vec<(usize, String)> = inserted
        .refused
        .iter()
        .map(|(position, error)| (*position, format!("{error:?}")))
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    for ((position, message), (expected_position, expected)) in refused.iter().zip([
        (1, "already used by another record"),
        (2, "customer record 999999 does not exist"),
        (3, "user 999999 does not exist"),
        (4, "was not uploaded"),
    ]) {
        assert_eq!(*position, expected_position, "{message}");
        assert!(message.contains(expected), "{position}: {message}");
    }
    let created: Vec<&Value> = inserted.created.iter().collect();
    let names: Vec<&str> = created
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["甲", "戊"]);
    // What a write answers is the record as it reads back (it is not read back), and
    // records written together take ids in their order.
    for record in created.iter().copied().chain([&single]) {
        let id = record["id"].as_i64().unwrap();
        assert_eq!(*record, records.get(id, &access).await.unwrap(), "{id}");
    }
    assert!(single["id"].as_i64() < created[0]["id"].as_i64());
    assert!(created[0]["id"].as_i64() < created[1]["id"].as_i64());
    let first = created[0];
    // The same record a single create writes: every column, the same defaults.
    let keys = |record: &Value| {
        record
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(first), keys(&single));
    for key in ["stage", "owner", "created_by", "version", "files"] {
        assert_eq!(first[key], single[key], "{key}");
    }
    assert_eq!(first["parent"], single["id"]);
    assert_eq!(first["rep"], json!(admin.id));
    let history = records
        .history(first["id"].as_i64().unwrap(), &access)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["action"], "import");
    assert_eq!(history[0]["changes"]["name"], json!([null, "甲"]));
    let stages = journal::stage_history(&tenant.db, "customer", first["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0]["stage"], "contact");

    // Two records of the batch share a unique value: the index refuses the batch and
    // each record is written on its own, the second one refused.
    let inserted = insert_together(
        &records,
        tenant,
        &access,
        vec![
            json!({"name": "己"}),
            json!({"name": "己"}),
            json!({"name": "庚"}),
        ],
    )
    .await;
    assert_eq!(inserted.created.len(), 2);
    assert_eq!(inserted.refused.len(), 1);
    assert_eq!(inserted.refused[0].0, 1);
    assert!(format!("{:?}", inserted.refused[0].1).contains("already used"));

    // Numbers are consecutive, none lost to a refused record or the refused batch.
    let mut codes: Vec<String> = server
        .records("customer")
        .await
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect();
    codes.sort();
    assert_eq!(codes, ["C0001", "C0002", "C0003", "C0004", "C0005"]);
    // Every record written has exactly one outbox row (search and webhooks hear once).
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let select = Query::select()
        .column(Alias::new("record_id"))
        .from(tenant.db.table("outbox"))
        .and_where(Expr::col(Alias::new("entity")).eq("customer"))
        .to_owned();
    let outbox = tenant.db.conn().query_all(&select).await.unwrap().len();
    assert_eq!(outbox, 5);
}

/// The search indexer reads the outbox in id order and keeps a cursor, so a write must
/// not commit while an earlier-numbered outbox row is still uncommitted: a second
/// writer waits for the first (SQLite's write lock; on PostgreSQL the outbox lock its
/// trigger takes) and its outbox row comes after.
#[tokio::test(flavor = "multi_thread")]
async fn outbox_rows_become_visible_in_id_order() {
    use metacrm::auth::{Access, users};
    use metacrm::store::records::Records;
    use sea_orm::{ConnectionTrait, Statement};
    // Nothing else the two writes share (no auto number, no unique value) could order them.
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "fields": [{"key": "name", "type": "text"}]}
    ]}))
    .await;
    let tenant = &server.tenant;
    let catalog = tenant.catalog().await;
    let records = Records::new(&tenant.db, &catalog, catalog.entity("customer").unwrap());
    let admin = users::find_by_username(&tenant.db, common::ADMIN)
        .await
        .unwrap()
        .unwrap();
    let access = Access::full(admin.id);
    let first = records
        .prepare_create(&json!({"name": "先开始"}), &access)
        .unwrap();
    let txn = tenant.db.begin_write().await.unwrap();
    let first = records
        .insert_prepared(&txn, first, &access, "create")
        .await
        .unwrap();

    let second = {
        let client = server.client.clone();
        let url = format!("{}/api/data/customer", server.base);
        let token = server.token.clone();
        tokio::spawn(async move {
            let reply = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"name": "后开始"}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 201);
            reply.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "a second write committed while the first was open"
    );
    txn.commit().await.unwrap();
    let second = second.await.unwrap();

    let conn = tenant.db.conn();
    let outbox = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT record_id FROM {} ORDER BY id",
                match tenant.db.schema() {
                    Some(schema) => format!("\"{schema}\".outbox"),
                    None => "outbox".into(),
                }
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64>("", "record_id").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        outbox,
        [
            first["id"].as_i64().unwrap(),
            second["id"].as_i64().unwrap()
        ]
    );
}

/// SQLite keeps no planner statistics unless asked; without them it takes every
/// indexed `IN` list (a manager's `owner IN (the team)`) for a selective one. The
/// background jobs refresh them where stale, and the pool's connections plan with them.
#[tokio::test(flavor = "multi_thread")]
async fn background_jobs_refresh_sqlite_planner_statistics() {
    use metacrm::auth::{Access, users::NewUser};
    use metacrm::store::db::Backend;
    use metacrm::store::records::Records;
    use sea_orm::{ConnectionTrait, Statement};
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "fields": [{"key": "name", "type": "text"}]}
    ]}))
    .await;
    let tenant = &server.tenant;
    if tenant.db.backend() != Backend::Sqlite {
        println!(
            "NOTICE: SQLite planner statistics: nothing to check on PostgreSQL (autovacuum keeps them)"
        );
        return;
    }
    let mut owners = Vec::new();
    for n in 0..4 {
        let user = tenant
            .create_user(&NewUser {
                username: format!("rep{n}"),
                display_name: String::new(),
                password: "a long enough password".into(),
                is_admin: false,
                roles: vec![],
                department: None,
            })
            .await
            .unwrap();
        owners.push(user.id);
    }
    let catalog = tenant.catalog().await;
    let records = Records::new(&tenant.db, &catalog, catalog.entity("customer").unwrap());
    let prepared: Vec<_> = (0..2000)
        .map(|i| {
            let owner = owners[i % owners.len()];
            let input = json!({"name": format!("客户{i}"), "owner": owner});
            records
                .prepare_create(&input, &Access::full(owner))
                .unwrap()
        })
        .collect();
    let txn = tenant.db.begin_write().await.unwrap();
    let inserted = records
        .insert_many(&txn, prepared, &Access::full(owners[0]), "import")
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(inserted.created.len(), 2000);

    // What the planner knows of the owner index: `rows rows-per-owner`.
    let owner_statistics = || async {
        let conn = tenant.db.conn();
        let select = "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_customer_owner'";
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                select.to_string(),
            ))
            .await
            .unwrap();
        rows.first()
            .map(|row| row.try_get::<String>("", "stat").unwrap())
    };
    // Analyzed when the tenant opened, empty.
    assert_eq!(owner_statistics().await, None);
    metacrm::workflow::jobs::run(&server.tenants, Some(&tenant.key), chrono::Utc::now())
        .await
        .unwrap();
    let statistics = owner_statistics().await.expect("owner index analyzed");
    let rows: u64 = statistics.split(' ').next().unwrap().parse().unwrap();
    assert!((1000..=3000).contains(&rows), "{statistics}");
    // Nothing grew since: the next run analyzes nothing.
    metacrm::workflow::jobs::run(&server.tenants, Some(&tenant.key), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(owner_statistics().await, Some(statistics));
}

/// On SQLite a wide owner set is written so that no index serves it: a manager's
/// newest-first list then walks the `created_at` index and stops at the page's end,
/// where with the owner index it read and sorted every record the set owns.
#[tokio::test(flavor = "multi_thread")]
async fn a_wide_owner_set_leaves_sqlite_the_index_of_the_sort() {
    use metacrm::auth::{Access, OwnerIndex};
    use metacrm::meta::Scope;
    use metacrm::store::db::Backend;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SqliteQueryBuilder};
    use sea_orm::{ConnectionTrait, Statement};
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "fields": [{"key": "name", "type": "text"}]}
    ]}))
    .await;
    let tenant = &server.tenant;
    if tenant.db.backend() != Backend::Sqlite {
        println!("NOTICE: owner predicate hint: SQLite only (PostgreSQL plans by its statistics)");
        return;
    }
    let plan = |owner_index| async move {
        let owners = (1..=16).collect();
        let access = Access::scoped(
            1,
            Scope::Subordinates,
            Some(owners),
            owner_index,
            Default::default(),
            Default::default(),
        );
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new("e_customer"))
            .and_where(Expr::col(Alias::new("deleted_at")).is_null())
            .cond_where(access.rows.unwrap())
            .order_by(Alias::new("created_at"), Order::Desc)
            .order_by(Alias::new("id"), Order::Desc)
            .limit(51);
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            select.to_string(SqliteQueryBuilder)
        );
        let conn = tenant.db.conn();
        conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let indexed = plan(OwnerIndex::Use).await;
    assert!(indexed.contains("ix_customer_owner"), "{indexed}");
    let avoided = plan(OwnerIndex::Avoid).await;
    assert!(avoided.contains("ix_customer_created_at"), "{avoided}");
    assert!(!avoided.contains("TEMP B-TREE"), "{avoided}");
}

/// A list scoped to one owner, newest first, as the gate writes the scope.
fn own_newest_first(server: &TestServer) -> sea_orm::sea_query::SelectStatement {
    use metacrm::auth::{Access, OwnerIndex};
    use metacrm::meta::Scope;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
    let access = Access::scoped(
        7,
        Scope::Own,
        Some([7].into_iter().collect()),
        OwnerIndex::Use,
        Default::default(),
        Default::default(),
    );
    Query::select()
        .column(Alias::new("id"))
        .from(server.tenant.db.table("e_customer"))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null())
        .cond_where(access.rows.unwrap())
        .order_by(Alias::new("created_at"), Order::Desc)
        .order_by(Alias::new("id"), Order::Desc)
        .limit(51)
        .to_owned()
}

/// Whether a plan reads the owner's records newest first from the owner index:
/// SQLite's without a temp B-tree for the order; PostgreSQL's backwards (a plain owner
/// index gives no order to read backwards for; on a table this small it may still sort
/// the few rows it reads).
fn newest_first_from_owner_index(plan: &str) -> bool {
    plan.contains("Index Scan Backward using ix_customer_owner ")
        || (plan.contains("USING INDEX ix_customer_owner ") && !plan.contains("TEMP B-TREE"))
}

/// A rep's own list reads its page newest first from the owner index, which is on
/// `(owner, created_at)`; a tenant from before gets that index at its next start.
#[tokio::test(flavor = "multi_thread")]
async fn an_own_list_reads_its_page_in_the_owner_index_order() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "fields": [{"key": "name", "type": "text"}]}
    ]}))
    .await;
    for name in ["甲", "乙", "丙"] {
        server.create("customer", json!({"name": name})).await;
    }
    let plan = common::explain(&server.tenant, &own_newest_first(&server)).await;
    assert!(newest_first_from_owner_index(&plan), "{plan}");

    common::put_back_plain_index(
        &server.tenant,
        ("e_customer", "ix_customer_owner", "owner"),
        &[],
        "m0016_tenant",
    )
    .await;
    let plan = common::explain(&server.tenant, &own_newest_first(&server)).await;
    assert!(
        !newest_first_from_owner_index(&plan),
        "the owner-only index gives no order: {plan}"
    );

    let restarted = server.restart().await;
    let definition = common::index_definition(&restarted.tenant, "ix_customer_owner").await;
    assert!(definition.contains("created_at"), "{definition}");
    let plan = common::explain(&restarted.tenant, &own_newest_first(&restarted)).await;
    assert!(newest_first_from_owner_index(&plan), "{plan}");
}

/// A page after the first starts reading at its cursor in the index of its sort — the
/// primary key by default, a field's index when sorted by it (even one that may hold
/// NULL: those rows come last ascending, first descending) — not at the table's start:
/// paging through a million records (a search rebuild, an export) costs the same per
/// page at the end as at the start.
#[tokio::test(flavor = "multi_thread")]
async fn a_next_page_starts_at_its_cursor_in_the_index() {
    use metacrm::auth::Access;
    use metacrm::store::records::{QueryRequest, Records};
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "fields": [{"key": "name", "type": "text", "indexed": true}]}
    ]}))
    .await;
    for name in [json!("c"), Value::Null, json!("a"), json!("b")] {
        server.create("customer", json!({"name": name})).await;
    }
    let catalog = server.tenant.catalog().await;
    let records = Records::new(
        &server.tenant.db,
        &catalog,
        catalog.entity("customer").unwrap(),
    );
    for (sort, sqlite, postgres, expected) in [
        (
            json!([]),
            "USING INTEGER PRIMARY KEY (rowid>?)",
            "Index Cond: (id >",
            [json!("c"), Value::Null, json!("a"), json!("b")],
        ),
        (
            json!(["name"]),
            "USING INDEX ix_customer_name (name>?)",
            "Index Cond: (name >",
            [json!("a"), json!("b"), json!("c"), Value::Null],
        ),
        (
            json!(["-name"]),
            "USING INDEX ix_customer_name (name=? AND rowid<?)",
            "Index Cond: (name IS NULL)",
            [Value::Null, json!("c"), json!("b"), json!("a")],
        ),
    ] {
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut body = json!({"limit": 1, "sort": sort});
            if let Some(cursor) = &after {
                body["after"] = json!(cursor);
            }
            let page = server.post("/api/data/customer/query", body).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            names.extend(
                page.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["name"].clone()),
            );
            match page.body["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
            if names.len() == 1 {
                // The second page's plan: from the cursor on the first row's value.
                let request: QueryRequest =
                    serde_json::from_value(json!({"limit": 1, "sort": sort, "after": after}))
                        .unwrap();
                let select = records.page_select(&request, &Access::system()).unwrap();
                let plan = common::explain(&server.tenant, &select).await;
                assert!(
                    plan.contains(sqlite) || plan.contains(postgres),
                    "sort {sort}: {plan}"
                );
            }
        }
        assert_eq!(names, expected, "sort {sort}");
    }
}
