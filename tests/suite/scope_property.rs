//! Property: whatever filter and sort a scoped user sends, a query never returns a
//! record outside their scope nor a field masked from them; a filter or sort that
//! names a masked field is refused.

use crate::common;

use std::collections::BTreeSet;

use common::TestServer;
use metacrm::auth::Context;
use metacrm::meta::Action;
use metacrm::store::records::{QueryRequest, Records};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "region", "type": "select", "options": [{"value": "east"}, {"value": "west"}]},
            {"key": "revenue", "type": "decimal", "scale": 2},
            {"key": "secret", "type": "text"}
        ]}
    ], "roles": [
        {"key": "rep", "permissions": [
            {"entity": "customer", "actions": ["read"], "scope": "subordinates", "deny_read": ["secret"]}]}
    ]})
}

const FIELDS: [&str; 8] = [
    "name",
    "region",
    "revenue",
    "secret",
    "owner",
    "id",
    "created_at",
    "stage",
];

fn leaf() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(FIELDS.to_vec());
    let op = prop::sample::select(vec![
        "eq",
        "ne",
        "lt",
        "lte",
        "gt",
        "gte",
        "in",
        "nin",
        "contains",
        "starts_with",
        "is_null",
        "between",
    ]);
    let scalar = prop_oneof![
        Just(json!("east")),
        Just(json!("客户")),
        Just(json!("秘密")),
        (0i64..2000).prop_map(|n| json!(n)),
        Just(json!({"user": "me"})),
        Just(json!(true)),
        Just(json!(null)),
    ];
    let value = prop_oneof![
        scalar.clone(),
        prop::collection::vec(scalar, 0..3).prop_map(Value::Array),
    ];
    (field, op, value)
        .prop_map(|(field, op, value)| json!({"field": field, "op": op, "value": value}))
}

fn filter() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"and": c})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"or": c})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

fn request() -> impl Strategy<Value = Value> {
    let sort = prop::collection::vec(
        prop::sample::select(vec![
            "name", "-revenue", "region", "-secret", "owner", "-id",
        ]),
        0..3,
    );
    (prop::option::of(filter()), sort, 1u64..40).prop_map(|(filter, sort, limit)| {
        let mut request = json!({"sort": sort, "limit": limit});
        if let Some(filter) = filter {
            request["filter"] = filter;
        }
        request
    })
}

/// Whether a request filters or sorts on the masked field.
fn names_secret(request: &Value) -> bool {
    let in_filter = request
        .get("filter")
        .is_some_and(|f| f.to_string().contains(r#""field":"secret""#));
    let in_sort = request["sort"].as_array().is_some_and(|keys| {
        keys.iter()
            .any(|k| k.as_str().map(|k| k.trim_start_matches('-')) == Some("secret"))
    });
    in_filter || in_sort
}

#[test]
fn random_queries_stay_within_scope_and_masks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, context, allowed) = runtime.block_on(async {
        let server = TestServer::start(package()).await;
        let team = server.department("华东组", None, None).await;
        let other = server.department("华西组", None, None).await;
        let (rep, _) = server.user("rep", &["rep"], Some(team)).await;
        let (peer, _) = server.user("peer", &["rep"], Some(team)).await;
        let (outsider, _) = server.user("outsider", &["rep"], Some(other)).await;
        let admin = server.get("/api/auth/me").await.body["id"].as_i64().unwrap();
        for index in 0..40i64 {
            let owner = [rep, peer, outsider, admin][index as usize % 4];
            server
                .create(
                    "customer",
                    json!({"name": format!("客户{index}"), "region": if index % 3 == 0 { "east" } else { "west" },
                           "revenue": index * 50, "secret": format!("秘密{index}"), "owner": owner}),
                )
                .await;
        }
        let user = metacrm::auth::users::get(&server.tenant.db, rep).await.unwrap();
        let context = Context::new(server.tenant.clone(), user);
        (server, context, BTreeSet::from([rep, peer]))
    });
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let answered = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&request(), |request| {
            let outcome = runtime.block_on(async {
                let catalog = server.tenant.catalog().await;
                let entity = catalog.entity("customer").unwrap();
                let access = context.authorize(entity, Action::Read).await.unwrap();
                let parsed: QueryRequest = serde_json::from_value(request.clone()).unwrap();
                Records::new(&server.tenant.db, &catalog, entity)
                    .query(&parsed, &access)
                    .await
            });
            match outcome {
                Ok(page) => {
                    prop_assert!(
                        !names_secret(&request),
                        "a masked field was usable: {request}"
                    );
                    for item in &page.items {
                        let owner = item["owner"].as_i64().unwrap();
                        prop_assert!(
                            allowed.contains(&owner),
                            "owner {owner} is out of scope for {request}"
                        );
                        prop_assert!(
                            item.get("secret").is_none(),
                            "masked field returned for {request}"
                        );
                    }
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(error) => {
                    prop_assert_eq!(error.status(), 400, "{} for {}", error, request);
                }
            }
            Ok(())
        })
        .unwrap();
    let answered = answered.into_inner();
    assert!(
        answered > 20,
        "only {answered} of the random queries were valid"
    );
}
