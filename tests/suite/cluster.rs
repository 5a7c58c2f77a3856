//! `serve` processes as a deployment runs them: two nodes on one PostgreSQL database
//! behaving as one (publishes and role changes reach the other node, sessions work on
//! either, background work runs once, a stopped node's work moves over), and a node
//! stopped with SIGTERM under load losing no acknowledged write.

use crate::common::{self, PASSWORD, ScratchDatabase};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metacrm::store::db::DbConfig;
use metacrm::tenant::Tenants;
use reqwest::Method;
use serde_json::{Value, json};

const TENANT: &str = "acme";

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true, "searchable": true},
          {"key": "phone", "type": "phone"}
      ]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read"], "scope": "all"}]},
      {"key": "lead", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "subordinates"}]}
    ]})
}

/// Where the nodes keep their data: a scratch PostgreSQL database (each node its own
/// data folder for what stays local), or on SQLite one shared data folder.
struct Deployment {
    database: Option<ScratchDatabase>,
    shared: tempfile::TempDir,
}

impl Deployment {
    async fn new() -> Deployment {
        let deployment = Deployment {
            database: ScratchDatabase::create("nodes").await,
            shared: tempfile::tempdir().unwrap(),
        };
        let created = deployment
            .command(deployment.shared.path())
            .args(["tenant", "create", TENANT, "--name", "测试公司"])
            .args(["--admin", common::ADMIN, "--password", PASSWORD])
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        deployment
    }

    fn command(&self, data: &std::path::Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_metacrm"));
        command.arg("--data").arg(data).env("RUST_LOG", "warn");
        match &self.database {
            Some(database) => command.env("DATABASE_URL", &database.url),
            None => command.env_remove("DATABASE_URL"),
        };
        command
    }

    /// The platform, opened in the test process (to look at what nodes left behind).
    async fn open(&self) -> std::sync::Arc<Tenants> {
        Tenants::open(&DbConfig {
            database_url: self.database.as_ref().map(|d| d.url.clone()),
            data_dir: self.shared.path().to_path_buf(),
            meilisearch: None,
            file_store: None,
        })
        .await
        .unwrap()
    }

    /// A `serve` process. On PostgreSQL each node gets a data folder of its own, as
    /// separate machines would; on SQLite the data is the folder.
    fn start(&self, local: &tempfile::TempDir) -> Node {
        let data = match self.database {
            Some(_) => local.path(),
            None => self.shared.path(),
        };
        let port = common::free_port();
        let mut child = self
            .command(data)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            // The load below is many requests from one user.
            .args(["--user-rate", "0", "--tenant-rate", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            if line.contains("listening on") {
                break;
            }
        }
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }
}

struct Node {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Result<(u16, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.send(method, path, Some(token), body).await.unwrap()
    }

    async fn login(&self, username: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"tenant": TENANT, "username": username, "password": PASSWORD})),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body:?}");
        body["token"].as_str().unwrap().to_string()
    }

    /// POSTs `body` to `path`; the id of what it created (201).
    async fn created(&self, token: &str, path: &str, body: Value) -> i64 {
        let (status, body) = self.call(Method::POST, path, token, Some(body)).await;
        assert_eq!(status, 201, "{path}: {body:?}");
        body["id"].as_i64().unwrap()
    }

    /// `POST /api/data/customer/query` as the token's user.
    async fn customers(&self, token: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            "/api/data/customer/query",
            token,
            Some(json!({})),
        )
        .await
    }

    /// PATCHes `path` with `body`, which must succeed.
    async fn patched(&self, token: &str, path: &str, body: Value) {
        let (status, body) = self.call(Method::PATCH, path, token, Some(body)).await;
        assert_eq!(status, 200, "{path}: {body:?}");
    }

    async fn create(&self, token: &str, name: &str) -> i64 {
        self.created(token, "/api/data/customer", json!({"name": name}))
            .await
    }

    async fn version(&self, token: &str) -> i64 {
        let (status, body) = self
            .call(Method::GET, "/api/meta/versions", token, None)
            .await;
        assert_eq!(status, 200, "{body:?}");
        body["items"][0]["version"].as_i64().unwrap()
    }

    /// The value of a metric series (its name with labels, as the text format writes it).
    async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
            .unwrap_or(0.0)
    }

    async fn outbox_pending(&self) -> f64 {
        self.metric(&format!("metacrm_outbox_pending{{tenant=\"{TENANT}\"}}"))
            .await
    }

    /// SIGTERM, as a service manager stops a node; answers whether it exited cleanly.
    fn terminate(&mut self) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap().success()
    }
}

/// Waits (up to 20 s) until `done` holds; answers how long it took.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_postgresql_behave_as_one() {
    let deployment = Deployment::new().await;
    if deployment.database.is_none() {
        eprintln!(
            "NOTICE: several nodes share a PostgreSQL database; on SQLite (one node by design) the multi-node test does not apply"
        );
        return;
    }
    let (local_a, local_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = deployment.start(&local_a);
    let b = deployment.start(&local_b);

    // Sessions live in the database: a login on one node works on the other.
    let admin = a.login(common::ADMIN).await;
    let (status, body) = a
        .call(Method::PUT, "/api/meta", &admin, Some(package()))
        .await;
    assert_eq!(status, 200, "{body:?}");
    let first = body["version"].as_i64().unwrap();
    let seen = until("node b sees the first publish", || async {
        b.version(&admin).await == first
    })
    .await;
    eprintln!("a publish on node a was seen by node b after {seen:?}");

    // A publish on one node: the other swaps its catalog and takes the new field.
    let mut changed = package();
    changed["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"key": "level", "type": "select", "options": [{"value": "A"}, {"value": "B"}]}),
        );
    let (status, body) = a
        .call(Method::PUT, "/api/meta", &admin, Some(changed))
        .await;
    assert_eq!(status, 200, "{body:?}");
    let second = body["version"].as_i64().unwrap();
    let seen = until("node b sees the second publish", || async {
        b.version(&admin).await == second
    })
    .await;
    eprintln!("a schema change on node a was seen by node b after {seen:?}");
    let (status, body) = b
        .call(
            Method::POST,
            "/api/data/customer",
            &admin,
            Some(json!({"name": "深圳市震华信息技术有限公司", "level": "A"})),
        )
        .await;
    assert_eq!(status, 201, "node b writes the new field: {body:?}");
    let (status, body) = b
        .call(
            Method::POST,
            "/api/data/customer",
            &admin,
            Some(json!({"name": "x", "level": "C"})),
        )
        .await;
    assert_eq!(
        status, 422,
        "node b validates with the new options: {body:?}"
    );

    // Role changes on one node reach the other's permission policy.
    let rep_id = a
        .created(
            &admin,
            "/api/users",
            json!({"username": "rep", "password": PASSWORD, "roles": ["sales"]}),
        )
        .await;
    let rep = b.login("rep").await;
    let (status, _) = b.customers(&rep).await;
    assert_eq!(status, 200, "the new user's role holds on node b");
    a.patched(
        &admin,
        &format!("/api/users/{rep_id}"),
        json!({"roles": []}),
    )
    .await;
    let seen = until("node b drops the revoked role", || async {
        b.customers(&rep).await.0 == 403
    })
    .await;
    eprintln!("a role change on node a reached node b after {seen:?}");

    // Moving a user out of a manager's department on one node changes what the manager
    // sees on the other (each node keeps the organisation until told of a change).
    let department = |name: &str| a.created(&admin, "/api/departments", json!({"name": name}));
    let (east, west) = (department("华东").await, department("华西").await);
    let user = |username: &str, role: &str, department: i64| {
        a.created(
            &admin,
            "/api/users",
            json!({"username": username, "password": PASSWORD,
                   "roles": [role], "department": department}),
        )
    };
    let boss = user("boss", "lead", east).await;
    let member = user("member", "sales", east).await;
    a.patched(
        &admin,
        &format!("/api/departments/{east}"),
        json!({"manager": boss}),
    )
    .await;
    let member_token = a.login("member").await;
    a.create(&member_token, "华东客户").await;
    let boss_token = b.login("boss").await;
    let visible = || async {
        let (status, body) = b.customers(&boss_token).await;
        assert_eq!(status, 200, "{body:?}");
        body["items"].as_array().unwrap().len()
    };
    assert_eq!(visible().await, 1, "the manager sees the member's customer");
    a.patched(
        &admin,
        &format!("/api/users/{member}"),
        json!({"department": west}),
    )
    .await;
    let seen = until(
        "node b sees the member leave the manager's department",
        || async { visible().await == 0 },
    )
    .await;
    eprintln!("a department change on node a reached node b after {seen:?}");

    // Writes on both nodes over a few seconds (several indexer rounds on each): the
    // outbox is indexed exactly once, all of it by the node holding the lease.
    for i in 0..10 {
        a.create(&admin, &format!("甲客户{i}")).await;
        b.create(&admin, &format!("乙客户{i}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until("the outbox drains", || async {
        a.outbox_pending().await == 0.0 && b.outbox_pending().await == 0.0
    })
    .await;
    let leases = [
        a.metric("metacrm_tenant_leases_held").await,
        b.metric("metacrm_tenant_leases_held").await,
    ];
    assert_eq!(
        leases,
        [1.0, 0.0],
        "node a, which loaded the tenant first, holds its lease"
    );
    let indexed = [
        a.metric("metacrm_search_indexed_total").await,
        b.metric("metacrm_search_indexed_total").await,
    ];
    let platform = deployment.open().await;
    let tenant = platform.get(TENANT).await.unwrap();
    let outbox = outbox_rows(&tenant).await as f64;
    assert_eq!(
        indexed,
        [outbox, 0.0],
        "every outbox row indexed once, by the lease holder"
    );

    // The holder stops (SIGTERM): its lease is released and node b takes over.
    assert!(a.terminate(), "node a exits cleanly on SIGTERM");
    let id = b.create(&admin, "接手客户").await;
    until("node b takes the lease and indexes", || async {
        b.metric("metacrm_tenant_leases_held").await == 1.0 && b.outbox_pending().await == 0.0
    })
    .await;
    let (status, body) = b
        .call(
            Method::GET,
            "/api/search?q=%E6%8E%A5%E6%89%8B",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body:?}");
    let found: Vec<i64> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        found,
        vec![id],
        "node b indexed the write made after node a stopped: {body:?}"
    );
}

async fn outbox_rows(tenant: &metacrm::tenant::Tenant) -> i64 {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let select = Query::select()
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .from(tenant.db.table("outbox"))
        .to_owned();
    let row = tenant.db.conn().query_all(&select).await.unwrap().remove(0);
    row.try_get("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_loses_no_acknowledged_write() {
    let deployment = Deployment::new().await;
    let local = tempfile::tempdir().unwrap();
    let node = deployment.start(&local);
    let admin = node.login(common::ADMIN).await;
    let (status, body) = node
        .call(Method::PUT, "/api/meta", &admin, Some(package()))
        .await;
    assert_eq!(status, 200, "{body:?}");

    // Eight clients write as fast as they can until the node stops answering.
    let node = std::sync::Arc::new(node);
    let mut clients = Vec::new();
    for client in 0..8 {
        let (node, admin) = (node.clone(), admin.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let name = format!("客户{client}-{n}");
                match node
                    .send(
                        Method::POST,
                        "/api/data/customer",
                        Some(&admin),
                        Some(json!({"name": name})),
                    )
                    .await
                {
                    Ok((201, _)) => acknowledged.push(name),
                    Ok((status, body)) => panic!("write refused with {status}: {body:?}"),
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = node.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    let mut node = std::sync::Arc::into_inner(node).expect("the clients are done");
    assert!(
        node.child.wait().unwrap().success(),
        "the node exits cleanly"
    );
    assert!(
        acknowledged.len() > 8,
        "the load ran: {} writes",
        acknowledged.len()
    );

    // Every acknowledged write is stored exactly once, and the outbox was flushed.
    let platform = deployment.open().await;
    let tenant = platform.get(TENANT).await.unwrap();
    let names = stored_names(&tenant).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    for name in &acknowledged {
        assert_eq!(counts.get(name.as_str()), Some(&1), "{name} stored once");
    }
    assert_eq!(
        metacrm::search::indexer::pending(&tenant.db).await.unwrap(),
        0,
        "the outbox was flushed to the search index before the node exited"
    );
    eprintln!(
        "{} writes acknowledged before SIGTERM, {} stored",
        acknowledged.len(),
        names.len()
    );
}

async fn stored_names(tenant: &metacrm::tenant::Tenant) -> Vec<String> {
    use metacrm::auth::Access;
    use metacrm::store::records::{QueryRequest, Records};
    let catalog = tenant.catalog().await;
    let records = Records::new(&tenant.db, &catalog, catalog.entity("customer").unwrap());
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let request = QueryRequest {
            limit: Some(metacrm::store::records::MAX_LIMIT),
            after: after.take(),
            ..QueryRequest::default()
        };
        let page = records.query(&request, &Access::system()).await.unwrap();
        names.extend(
            page.items
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return names,
        }
    }
}
