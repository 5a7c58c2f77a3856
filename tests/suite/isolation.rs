//! Tenant isolation: two tenants with identically named entities and the same record
//! ids; every route of the OpenAPI document, called with one tenant's token, must
//! neither reveal nor change the other tenant's data.

use crate::common;

use common::TestServer;
use metacrm::tenant::NewTenant;
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "ONLY_IN_B";

fn package() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "phone", "type": "phone", "searchable": true}
        ], "pipeline": {"stages": [{"key": "new"}, {"key": "won", "won": true}]}},
        {"key": "contact", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "customer", "type": "reference", "target": "customer"}
        ]}
    ], "roles": [{"key": "sales", "permissions": [
        {"entity": "customer", "actions": ["create", "read", "update", "delete", "assign", "export", "import"], "scope": "all"}]}]})
}

/// A request body that gets past JSON parsing for each kind of operation.
fn body_for(method: &Method, path: &str) -> Option<Value> {
    match *method {
        Method::GET | Method::DELETE => None,
        _ if path.ends_with("/query") => {
            Some(json!({"filter": {"field": "id", "op": "in", "value": [1, 2, 3]}}))
        }
        _ if path.ends_with("/bulk/assign") => Some(json!({"ids": [1, 2, 3], "owner": 1})),
        _ if path.ends_with("/stage") => Some(json!({"to": "won"})),
        _ if path.contains("/users") => Some(json!({"display_name": "hijack", "roles": []})),
        _ if path.contains("/departments") => Some(json!({"name": "hijack"})),
        _ => Some(json!({"name": "hijack"})),
    }
}

/// Every record of tenant B, read through the module (not HTTP), for before/after.
async fn snapshot(server: &TestServer, key: &str) -> Value {
    let tenant = server.tenants.get(key).await.unwrap();
    let catalog = tenant.catalog().await;
    let mut all = serde_json::Map::new();
    for entity in ["customer", "contact"] {
        let entity_catalog = catalog.entity(entity).unwrap();
        let page = metacrm::store::records::Records::new(&tenant.db, &catalog, entity_catalog)
            .query(
                &serde_json::from_value(json!({"limit": 1000})).unwrap(),
                &metacrm::auth::Access::full(1),
            )
            .await
            .unwrap();
        all.insert(entity.into(), Value::Array(page.items));
    }
    let users = metacrm::auth::users::list(&tenant.db).await.unwrap();
    all.insert("users".into(), serde_json::to_value(users).unwrap());
    let departments = metacrm::auth::org::list(&tenant.db).await.unwrap();
    all.insert(
        "departments".into(),
        serde_json::to_value(departments).unwrap(),
    );
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_route_reaches_another_tenants_data() {
    let server = TestServer::start(package()).await;
    // Tenant B: same entities, its own admin password, more records than A.
    let b_key = common::unique_key("b");
    let b = server
        .tenants
        .create(&NewTenant {
            key: &b_key,
            name: "另一家公司",
            admin: "admin",
            password: "b tenant password",
        })
        .await
        .unwrap();
    b.apply(&package(), None, false).await.unwrap();
    let b_admin = metacrm::auth::users::find_by_username(&b.db, "admin")
        .await
        .unwrap()
        .unwrap();
    {
        let catalog = b.catalog().await;
        let store = metacrm::store::records::Records::new(
            &b.db,
            &catalog,
            catalog.entity("customer").unwrap(),
        );
        for index in 0..3 {
            store
                .create(
                    &json!({"name": format!("{SECRET}_{index}"), "phone": "13800138000"}),
                    &metacrm::auth::Access::full(b_admin.id),
                )
                .await
                .unwrap();
        }
    }
    b.create_department(
        &serde_json::from_value(json!({"name": format!("{SECRET}_dept")})).unwrap(),
    )
    .await
    .unwrap();
    // Tenant A has one customer (id 1) and a non-admin user with broad rights.
    server.create("customer", json!({"name": "A公司"})).await;
    let (_, staff) = server.user("staff", &["sales"], None).await;
    let before = snapshot(&server, &b_key).await;

    let document = server.get("/api/openapi.json").await.body;
    let paths = document["paths"].as_object().expect("paths");
    assert!(
        paths.len() >= 10,
        "the document lists the routes: {paths:?}"
    );
    let mut calls = 0;
    for token in [server.token.clone(), staff] {
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                let method: Method = method.to_uppercase().parse().unwrap();
                if path.contains("logout") || (path.ends_with("/meta") && method == Method::PUT) {
                    continue;
                }
                for id in ["1", "2", "3"] {
                    let concrete = path
                        .replace("{entity}", "customer")
                        .replace("{id}", id)
                        .replace("{key}", "x");
                    let concrete = if concrete.starts_with("/api") {
                        concrete
                    } else {
                        format!("/api{concrete}")
                    };
                    let reply = server
                        .call(
                            &token,
                            method.clone(),
                            &concrete,
                            body_for(&method, &concrete),
                        )
                        .await;
                    calls += 1;
                    assert!(
                        reply.status < 500,
                        "{method} {concrete}: {} {:?}",
                        reply.status,
                        reply.body
                    );
                    let text = reply.body.to_string();
                    assert!(
                        !text.contains(SECRET),
                        "{method} {concrete} leaked tenant B: {text}"
                    );
                }
            }
        }
    }
    assert!(calls > 30, "{calls} calls");
    assert_eq!(
        snapshot(&server, &b_key).await,
        before,
        "tenant B is unchanged"
    );
    // A's token cannot log into B, and B's credentials are not A's.
    let cross = server
        .send(
            Method::POST,
            "/api/auth/login",
            Some(json!({"tenant": b_key, "username": "admin", "password": common::PASSWORD})),
            None,
            &[],
        )
        .await;
    assert_eq!(cross.status, 401);
    // Counting through A's API sees A's records only.
    let count = server
        .post("/api/data/customer/query", json!({"limit": 1000}))
        .await;
    let names: Vec<&str> = count.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(SECRET)), "{names:?}");
}
