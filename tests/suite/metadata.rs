//! Applying metadata: plans, dry runs, refusals that change nothing, archive and
//! restore, renames, widenings, publishing under load, wide entities.

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

fn base() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "employees", "type": "integer"},
            {"key": "phone", "type": "phone"}
        ]}
    ]})
}

/// Everything that must not move when a package is refused.
async fn snapshot(server: &TestServer) -> (Value, usize, Value) {
    let meta = server.get("/api/meta").await.body;
    let versions = server.get("/api/meta/versions").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let records = server
        .post("/api/data/customer/query", json!({"sort": ["id"]}))
        .await
        .body;
    (meta, versions, records)
}

fn with_field(field: Value) -> Value {
    let mut package = base();
    package["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(field);
    package
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_packages_are_rejected_with_paths_and_change_nothing() {
    let server = TestServer::start(base()).await;
    server
        .create("customer", json!({"name": "甲", "employees": 3}))
        .await;
    let before = snapshot(&server).await;
    let lossy = {
        let mut package = base();
        package["entities"][0]["fields"][1] = json!({"key": "employees", "type": "date"});
        package
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with_field(json!({"key": "order", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "select", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "na'me", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "名称", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "Name", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "owner", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "name", "type": "text"})),
            "entities[0].fields[3].key",
        ),
        (
            with_field(json!({"key": "boss", "type": "reference", "target": "nobody"})),
            "entities[0].fields[3].target",
        ),
        (
            with_field(json!({"key": "total", "type": "integer", "formula": "employees * "})),
            "entities[0].fields[3].formula",
        ),
        (
            with_field(json!({"key": "total", "type": "integer", "formula": "ghosts + 1"})),
            "entities[0].fields[3].formula",
        ),
        (
            with_field(json!({"key": "kind", "type": "select"})),
            "entities[0].fields[3].options",
        ),
        (
            with_field(json!({"key": "note", "type": "text", "colour": "red"})),
            "entities[0].fields[3]",
        ),
        (
            with_field(json!({"key": "note", "type": "texte"})),
            "entities[0].fields[3].type",
        ),
        (lossy, "entities[0].fields[1].type"),
        (
            json!({"format": 1, "entities": [{"key": "customer", "title_field": "nope", "fields": [{"key": "name", "type": "text"}]}]}),
            "entities[0].title_field",
        ),
        (
            json!({"format": 1, "entities": [{"key": "customer", "fields": [{"key": "name", "type": "text"}], "layout": {"sections": [{"fields": ["ghost"]}]}}]}),
            "entities[0].layout.sections[0].fields[0]",
        ),
        (
            {
                let mut package = base();
                package["reports"] = json!([{"key": "r", "entity": "customer",
                    "filter": {"and": [{"field": "name", "op": "eq", "value": "x"},
                                       {"field": "ghost", "op": "eq", "value": 1}]}}]);
                package
            },
            "reports[0].filter.and[1].field",
        ),
        (
            {
                let mut package = base();
                package["reports"] = json!([{"key": "r", "entity": "customer",
                    "filter": {"field": "name", "op": "frobnicate", "value": 1}}]);
                package
            },
            "reports[0].filter.op",
        ),
        (json!({"format": 1, "entities": [], "bogus": true}), ""),
        (json!({"format": 2, "entities": []}), "format"),
    ];
    for (package, path) in cases {
        let reply = server.put("/api/meta", package.clone()).await;
        assert_eq!(reply.status, 422, "{package}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], json!("invalid_metadata"));
        let details = reply.body["error"]["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["path"].as_str().unwrap().starts_with(path)
                    && !d["message"].as_str().unwrap().is_empty()),
            "expected a problem at {path:?}, got {details:?}"
        );
        assert_eq!(
            snapshot(&server).await,
            before,
            "{package} changed something"
        );
    }
    // Every problem is reported at once, not only the first.
    let mut two = with_field(json!({"key": "order", "type": "text"}));
    two["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "x", "type": "reference", "target": "nobody"}));
    let reply = server.put("/api/meta", two).await;
    assert!(
        reply.body["error"]["details"].as_array().unwrap().len() >= 2,
        "{:?}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_the_plan_and_changes_nothing() {
    let server = TestServer::start(base()).await;
    let before = snapshot(&server).await;
    let mut package = with_field(json!({"key": "email", "type": "email", "unique": true}));
    package["entities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "contact", "fields": [{"key": "name", "type": "text"}]}));
    let plan = server.put("/api/meta?dry_run=true", package.clone()).await;
    assert_eq!(plan.status, 200, "{:?}", plan.body);
    let ops: Vec<(String, String, Value)> = plan.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["op"].as_str().unwrap().to_string(),
                s["entity"].as_str().unwrap().to_string(),
                s["field"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("add_column".into(), "customer".into(), json!("email")),
            ("add_index".into(), "customer".into(), json!("email")),
            ("create_table".into(), "contact".into(), Value::Null),
        ]
    );
    assert!(
        plan.body["steps"][0]["sql"]
            .as_str()
            .unwrap()
            .contains("ALTER TABLE")
    );
    assert_eq!(snapshot(&server).await, before);
    assert_eq!(
        server
            .post("/api/data/contact/query", json!({}))
            .await
            .status,
        404
    );

    let applied = server.put("/api/meta", package.clone()).await;
    assert_eq!(applied.status, 200);
    assert_eq!(applied.body["version"], json!(2));
    assert_eq!(
        server.get("/api/meta").await.body,
        package,
        "GET returns exactly what was published"
    );
    let versions = server.get("/api/meta/versions").await.body;
    assert_eq!(versions["items"][0]["version"], json!(2));
    assert_eq!(versions["items"][0]["author"], json!(1));
    assert_eq!(
        versions["items"][0]["plan"]["steps"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Applying the same package again changes nothing and makes no version.
    let again = server.put("/api/meta", package).await;
    assert_eq!(again.body["changed"], json!(false));
    assert_eq!(again.body["steps"], json!([]));
    assert_eq!(
        server.get("/api/meta/versions").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_fields_and_entities_come_back_with_their_data() {
    let mut package = base();
    package["entities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "memo", "fields": [{"key": "body", "type": "long_text"}]}));
    let server = TestServer::start(package.clone()).await;
    let customer = server
        .create(
            "customer",
            json!({"name": "归档", "employees": 42, "phone": "13800138000"}),
        )
        .await;
    let memo = server.create("memo", json!({"body": "备忘"})).await;
    let id = customer["id"].as_i64().unwrap();

    let mut without = package.clone();
    without["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["key"] != "employees");
    without["entities"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["key"] != "memo");
    let plan = server.put("/api/meta", without.clone()).await;
    assert_eq!(plan.status, 200, "{:?}", plan.body);
    let ops: Vec<&str> = plan.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["archive_column", "archive_table"]);
    let hidden = server.get(&format!("/api/data/customer/{id}")).await.body;
    assert!(hidden.get("employees").is_none());
    assert_eq!(
        server.post("/api/data/memo/query", json!({})).await.status,
        404
    );
    // Writes go on while the field is archived.
    server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"phone": "13900139000"}),
            None,
        )
        .await;

    let restored = server.put("/api/meta", package).await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    let ops: Vec<&str> = restored.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["restore_column", "restore_table"]);
    let back = server.get(&format!("/api/data/customer/{id}")).await.body;
    assert_eq!(back["employees"], json!(42));
    assert_eq!(back["phone"], json!("13900139000"));
    let memo_back = server
        .get(&format!("/api/data/memo/{}", memo["id"]))
        .await
        .body;
    assert_eq!(memo_back["body"], json!("备忘"));
}

#[tokio::test(flavor = "multi_thread")]
async fn renames_and_widenings_keep_data() {
    let server = TestServer::start(base()).await;
    let customer = server
        .create(
            "customer",
            json!({"name": "改名", "employees": 7, "phone": "021-1234"}),
        )
        .await;
    let id = customer["id"].as_i64().unwrap();
    let package = json!({"format": 1, "entities": [
        {"key": "client", "renamed_from": "customer", "title_field": "company", "fields": [
            {"key": "company", "renamed_from": "name", "type": "text", "required": true},
            {"key": "employees", "type": "decimal", "scale": 1},
            {"key": "phone", "type": "long_text"}
        ]}
    ]});
    let applied = server.put("/api/meta", package.clone()).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let ops: Vec<&str> = applied.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        vec![
            "rename_table",
            "rename_index",
            "rename_index",
            "rename_column",
            "convert_column"
        ]
    );
    let record = server.get(&format!("/api/data/client/{id}")).await.body;
    assert_eq!(record["company"], json!("改名"));
    assert_eq!(record["employees"], json!(7));
    assert_eq!(record["phone"], json!("021-1234"));
    let decimal = server
        .patch(
            &format!("/api/data/client/{id}"),
            json!({"employees": 7.5}),
            None,
        )
        .await;
    assert_eq!(decimal.body["employees"], json!(7.5));
    // Narrowing back is refused.
    let mut narrowed = package.clone();
    narrowed["entities"][0]["fields"][1] = json!({"key": "employees", "type": "integer"});
    let refused = server.put("/api/meta", narrowed).await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.body["error"]["details"][0]["path"],
        json!("entities[0].fields[1].type")
    );
    let mut smaller_scale = package;
    smaller_scale["entities"][0]["fields"][1] =
        json!({"key": "employees", "type": "decimal", "scale": 0});
    let refused = server.put("/api/meta", smaller_scale).await;
    assert_eq!(
        refused.body["error"]["details"][0]["path"],
        json!("entities[0].fields[1].scale")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_rolls_back_the_whole_publish() {
    let server = TestServer::start(base()).await;
    server.create("customer", json!({"name": "同名"})).await;
    server.create("customer", json!({"name": "同名"})).await;
    let before = snapshot(&server).await;
    let mut package = base();
    package["entities"][0]["fields"][0]["unique"] = json!(true);
    package["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "city", "type": "text"}));
    package["entities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "memo", "fields": [{"key": "body", "type": "text"}]}));
    let reply = server.put("/api/meta", package).await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(
        reply.body["error"]["details"][0]["path"],
        json!("entities[0].fields[0]")
    );
    assert_eq!(snapshot(&server).await, before);
    // The column and table of the failed publish do not exist: publishing them again works.
    let mut ok = base();
    ok["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "city", "type": "text"}));
    assert_eq!(server.put("/api/meta", ok).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_while_queries_run_fails_no_request() {
    let server = TestServer::start(base()).await;
    for i in 0..20 {
        server
            .create("customer", json!({"name": format!("q{i}"), "employees": i}))
            .await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        let (base_url, token, client) = (
            server.base.clone(),
            server.token.clone(),
            server.client.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut done = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let reply = client
                    .post(format!("{base_url}/api/data/customer/query"))
                    .bearer_auth(&token)
                    .json(&json!({"sort": ["-employees"], "limit": 50}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    reply.status(),
                    200,
                    "a query failed during publish: {}",
                    reply.text().await.unwrap()
                );
                let body: Value = reply.json().await.unwrap();
                assert_eq!(body["items"].as_array().unwrap().len(), 20);
                done += 1;
            }
            done
        }));
    }
    let mut package = base();
    for round in 0..6 {
        let key = format!("extra{round}");
        package["entities"][0]["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": key, "type": "text", "indexed": true}));
        assert_eq!(server.put("/api/meta", package.clone()).await.status, 200);
        // Archive the previous extra field, so columns also disappear under the readers.
        if round > 0 {
            package["entities"][0]["fields"]
                .as_array_mut()
                .unwrap()
                .retain(|f| f["key"] != format!("extra{}", round - 1));
            assert_eq!(server.put("/api/meta", package.clone()).await.status, 200);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wide_entity_with_500_fields_applies_writes_and_queries() {
    let types = [
        "text",
        "integer",
        "decimal",
        "boolean",
        "date",
        "long_text",
        "datetime",
        "email",
    ];
    let fields: Vec<Value> = (0..500)
        .map(|i| {
            let field_type = types[i % types.len()];
            json!({"key": format!("f{i:03}"), "type": field_type, "indexed": i % 100 == 0})
        })
        .collect();
    let package = json!({"format": 1, "entities": [{"key": "wide", "fields": fields}]});
    let server = TestServer::start(package).await;
    let mut record = serde_json::Map::new();
    for i in 0..500 {
        let value = match types[i % types.len()] {
            "text" | "long_text" => json!(format!("值{i}")),
            "integer" => json!(i),
            "decimal" => json!(format!("{i}.25")),
            "boolean" => json!(i % 3 == 0),
            "date" => json!("2024-05-06"),
            "datetime" => json!("2024-05-06T07:08:09.000Z"),
            _ => json!(format!("u{i}@example.com")),
        };
        record.insert(format!("f{i:03}"), value);
    }
    let created = server.create("wide", Value::Object(record.clone())).await;
    for (key, value) in &record {
        if key.starts_with("f")
            && types[key[1..].parse::<usize>().unwrap() % types.len()] == "decimal"
        {
            assert_eq!(created[key].to_string(), value.as_str().unwrap(), "{key}");
        } else {
            assert_eq!(&created[key], value, "{key}");
        }
    }
    let found = server
        .post(
            "/api/data/wide/query",
            json!({"filter": {"field": "f001", "op": "eq", "value": 1}, "sort": ["-f499"]}),
        )
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_and_form_models_follow_the_metadata() {
    let mut package = with_field(
        json!({"key": "category", "label": "类别", "type": "select", "options": [{"value": "a", "label": "甲"}]}),
    );
    package["entities"][0]["layout"] =
        json!({"sections": [{"label": "基本信息", "columns": 2, "fields": ["name", "category"]}]});
    let server = TestServer::start(package).await;
    let schema = server.get("/api/meta/entities/customer/schema").await.body;
    assert_eq!(schema["properties"]["category"]["enum"], json!(["a", null]));
    assert_eq!(schema["properties"]["id"]["readOnly"], json!(true));
    let form = server.get("/api/meta/entities/customer/form").await.body;
    assert_eq!(form["sections"][0]["label"], json!("基本信息"));
    assert_eq!(form["sections"][0]["columns"], json!(2));
    let keys: Vec<&str> = form["sections"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["name", "category"]);
    assert_eq!(
        form["sections"][0]["fields"][1]["options"][0]["label"],
        json!("甲")
    );
    assert_eq!(form["sections"][0]["fields"][0]["editable"], json!(true));
    assert_eq!(
        server.get("/api/meta/entities/nothing/form").await.status,
        404
    );

    let document = server.get("/api/openapi.json").await.body;
    assert!(document["paths"]["/data/customer"]["post"].is_object());
    assert_eq!(
        document["components"]["schemas"]["customer_record"]["properties"]["category"]["nullable"],
        json!(true)
    );
    let anonymous = server
        .send(reqwest::Method::GET, "/api/openapi.json", None, None, &[])
        .await
        .body;
    assert!(
        anonymous["paths"]["/data/customer"].is_null(),
        "tenant entities only for that tenant"
    );
    assert!(anonymous["paths"]["/auth/login"].is_object());
}

/// Every operation of the OpenAPI document, the tenant's entity paths too, declares
/// the error answers in the contract's shape, and a refusal the framework makes (a
/// missing content type: 415) is among them (found by schemathesis: undocumented
/// 400s, 404s and 415s).
#[tokio::test(flavor = "multi_thread")]
async fn openapi_declares_every_error_answer() {
    let server = TestServer::start(base()).await;
    let document = server.get("/api/openapi.json").await.body;
    let error = &document["components"]["schemas"]["Error"];
    assert_eq!(error["required"], json!(["error"]), "{error}");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/data/customer"));
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = &operation["responses"];
            for status in [
                "400", "401", "403", "404", "409", "413", "415", "422", "429", "500",
            ] {
                let content = &responses[status]["content"]["application/json; charset=utf-8"];
                assert_eq!(
                    content["schema"]["$ref"],
                    json!("#/components/schemas/Error"),
                    "{method} {path} declares {status}"
                );
            }
            assert!(responses["429"]["headers"]["Retry-After"].is_object());
        }
    }

    let refused = server
        .send(
            reqwest::Method::POST,
            "/api/data/customer",
            None,
            Some(&server.token),
            &[],
        )
        .await;
    assert_eq!(refused.status, 415, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["code"],
        json!("unsupported_media_type")
    );
    let unknown = server.get("/api/data/nothing/1").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], json!("not_found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_publish() {
    let server = TestServer::start(base()).await;
    let created = server
        .post(
            "/api/users",
            json!({"username": "sales1", "display_name": "销售一", "password": "sales password"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = server.login("sales1", "sales password").await;
    let refused = server
        .send(
            reqwest::Method::PUT,
            "/api/meta",
            Some(base()),
            Some(&token),
            &[],
        )
        .await;
    assert_eq!(refused.status, 403);
    let weak = server
        .post(
            "/api/users",
            json!({"username": "weak", "password": "short"}),
        )
        .await;
    assert_eq!(weak.status, 422);
    let taken = server
        .post(
            "/api/users",
            json!({"username": "sales1", "password": "another password"}),
        )
        .await;
    assert_eq!(taken.status, 409);
}

/// Names of the indexes on a tenant table, read from the database itself.
async fn index_names(server: &TestServer, table: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &server.tenant.db;
    let conn = db.conn();
    let statement = match db.schema() {
        Some(schema) => Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname NOT LIKE '%pkey%'",
            [schema.into(), table.into()],
        ),
        None => Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            [table.into()],
        ),
    };
    let mut names: Vec<String> = conn
        .query_all_raw(statement)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect();
    names.sort();
    names
}

fn ops(reply: &common::Reply) -> Vec<String> {
    reply.body["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {:?}", reply.body))
        .iter()
        .map(|s| s["op"].as_str().unwrap().to_string())
        .collect()
}

fn accounts(key: &str, renamed_from: Option<&str>) -> Value {
    let mut entity = json!({"key": key, "title_field": "name", "fields": [
        {"key": "name", "type": "text", "required": true, "unique": true},
        {"key": "region", "type": "text", "indexed": true}
    ], "pipeline": {"stages": [{"key": "new"}, {"key": "won"}]},
       "pool": {"reclaim_after_days": 30}});
    if let Some(from) = renamed_from {
        entity["renamed_from"] = json!(from);
    }
    entity
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_entities_take_their_index_names_along() {
    let server =
        TestServer::start(json!({"format": 1, "entities": [accounts("customer", None)]})).await;
    server
        .create("customer", json!({"name": "甲", "region": "south"}))
        .await;
    let renamed = json!({"format": 1, "entities": [accounts("client", Some("customer"))]});
    let applied = server.put("/api/meta", renamed.clone()).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert_eq!(
        ops(&applied),
        [
            "rename_table",
            "rename_index",
            "rename_index",
            "rename_index",
            "rename_index",
            "rename_index",
            "rename_index",
            "rename_index"
        ]
    );
    assert_eq!(
        index_names(&server, "e_client").await,
        [
            "ix_client__owner_last_contact",
            "ix_client_created_at",
            "ix_client_last_contact_at",
            "ix_client_owner",
            "ix_client_region",
            "ix_client_stage",
            "ux_client_name"
        ]
    );
    // The unique index still works under its new name.
    let duplicate = server.post("/api/data/client", json!({"name": "甲"})).await;
    assert_eq!(duplicate.status, 422, "{:?}", duplicate.body);

    // Switching the options off drops the indexes by their new names.
    let mut plain = renamed.clone();
    // (renamed_from goes too: the old key is about to be used again.)
    plain["entities"][0]
        .as_object_mut()
        .unwrap()
        .remove("renamed_from");
    plain["entities"][0]["fields"][0]["unique"] = json!(false);
    plain["entities"][0]["fields"][1]["indexed"] = json!(false);
    let applied = server.put("/api/meta", plain.clone()).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert_eq!(ops(&applied), ["drop_index", "drop_index"]);

    // The old key is free again, indexes included.
    let mut both = plain;
    both["entities"]
        .as_array_mut()
        .unwrap()
        .push(accounts("customer", None));
    let applied = server.put("/api/meta", both).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert_eq!(
        index_names(&server, "e_customer").await,
        [
            "ix_customer__owner_last_contact",
            "ix_customer_created_at",
            "ix_customer_last_contact_at",
            "ix_customer_owner",
            "ix_customer_region",
            "ix_customer_stage",
            "ux_customer_name"
        ]
    );
    assert_eq!(
        index_names(&server, "e_client").await,
        [
            "ix_client__owner_last_contact",
            "ix_client_created_at",
            "ix_client_last_contact_at",
            "ix_client_owner",
            "ix_client_stage"
        ]
    );
    server.create("customer", json!({"name": "甲"})).await;
    server.create("client", json!({"name": "甲"})).await;

    // Archiving and restoring a table keeps its indexes as they were.
    let only_client = server.get("/api/meta").await.body["entities"][0].clone();
    let archived = server
        .put(
            "/api/meta",
            json!({"format": 1, "entities": [only_client.clone()]}),
        )
        .await;
    assert_eq!(archived.status, 200, "{:?}", archived.body);
    let restored = server
        .put(
            "/api/meta",
            json!({"format": 1, "entities": [only_client, accounts("customer", None)]}),
        )
        .await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(ops(&restored), ["restore_table"]);
    assert_eq!(
        index_names(&server, "e_customer").await,
        [
            "ix_customer__owner_last_contact",
            "ix_customer_created_at",
            "ix_customer_last_contact_at",
            "ix_customer_owner",
            "ix_customer_region",
            "ix_customer_stage",
            "ux_customer_name"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renaming_onto_an_archived_key_is_refused() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        accounts("customer", None), accounts("client", None)]}))
    .await;
    let before_archive = server
        .put(
            "/api/meta",
            json!({"format": 1, "entities": [accounts("client", None)]}),
        )
        .await;
    assert_eq!(before_archive.status, 200, "{:?}", before_archive.body);
    let before = server.get("/api/meta").await.body;
    let reply = server
        .put(
            "/api/meta",
            json!({"format": 1, "entities": [accounts("customer", Some("client"))]}),
        )
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(
        reply.body["error"]["details"][0]["path"],
        json!("entities[0].key")
    );
    assert!(
        reply.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("archived entity"),
        "{:?}",
        reply.body
    );
    assert_eq!(server.get("/api/meta").await.body, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_numbers_go_on_after_renames_and_restores() {
    let quote = |key: &str, from: Option<&str>, number: Option<(&str, Option<&str>)>| {
        let mut fields = vec![json!({"key": "title", "type": "text"})];
        if let Some((field, field_from)) = number {
            let mut f = json!({"key": field, "type": "auto_number", "format": "Q{000}"});
            if let Some(field_from) = field_from {
                f["renamed_from"] = json!(field_from);
            }
            fields.push(f);
        }
        let mut entity = json!({"key": key, "fields": fields});
        if let Some(from) = from {
            entity["renamed_from"] = json!(from);
        }
        json!({"format": 1, "entities": [entity]})
    };
    let server = TestServer::start(quote("quote", None, Some(("code", None)))).await;
    assert_eq!(
        server.create("quote", json!({})).await["code"],
        json!("Q001")
    );
    assert_eq!(
        server.create("quote", json!({})).await["code"],
        json!("Q002")
    );

    // Entity and field renamed in one publish: numbering goes on.
    let applied = server
        .put(
            "/api/meta",
            quote("offer", Some("quote"), Some(("number", Some("code")))),
        )
        .await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert!(
        ops(&applied).contains(&"rename_sequence".to_string()),
        "{:?}",
        applied.body
    );
    assert_eq!(
        server.create("offer", json!({})).await["number"],
        json!("Q003")
    );

    // Archived, the entity renamed meanwhile, then restored: the counter comes back too.
    let archived = server.put("/api/meta", quote("offer", None, None)).await;
    assert_eq!(archived.status, 200, "{:?}", archived.body);
    server.create("offer", json!({})).await;
    let renamed = server
        .put("/api/meta", quote("deal", Some("offer"), None))
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let restored = server
        .put(
            "/api/meta",
            quote("deal", Some("offer"), Some(("number", None))),
        )
        .await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(
        server.create("deal", json!({})).await["number"],
        json!("Q004")
    );
    assert_eq!(
        server.create("deal", json!({})).await["number"],
        json!("Q005")
    );

    // A new entity under the old key starts its own numbering.
    let mut both = quote("deal", Some("offer"), Some(("number", None)));
    both["entities"]
        .as_array_mut()
        .unwrap()
        .push(quote("quote", None, Some(("code", None)))["entities"][0].clone());
    assert_eq!(server.put("/api/meta", both).await.status, 200);
    assert_eq!(
        server.create("quote", json!({})).await["code"],
        json!("Q001")
    );
    assert_eq!(
        server.create("deal", json!({})).await["number"],
        json!("Q006")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn widenings_that_would_overflow_are_refused_and_change_nothing() {
    let package = json!({"format": 1, "entities": [{"key": "ledger", "fields": [
        {"key": "name", "type": "text"},
        {"key": "units", "type": "integer"},
        {"key": "amount", "type": "decimal", "scale": 0}
    ]}]});
    let server = TestServer::start(package.clone()).await;
    let big = server
        .create(
            "ledger",
            json!({"name": "big", "units": 100_000_000_000_000_000i64, "amount": "-1000000000000000"}),
        )
        .await;
    server
        .create("ledger", json!({"name": "small", "units": 5, "amount": 7}))
        .await;
    let records = || async {
        server
            .post("/api/data/ledger/query", json!({"sort": ["id"]}))
            .await
    };
    let meta = server.get("/api/meta").await.body;
    let before = records().await;
    assert_eq!(before.status, 200);

    let widen = |units: Value, amount: Value| {
        let mut p = package.clone();
        p["entities"][0]["fields"][1] = units;
        p["entities"][0]["fields"][2] = amount;
        p
    };
    let cases = [
        (
            widen(
                json!({"key": "units", "type": "decimal", "scale": 2}),
                json!({"key": "amount", "type": "decimal", "scale": 0}),
            ),
            "entities[0].fields[1].type",
            "100000000000000000",
        ),
        (
            widen(
                json!({"key": "units", "type": "integer"}),
                json!({"key": "amount", "type": "decimal", "scale": 4}),
            ),
            "entities[0].fields[2].scale",
            "-1000000000000000",
        ),
        // Renamed and widened in one publish: checked where the values are now.
        (
            widen(
                json!({"key": "quantity", "renamed_from": "units", "type": "decimal", "scale": 3}),
                json!({"key": "amount", "type": "decimal", "scale": 0}),
            ),
            "entities[0].fields[1].type",
            "100000000000000000",
        ),
    ];
    for dry_run in [true, false] {
        for (package, path, largest) in &cases {
            let url = if dry_run {
                "/api/meta?dry_run=true"
            } else {
                "/api/meta"
            };
            let reply = server.put(url, package.clone()).await;
            assert_eq!(reply.status, 422, "{path}: {:?}", reply.body);
            let problem = &reply.body["error"]["details"][0];
            assert_eq!(problem["path"], json!(path), "{:?}", reply.body);
            let message = problem["message"].as_str().unwrap();
            assert!(message.contains(largest), "{message}");
            assert_eq!(server.get("/api/meta").await.body, meta);
            assert_eq!(records().await.body, before.body, "{path} changed records");
        }
    }

    // Once the big values are smaller, the same widenings go through.
    let id = big["id"].as_i64().unwrap();
    let patched = server
        .patch(
            &format!("/api/data/ledger/{id}"),
            json!({"units": 12, "amount": -3}),
            None,
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let applied = server
        .put(
            "/api/meta",
            widen(
                json!({"key": "units", "type": "decimal", "scale": 2}),
                json!({"key": "amount", "type": "decimal", "scale": 4}),
            ),
        )
        .await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let after = records().await.body;
    assert_eq!(after["items"][0]["units"], json!(12));
    assert_eq!(after["items"][0]["amount"], json!(-3));
    assert_eq!(after["items"][1]["units"], json!(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_added_later_gets_its_stage_index() {
    let plain = json!({"format": 1, "entities": [{"key": "lead", "fields": [{"key": "name", "type": "text"}]}]});
    let server = TestServer::start(plain.clone()).await;
    server.create("lead", json!({"name": "甲"})).await;
    let mut staged = plain.clone();
    staged["entities"][0]["pipeline"] = json!({"stages": [{"key": "open"}, {"key": "closed"}]});

    let added = server.put("/api/meta", staged.clone()).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(ops(&added), ["add_column", "add_index"]);
    assert!(
        index_names(&server, "e_lead")
            .await
            .contains(&"ix_lead_stage".to_string())
    );

    let removed = server.put("/api/meta", plain.clone()).await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert_eq!(ops(&removed), ["drop_index", "archive_column"]);
    assert!(
        !index_names(&server, "e_lead")
            .await
            .contains(&"ix_lead_stage".to_string())
    );

    let restored = server.put("/api/meta", staged.clone()).await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(ops(&restored), ["restore_column", "add_index"]);
    assert!(
        index_names(&server, "e_lead")
            .await
            .contains(&"ix_lead_stage".to_string())
    );
    let lead = server.create("lead", json!({"name": "乙"})).await;
    assert_eq!(lead["stage"], json!("open"));

    // A table created with its pipeline has the same index, archived and restored alike.
    let mut both = staged.clone();
    both["entities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "deal", "fields": [], "pipeline": {"stages": [{"key": "a"}]}}));
    assert_eq!(server.put("/api/meta", both.clone()).await.status, 200);
    assert!(
        index_names(&server, "e_deal")
            .await
            .contains(&"ix_deal_stage".to_string())
    );
    let mut no_pipeline = both.clone();
    no_pipeline["entities"][1]
        .as_object_mut()
        .unwrap()
        .remove("pipeline");
    let removed = server.put("/api/meta", no_pipeline).await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert!(
        !index_names(&server, "e_deal")
            .await
            .contains(&"ix_deal_stage".to_string())
    );
    assert_eq!(server.put("/api/meta", both).await.status, 200);
    assert!(
        index_names(&server, "e_deal")
            .await
            .contains(&"ix_deal_stage".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_refuses_what_would_only_fail_at_run_time() {
    let server = TestServer::start(base()).await;
    server.create("customer", json!({"name": "甲"})).await;
    let before = snapshot(&server).await;
    let with_pipeline = |transitions: Value| {
        let mut package = base();
        package["entities"][0]["pipeline"] =
            json!({"stages": [{"key": "open"}, {"key": "won"}], "transitions": transitions});
        package
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        // Field keys that are function names cannot be read by expressions.
        (
            with_field(json!({"key": "year", "type": "integer"})),
            "entities[0].fields[3].key",
            "expression function",
        ),
        (
            with_field(json!({"key": "round", "type": "decimal"})),
            "entities[0].fields[3].key",
            "expression function",
        ),
        // Unknown filters and tests are found at publish.
        (
            with_field(json!({"key": "short", "type": "text", "formula": "name|nosuchfilter"})),
            "entities[0].fields[3].formula",
            "unknown filter \"nosuchfilter\"",
        ),
        (
            with_field(json!({"key": "note", "type": "text", "visible_if": "name is nosuchtest"})),
            "entities[0].fields[3].visible_if",
            "unknown test \"nosuchtest\"",
        ),
        (
            with_field(json!({"key": "note", "type": "text", "default": "name|nope"})),
            "entities[0].fields[3].default",
            "unknown filter \"nope\"",
        ),
        // A read-only required field without a default would fail every create.
        (
            with_field(
                json!({"key": "vip", "type": "boolean", "read_only": true, "required": true}),
            ),
            "entities[0].fields[3].required",
            "needs a default",
        ),
        (
            {
                let mut package = base();
                package["reports"] = json!([{"key": "r", "entity": "customer", "limit": 0}]);
                package
            },
            "reports[0].limit",
            "at least 1",
        ),
        (
            with_pipeline(
                json!([{"from": "open", "to": "won"}, {"from": "open", "to": "won", "roles": []}]),
            ),
            "entities[0].pipeline.transitions[1]",
            "duplicate transition",
        ),
        // Defaults whose value does not fit the field are refused, not every create.
        (
            with_field(json!({"key": "start_on", "type": "date", "default": "2024-02-30"})),
            "entities[0].fields[3].default",
            "date",
        ),
        (
            with_field(json!({"key": "code", "type": "text", "default": "2024-01-01"})),
            "entities[0].fields[3].default",
            "2022",
        ),
        (
            with_field(json!({"key": "at", "type": "datetime", "default": "today()"})),
            "entities[0].fields[3].default",
            "datetime",
        ),
        (
            with_field(json!({"key": "at", "type": "datetime", "default": "2024-01-01"})),
            "entities[0].fields[3].default",
            "RFC 3339",
        ),
        (
            with_field(json!({"key": "price", "type": "decimal", "scale": 2, "default": 1.005})),
            "entities[0].fields[3].default",
            "more than 2 digits",
        ),
        (
            with_field(json!({"key": "price", "type": "decimal", "scale": 2, "default": "1.005"})),
            "entities[0].fields[3].default",
            "more than 2 digits",
        ),
        (
            with_field(json!({"key": "count", "type": "integer", "default": "'many'"})),
            "entities[0].fields[3].default",
            "whole number",
        ),
        (
            with_field(
                json!({"key": "kind", "type": "select", "options": [{"value": "a"}], "default": "'b'"}),
            ),
            "entities[0].fields[3].default",
            "one of a",
        ),
        (
            with_field(json!({"key": "ratio", "type": "integer", "default": "1 / 0"})),
            "entities[0].fields[3].default",
            "could not be computed",
        ),
        (
            with_field(json!({"key": "city", "type": "text", "default": "未分类"})),
            "entities[0].fields[3].default",
            "'未分类'",
        ),
    ];
    for (package, path, fragment) in cases {
        let reply = server.put("/api/meta", package.clone()).await;
        assert_eq!(reply.status, 422, "{package}: {:?}", reply.body);
        let details = reply.body["error"]["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["path"] == json!(path)
                    && d["message"].as_str().unwrap().contains(fragment)),
            "expected {fragment:?} at {path:?}, got {details:?}"
        );
        assert_eq!(
            snapshot(&server).await,
            before,
            "{package} changed something"
        );
    }
    // What a real admin writes still publishes: a literal date, an RFC 3339 datetime,
    // an exact decimal, today() on a date, an expression reading fields.
    let fine = {
        let mut package = base();
        let fields = package["entities"][0]["fields"].as_array_mut().unwrap();
        fields.push(json!({"key": "start_on", "type": "date", "default": "2024-01-01"}));
        fields.push(json!({"key": "due_on", "type": "date", "default": "add_days(today(), 30)"}));
        fields
            .push(json!({"key": "at", "type": "datetime", "default": "2024-01-01T09:00:00+08:00"}));
        fields.push(json!({"key": "price", "type": "decimal", "default": "12.50"}));
        fields.push(json!({"key": "city", "type": "text", "default": "'未分类'"}));
        fields.push(json!({"key": "size", "type": "integer", "default": "employees"}));
        fields.push(json!({"key": "vip", "type": "boolean", "read_only": true, "required": true, "default": false}));
        fields.push(json!({"key": "short", "type": "text", "formula": "name|trim|upper"}));
        package
    };
    let reply = server.put("/api/meta", fine).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_added_later_gets_its_last_contact_indexes() {
    let plain = json!({"format": 1, "entities": [{"key": "lead", "fields": [{"key": "name", "type": "text"}]}]});
    let server = TestServer::start(plain.clone()).await;
    server.create("lead", json!({"name": "甲"})).await;
    let mut pooled = plain.clone();
    pooled["entities"][0]["pool"] = json!({"reclaim_after_days": 30});
    let contact_indexes = ["ix_lead__owner_last_contact", "ix_lead_last_contact_at"];
    let has_contact_indexes = || async {
        let names = index_names(&server, "e_lead").await;
        contact_indexes.map(|index| names.contains(&index.to_string()))
    };

    let added = server.put("/api/meta", pooled.clone()).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(ops(&added), ["add_column", "add_index", "add_index"]);
    assert_eq!(has_contact_indexes().await, [true, true]);

    let removed = server.put("/api/meta", plain.clone()).await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert_eq!(
        ops(&removed),
        ["drop_index", "drop_index", "archive_column"]
    );
    assert_eq!(has_contact_indexes().await, [false, false]);

    let restored = server.put("/api/meta", pooled).await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(ops(&restored), ["restore_column", "add_index", "add_index"]);
    assert_eq!(has_contact_indexes().await, [true, true]);
    let lead = server.create("lead", json!({"name": "乙"})).await;
    assert!(lead["last_contact_at"].is_null(), "{lead}");
}
