//! Permissions over HTTP: roles compiled to Casbin, scopes as row predicates over the
//! department tree, field masks and write denies, reassignment, people and
//! departments, hardened sessions.

use crate::common;

use std::collections::BTreeMap;

use common::{PASSWORD, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "region", "type": "select", "options": [{"value": "east"}, {"value": "west"}]},
          {"key": "revenue", "type": "decimal", "scale": 2},
          {"key": "notes", "type": "long_text"}
      ]},
      {"key": "memo", "title_field": "title", "fields": [
          {"key": "title", "type": "text", "required": true}
      ]}
    ],
    "roles": [
      {"key": "sales", "label": "销售", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own", "deny_write": ["revenue"]}]},
      {"key": "dept_viewer", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "department", "deny_read": ["revenue"]}]},
      {"key": "manager", "label": "销售经理", "permissions": [
          {"entity": "customer", "actions": ["read", "update", "assign"], "scope": "subordinates"},
          {"entity": "customer", "actions": ["delete"], "scope": "own"}]},
      {"key": "finance", "label": "财务", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "all", "deny_read": ["notes"]}]},
      {"key": "general_manager", "permissions": [
          {"entity": "customer", "actions": ["read", "export"], "scope": "all"}]},
      {"key": "designer", "admin": true}
    ]})
}

/// The organisation every test here uses:
///
/// 销售部 (managed by mgr) ─┬─ 华东组 (managed by lead): east1, east2
///                          └─ 华西组: west1
/// 财务部: fin;   no department: gm, nobody, designer
struct Org {
    server: TestServer,
    ids: BTreeMap<&'static str, i64>,
    tokens: BTreeMap<&'static str, String>,
    departments: BTreeMap<&'static str, i64>,
    /// One customer per owner, by owner name.
    customers: BTreeMap<&'static str, i64>,
}

const USERS: [(&str, &[&str], Option<&str>); 9] = [
    ("mgr", &["manager"], Some("sales")),
    ("lead", &["manager", "sales"], Some("east")),
    ("east1", &["sales"], Some("east")),
    ("east2", &["sales", "dept_viewer"], Some("east")),
    ("west1", &["sales"], Some("west")),
    ("fin", &["finance"], Some("finance")),
    ("gm", &["general_manager"], None),
    ("nobody", &[], None),
    ("designer", &["designer"], None),
];

impl Org {
    async fn start() -> Org {
        let server = TestServer::start(package()).await;
        let mut departments = BTreeMap::new();
        let sales = server.department("销售部", None, None).await;
        departments.insert("sales", sales);
        departments.insert("east", server.department("华东组", Some(sales), None).await);
        departments.insert("west", server.department("华西组", Some(sales), None).await);
        departments.insert("finance", server.department("财务部", None, None).await);
        let mut ids = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for (name, roles, department) in USERS {
            let (id, token) = server
                .user(name, roles, department.map(|d| departments[d]))
                .await;
            ids.insert(name, id);
            tokens.insert(name, token);
        }
        for (department, manager) in [("sales", "mgr"), ("east", "lead")] {
            let reply = server
                .patch(
                    &format!("/api/departments/{}", departments[department]),
                    json!({"manager": ids[manager]}),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
        let mut customers = BTreeMap::new();
        for owner in ["mgr", "lead", "east1", "east2", "west1", "gm"] {
            let record = server
                .create(
                    "customer",
                    json!({"name": format!("{owner}的客户"), "region": "east",
                           "revenue": "1000.50", "notes": "内部备注", "owner": ids[owner]}),
                )
                .await;
            customers.insert(owner, record["id"].as_i64().unwrap());
        }
        Org {
            server,
            ids,
            tokens,
            departments,
            customers,
        }
    }

    async fn call(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> common::Reply {
        self.server
            .call(&self.tokens[user], method, path, body)
            .await
    }

    /// Names of the owners whose customers `user` sees in a query.
    async fn visible_owners(&self, user: &str) -> Vec<&'static str> {
        let reply = self
            .call(
                user,
                Method::POST,
                "/api/data/customer/query",
                Some(json!({"limit": 100})),
            )
            .await;
        assert_eq!(reply.status, 200, "{user}: {:?}", reply.body);
        let mut owners: Vec<&'static str> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let owner = item["owner"].as_i64().unwrap();
                *self.ids.iter().find(|(_, id)| **id == owner).unwrap().0
            })
            .collect();
        owners.sort();
        owners
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Update,
    Delete,
}

/// Who does what to whose customer, and whether it is allowed.
const MATRIX: &[(&str, Op, &str, bool)] = &[
    // sales: own only
    ("east1", Op::Read, "east1", true),
    ("east1", Op::Read, "east2", false),
    ("east1", Op::Update, "east1", true),
    ("east1", Op::Update, "east2", false),
    ("east1", Op::Delete, "east1", false),
    // sales + dept_viewer: reads the department, updates own
    ("east2", Op::Read, "east1", true),
    ("east2", Op::Read, "lead", true),
    ("east2", Op::Read, "west1", false),
    ("east2", Op::Update, "east1", false),
    // team lead: manager of 华东组 sees its members, not the peer team
    ("lead", Op::Read, "east2", true),
    ("lead", Op::Read, "west1", false),
    ("lead", Op::Update, "east1", true),
    ("lead", Op::Delete, "east1", false),
    // department head: the whole subtree
    ("mgr", Op::Read, "west1", true),
    ("mgr", Op::Read, "east1", true),
    ("mgr", Op::Read, "gm", false),
    ("mgr", Op::Update, "west1", true),
    ("mgr", Op::Delete, "mgr", true),
    ("mgr", Op::Delete, "east1", false),
    // finance and general manager: read everything, change nothing
    ("fin", Op::Read, "gm", true),
    ("fin", Op::Update, "east1", false),
    ("gm", Op::Read, "west1", true),
    ("gm", Op::Delete, "gm", false),
    // no role, or only the designer right: no records
    ("nobody", Op::Read, "east1", false),
    ("designer", Op::Read, "east1", false),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_permission_matrix_holds_on_every_cell() {
    let org = Org::start().await;
    for &(user, op, owner, allowed) in MATRIX {
        let path = format!("/api/data/customer/{}", org.customers[owner]);
        let before = org.server.get(&path).await.body;
        let reply = match op {
            Op::Read => org.call(user, Method::GET, &path, None).await,
            Op::Update => {
                org.call(user, Method::PATCH, &path, Some(json!({"region": "west"})))
                    .await
            }
            Op::Delete => org.call(user, Method::DELETE, &path, None).await,
        };
        let cell = format!("{user} {op:?} {owner}'s customer");
        if allowed {
            assert!(
                (200..300).contains(&reply.status),
                "{cell} should be allowed: {} {:?}",
                reply.status,
                reply.body
            );
        } else {
            assert!(
                reply.status == 403 || reply.status == 404,
                "{cell} should be refused: {} {:?}",
                reply.status,
                reply.body
            );
            assert!(reply.body["error"]["code"].is_string(), "{cell}");
            assert_eq!(
                org.server.get(&path).await.body,
                before,
                "{cell} changed nothing"
            );
        }
        // Put back what an allowed change did, so later cells see the same data.
        if allowed && matches!(op, Op::Update) {
            org.server
                .patch(&path, json!({"region": before["region"]}), None)
                .await;
        }
    }
    // Creating: sales may create for themselves only; finance may not create.
    let mine = org
        .call(
            "east1",
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "新客户"})),
        )
        .await;
    assert_eq!(mine.status, 201, "{:?}", mine.body);
    assert_eq!(mine.body["owner"], json!(org.ids["east1"]));
    let for_peer = org
        .call(
            "east1",
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "替同事建", "owner": org.ids["east2"]})),
        )
        .await;
    assert_eq!(for_peer.status, 403);
    assert_eq!(
        for_peer.body["error"]["details"][0]["field"],
        json!("owner")
    );
    let finance = org
        .call(
            "fin",
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(finance.status, 403);
    // An entity no role mentions is closed to everyone but administrators.
    let memo = org
        .call("mgr", Method::POST, "/api/data/memo/query", Some(json!({})))
        .await;
    assert_eq!(memo.status, 403);
    assert!(
        memo.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memo")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn field_rules_mask_reads_everywhere_and_refuse_writes_by_name() {
    let org = Org::start().await;
    let customer = org.customers["east1"];
    let path = format!("/api/data/customer/{customer}");
    // finance: notes masked in reads, queries, history, forms; filters may not name it.
    let read = org.call("fin", Method::GET, &path, None).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("notes").is_none(), "{:?}", read.body);
    assert_eq!(read.body["revenue"], json!(1000.5));
    org.server
        .patch(&path, json!({"notes": "改过的备注"}), None)
        .await;
    let history = org
        .call("fin", Method::GET, &format!("{path}/history"), None)
        .await;
    assert_eq!(history.status, 200);
    let history_text = history.body.to_string();
    assert!(!history_text.contains("备注"), "{history_text}");
    assert!(
        history_text.contains("revenue"),
        "other changes stay visible"
    );
    let listed = org
        .call(
            "fin",
            Method::POST,
            "/api/data/customer/query",
            Some(json!({})),
        )
        .await;
    assert!(!listed.body.to_string().contains("备注"));
    for probe in [
        json!({"filter": {"field": "notes", "op": "contains", "value": "备注"}}),
        json!({"sort": ["notes"]}),
    ] {
        let reply = org
            .call(
                "fin",
                Method::POST,
                "/api/data/customer/query",
                Some(probe.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{probe}: {:?}", reply.body);
    }
    let form = org
        .call("fin", Method::GET, "/api/meta/entities/customer/form", None)
        .await;
    assert_eq!(form.status, 200);
    assert!(!form.body.to_string().contains("\"notes\""));
    // sales: revenue readable but not writable — 403 naming the field, nothing changed.
    let own = format!("/api/data/customer/{customer}");
    let refused = org
        .call(
            "east1",
            Method::PATCH,
            &own,
            Some(json!({"revenue": "1", "region": "west"})),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], json!("forbidden"));
    assert_eq!(
        refused.body["error"]["details"][0]["field"],
        json!("revenue")
    );
    let after = org.server.get(&own).await.body;
    assert_eq!(after["revenue"], json!(1000.5));
    assert_eq!(after["region"], json!("east"));
    let form = org
        .call(
            "east1",
            Method::GET,
            "/api/meta/entities/customer/form",
            None,
        )
        .await;
    let revenue = form.body["sections"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "revenue")
        .unwrap()
        .clone();
    assert_eq!(revenue["editable"], json!(false));
    // Rights add up: east2's sales role reads revenue although dept_viewer hides it.
    let east2 = org
        .call(
            "east2",
            Method::GET,
            &format!("/api/data/customer/{}", org.customers["east2"]),
            None,
        )
        .await;
    assert_eq!(east2.body["revenue"], json!(1000.5));
    // A manager without field rules writes revenue.
    let by_manager = org
        .call(
            "lead",
            Method::PATCH,
            &own,
            Some(json!({"revenue": "2000"})),
        )
        .await;
    assert_eq!(by_manager.status, 200, "{:?}", by_manager.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn managers_see_their_subtree_and_moves_take_effect_at_once() {
    let org = Org::start().await;
    assert_eq!(
        org.visible_owners("mgr").await,
        vec!["east1", "east2", "lead", "mgr", "west1"]
    );
    assert_eq!(
        org.visible_owners("lead").await,
        vec!["east1", "east2", "lead"]
    );
    assert_eq!(org.visible_owners("west1").await, vec!["west1"]);
    assert_eq!(
        org.visible_owners("east2").await,
        vec!["east1", "east2", "lead"]
    );
    // east1 moves to 华西组: the east lead and east2 lose sight at once, mgr keeps it.
    let moved = org
        .server
        .patch(
            &format!("/api/users/{}", org.ids["east1"]),
            json!({"department": org.departments["west"]}),
            None,
        )
        .await;
    assert_eq!(moved.status, 200);
    assert_eq!(moved.body["department"], json!(org.departments["west"]));
    assert_eq!(org.visible_owners("lead").await, vec!["east2", "lead"]);
    assert_eq!(org.visible_owners("east2").await, vec!["east2", "lead"]);
    assert!(org.visible_owners("mgr").await.contains(&"east1"));
    // Moving 华东组 out from under 销售部 takes its members out of mgr's view.
    let detached = org
        .server
        .patch(
            &format!("/api/departments/{}", org.departments["east"]),
            json!({"parent": null}),
            None,
        )
        .await;
    assert_eq!(detached.status, 200);
    assert_eq!(
        org.visible_owners("mgr").await,
        vec!["east1", "mgr", "west1"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn departments_refuse_cycles_and_bad_references() {
    let org = Org::start().await;
    let sales = org.departments["sales"];
    let east = org.departments["east"];
    let cycle = org
        .server
        .patch(
            &format!("/api/departments/{sales}"),
            json!({"parent": east}),
            None,
        )
        .await;
    assert_eq!(cycle.status, 422, "{:?}", cycle.body);
    assert_eq!(cycle.body["error"]["details"][0]["field"], json!("parent"));
    let itself = org
        .server
        .patch(
            &format!("/api/departments/{east}"),
            json!({"parent": east}),
            None,
        )
        .await;
    assert_eq!(itself.status, 422);
    let unknown_manager = org
        .server
        .post("/api/departments", json!({"name": "x", "manager": 999_999}))
        .await;
    assert_eq!(unknown_manager.status, 422);
    let unknown_key = org
        .server
        .post("/api/departments", json!({"name": "x", "boss": 1}))
        .await;
    assert_eq!(unknown_key.status, 400);
    let by_staff = org
        .call(
            "mgr",
            Method::POST,
            "/api/departments",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(by_staff.status, 403);
    let by_designer = org
        .call(
            "designer",
            Method::POST,
            "/api/departments",
            Some(json!({"name": "设计部"})),
        )
        .await;
    assert_eq!(
        by_designer.status, 201,
        "a role with admin: true manages people"
    );
    let tree = org.server.get("/api/departments").await;
    assert_eq!(tree.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        tree.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == json!(sales))
            .unwrap()["parent"],
        Value::Null,
        "the refused move changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reassignment_moves_only_what_the_caller_may_assign() {
    let org = Org::start().await;
    let east1 = org.ids["east1"];
    let east2 = org.ids["east2"];
    // lead reassigns east1's and west1's customers to east2: west1's is out of reach.
    let reply = org
        .call(
            "lead",
            Method::POST,
            "/api/data/customer/bulk/assign",
            Some(json!({"ids": [org.customers["east1"], org.customers["west1"], org.customers["east2"]], "owner": east2})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["assigned"], json!(1));
    assert_eq!(reply.body["unchanged"], json!(1));
    assert_eq!(reply.body["not_found"], json!([org.customers["west1"]]));
    let moved = org
        .server
        .get(&format!("/api/data/customer/{}", org.customers["east1"]))
        .await;
    assert_eq!(moved.body["owner"], json!(east2));
    assert_eq!(moved.body["version"], json!(2));
    let west = org
        .server
        .get(&format!("/api/data/customer/{}", org.customers["west1"]))
        .await;
    assert_eq!(west.body["owner"], json!(org.ids["west1"]));
    let history = org
        .server
        .get(&format!(
            "/api/data/customer/{}/history",
            org.customers["east1"]
        ))
        .await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], json!("assign"));
    assert_eq!(last["user"], json!(org.ids["lead"]));
    assert_eq!(last["changes"]["owner"], json!([east1, east2]));
    // By filter: mgr hands everything of 华东组 in region east to west1.
    let by_filter = org
        .call(
            "mgr",
            Method::POST,
            "/api/data/customer/bulk/assign",
            Some(json!({"filter": {"field": "owner", "op": "in", "value": [east2, org.ids["lead"]]}, "owner": org.ids["west1"]})),
        )
        .await;
    assert_eq!(by_filter.status, 200, "{:?}", by_filter.body);
    assert_eq!(by_filter.body["assigned"], json!(3));
    // Refusals: a target outside the scope, no assign right, a disabled target, bad input.
    let outside = org
        .call(
            "lead",
            Method::POST,
            "/api/data/customer/bulk/assign",
            Some(json!({"ids": [org.customers["lead"]], "owner": org.ids["west1"]})),
        )
        .await;
    assert_eq!(outside.status, 403);
    assert_eq!(outside.body["error"]["details"][0]["field"], json!("owner"));
    let no_right = org
        .call(
            "east1",
            Method::POST,
            "/api/data/customer/bulk/assign",
            Some(json!({"ids": [org.customers["east1"]], "owner": east1})),
        )
        .await;
    assert_eq!(no_right.status, 403);
    org.server
        .patch(
            &format!("/api/users/{east1}"),
            json!({"active": false}),
            None,
        )
        .await;
    let disabled = org
        .server
        .post(
            "/api/data/customer/bulk/assign",
            json!({"ids": [org.customers["gm"]], "owner": east1}),
        )
        .await;
    assert_eq!(disabled.status, 422, "{:?}", disabled.body);
    for bad in [
        json!({"owner": east2}),
        json!({"ids": [], "owner": east2}),
        json!({"ids": [1], "filter": {}, "owner": east2}),
        json!({"ids": [1], "owner": east2, "extra": true}),
    ] {
        let reply = org
            .server
            .post("/api/data/customer/bulk/assign", bad.clone())
            .await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
    }
    // An owner never changes through PATCH.
    let patched = org
        .server
        .patch(
            &format!("/api/data/customer/{}", org.customers["gm"]),
            json!({"owner": east2}),
            None,
        )
        .await;
    assert_eq!(patched.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_are_shown_and_regenerate_on_publish() {
    let org = Org::start().await;
    let policies = org.server.get("/api/meta/policies").await;
    assert_eq!(policies.status, 200);
    assert!(
        policies.body["model"]
            .as_str()
            .unwrap()
            .contains("[matchers]")
    );
    let lines: Vec<String> = serde_json::from_value(policies.body["lines"].clone()).unwrap();
    let tenant = &org.server.tenant.key;
    for expected in [
        format!("p, role:sales, {tenant}, entity:customer, update:own"),
        format!("p, role:manager, {tenant}, entity:customer, read:subordinates"),
        format!("p, role:sales, {tenant}, field:customer.revenue, deny_write"),
        format!("p, role:designer, {tenant}, designer, admin"),
        format!("g, user:{}, role:sales, {tenant}", org.ids["east1"]),
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    let refused = org
        .call("east1", Method::GET, "/api/meta/policies", None)
        .await;
    assert_eq!(refused.status, 403);
    // Take update away from sales: the very next request is refused.
    let path = format!("/api/data/customer/{}", org.customers["east1"]);
    assert_eq!(
        org.call(
            "east1",
            Method::PATCH,
            &path,
            Some(json!({"region": "west"}))
        )
        .await
        .status,
        200
    );
    let mut package = package();
    package["roles"][0]["permissions"][0]["actions"] = json!(["create", "read"]);
    let published = org.server.put("/api/meta", package).await;
    assert_eq!(published.status, 200, "{:?}", published.body);
    let after = org
        .call(
            "east1",
            Method::PATCH,
            &path,
            Some(json!({"region": "east"})),
        )
        .await;
    assert_eq!(after.status, 403);
    let lines: Vec<String> =
        serde_json::from_value(org.server.get("/api/meta/policies").await.body["lines"].clone())
            .unwrap();
    assert!(!lines.contains(&format!(
        "p, role:sales, {tenant}, entity:customer, update:own"
    )));
    // Removing a role leaves its users with nothing, and roles can be reassigned.
    let reassigned = org
        .server
        .patch(
            &format!("/api/users/{}", org.ids["east1"]),
            json!({"roles": ["manager"]}),
            None,
        )
        .await;
    assert_eq!(reassigned.body["roles"], json!(["manager"]));
    assert_eq!(
        org.call(
            "east1",
            Method::PATCH,
            &path,
            Some(json!({"region": "east"}))
        )
        .await
        .status,
        200,
        "role changes take effect on the next request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn people_are_managed_by_admins_with_clear_errors() {
    let org = Org::start().await;
    let users = org.server.get("/api/users").await;
    let east2 = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "east2")
        .unwrap()
        .clone();
    assert_eq!(east2["roles"], json!(["dept_viewer", "sales"]));
    assert_eq!(east2["department"], json!(org.departments["east"]));
    assert!(east2.get("password_hash").is_none());
    let unknown_role = org
        .server
        .post(
            "/api/users",
            json!({"username": "u1", "password": PASSWORD, "roles": ["ceo"]}),
        )
        .await;
    assert_eq!(unknown_role.status, 422);
    assert_eq!(
        unknown_role.body["error"]["details"][0]["field"],
        json!("roles")
    );
    assert!(
        unknown_role.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ceo")
    );
    let short = org
        .server
        .post("/api/users", json!({"username": "u1", "password": "short"}))
        .await;
    assert_eq!(short.status, 422);
    let taken = org
        .server
        .post(
            "/api/users",
            json!({"username": "east1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(taken.status, 409);
    let bad_department = org
        .server
        .patch(
            &format!("/api/users/{}", org.ids["gm"]),
            json!({"department": 999_999}),
            None,
        )
        .await;
    assert_eq!(bad_department.status, 422);
    let by_staff = org
        .call(
            "mgr",
            Method::PATCH,
            &format!("/api/users/{}", org.ids["east1"]),
            Some(json!({"roles": ["general_manager"]})),
        )
        .await;
    assert_eq!(
        by_staff.status, 403,
        "nobody grants themselves or others rights without admin"
    );
    let admin_id = org.server.get("/api/auth/me").await.body["id"]
        .as_i64()
        .unwrap();
    let self_disable = org
        .server
        .patch(
            &format!("/api/users/{admin_id}"),
            json!({"active": false}),
            None,
        )
        .await;
    assert_eq!(self_disable.status, 403);
    let missing = org
        .server
        .patch("/api/users/999999", json!({"display_name": "x"}), None)
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_or_resetting_a_user_ends_their_sessions() {
    let org = Org::start().await;
    let me = |user: &'static str| org.call(user, Method::GET, "/api/auth/me", None);
    assert_eq!(me("east1").await.status, 200);
    org.server
        .patch(
            &format!("/api/users/{}", org.ids["east1"]),
            json!({"active": false}),
            None,
        )
        .await;
    assert_eq!(me("east1").await.status, 401);
    let login = org
        .server
        .send(
            Method::POST,
            "/api/auth/login",
            Some(
                json!({"tenant": org.server.tenant.key, "username": "east1", "password": PASSWORD}),
            ),
            None,
            &[],
        )
        .await;
    assert_eq!(login.status, 401, "a disabled user cannot log in");
    assert_eq!(me("west1").await.status, 200);
    let reset = org
        .server
        .patch(
            &format!("/api/users/{}", org.ids["west1"]),
            json!({"password": "a new password"}),
            None,
        )
        .await;
    assert_eq!(reset.status, 200);
    assert_eq!(me("west1").await.status, 401);
    org.server.login("west1", "a new password").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_are_throttled_without_revealing_users() {
    let server = TestServer::start(package()).await;
    let login = |username: &str, password: &str| {
        server.send(
            Method::POST,
            "/api/auth/login",
            Some(json!({"tenant": server.tenant.key, "username": username, "password": password})),
            None,
            &[],
        )
    };
    for _ in 0..5 {
        assert_eq!(login("admin", "wrong password").await.status, 401);
    }
    let blocked = login("admin", PASSWORD).await;
    assert_eq!(
        blocked.status, 429,
        "even the right password waits: {:?}",
        blocked.body
    );
    assert_eq!(blocked.body["error"]["code"], json!("too_many_requests"));
    let retry = blocked.body["error"]["details"]["retry_after"]
        .as_u64()
        .unwrap();
    assert!(retry > 60 && retry <= 15 * 60, "{retry}");
    let raw = server
        .client
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"tenant": server.tenant.key, "username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    let header: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(header > 60);
    // An unknown username is throttled exactly like a known one.
    for _ in 0..5 {
        assert_eq!(login("ghost", "wrong password").await.status, 401);
    }
    assert_eq!(login("ghost", "wrong password").await.status, 429);
    // Existing sessions are untouched; other users log in until the address limit.
    assert_eq!(server.get("/api/auth/me").await.status, 200);
    let (_, _) = server.user("clerk", &[], None).await;
    // 10 failures so far (blocked attempts do not count); 10 more reach the limit.
    for index in 0..10 {
        assert_eq!(login(&format!("probe{index}"), "x").await.status, 401);
    }
    assert_eq!(
        login("clerk", PASSWORD).await.status,
        429,
        "20 failures from one address block it"
    );
}
