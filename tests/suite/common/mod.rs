//! Test harness: a real server on a free port over a real database, chosen by
//! `METACRM_TEST_DATABASE` (`sqlite`, the default, or a `postgres://` URL). Each test
//! gets its own tenant (its own PostgreSQL schema or SQLite file).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use metacrm::search::SearchIndex;
use metacrm::search::embedded::EmbeddedIndex;
use metacrm::search::meili::MeiliIndex;
use metacrm::store::db::DbConfig;
use metacrm::tenant::{NewTenant, Tenant, Tenants};
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::{Value, json};

pub mod browser;
pub mod web;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub fn db_config(dir: &std::path::Path) -> DbConfig {
    let url = std::env::var("METACRM_TEST_DATABASE")
        .ok()
        .filter(|v| v.starts_with("postgres"));
    DbConfig {
        database_url: url,
        data_dir: dir.to_path_buf(),
        meilisearch: None,
        // `s3://bucket` with the AWS_* variables: attachments in an S3-compatible
        // store (`.ci/run` starts one for the PostgreSQL run); unset: local files.
        file_store: std::env::var("METACRM_TEST_FILE_STORE").ok(),
    }
}

/// A search backend the search conformance suite runs against.
#[derive(Debug, Clone)]
pub enum SearchBackend {
    Embedded,
    Meilisearch {
        url: String,
        api_key: Option<String>,
    },
}

impl SearchBackend {
    /// The embedded backend always; Meilisearch too when `METACRM_TEST_MEILI_URL`
    /// names a server (`METACRM_TEST_MEILI_KEY` its key). Says so when it is skipped.
    pub fn all() -> Vec<SearchBackend> {
        let mut backends = vec![SearchBackend::Embedded];
        match std::env::var("METACRM_TEST_MEILI_URL") {
            Ok(url) if !url.is_empty() => backends.push(SearchBackend::Meilisearch {
                url,
                api_key: std::env::var("METACRM_TEST_MEILI_KEY").ok(),
            }),
            _ => eprintln!(
                "NOTICE: METACRM_TEST_MEILI_URL is not set: the Meilisearch backend is skipped, only the embedded one is tested"
            ),
        }
        backends
    }

    /// The backend's index, embedded ones under `dir`.
    pub fn open(&self, dir: &std::path::Path) -> Arc<dyn SearchIndex> {
        match self {
            SearchBackend::Embedded => Arc::new(EmbeddedIndex::new(dir.join("search"))),
            SearchBackend::Meilisearch { url, api_key } => {
                Arc::new(MeiliIndex::new(url, api_key.as_deref()).unwrap())
            }
        }
    }
}

/// A free loopback port (for a process the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tenant key unique across test processes sharing one PostgreSQL database.
pub fn unique_key(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// Serves the application on a free port in the background; returns its base URL.
async fn serve(tenants: Arc<Tenants>) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    let app = metacrm::api::server(tenants);
    tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(app)
            .await
            .unwrap();
    });
    format!("http://127.0.0.1:{port}")
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub tenants: Arc<Tenants>,
    pub tenant: Arc<Tenant>,
    pub dir: tempfile::TempDir,
}

/// A response read as bytes.
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }
}

/// A response: status and JSON body (Null when the body is empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl TestServer {
    /// Starts a server with a fresh tenant that has `package` applied.
    pub async fn start(package: Value) -> TestServer {
        Self::start_with(package, |dir| SearchBackend::Embedded.open(dir)).await
    }

    /// Starts a server whose search index `search` makes (given the data folder).
    pub async fn start_with(
        package: Value,
        search: impl FnOnce(&std::path::Path) -> Arc<dyn SearchIndex>,
    ) -> TestServer {
        Self::start_on(package, db_config, search).await
    }

    /// Starts a server alone on its database: on PostgreSQL the `scratch` one, for
    /// tests of what a node does for every tenant of its database (`ScratchDatabase`).
    /// (`restart` does not follow it there.)
    pub async fn start_alone(package: Value, scratch: Option<&ScratchDatabase>) -> TestServer {
        let url = scratch.map(|s| s.url.clone());
        let config = move |dir: &std::path::Path| DbConfig {
            database_url: url,
            ..db_config(dir)
        };
        Self::start_on(package, config, |dir| SearchBackend::Embedded.open(dir)).await
    }

    async fn start_on(
        package: Value,
        config: impl FnOnce(&std::path::Path) -> DbConfig,
        search: impl FnOnce(&std::path::Path) -> Arc<dyn SearchIndex>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open_with_search(&config(dir.path()), search(dir.path()))
            .await
            .unwrap();
        let key = unique_key("t");
        let tenant = tenants
            .create(&NewTenant {
                key: &key,
                name: "测试公司",
                admin: ADMIN,
                password: PASSWORD,
            })
            .await
            .unwrap();
        tenant.apply(&package, None, false).await.unwrap();
        let base = serve(tenants.clone()).await;
        let mut server = TestServer {
            base,
            client: reqwest::Client::new(),
            token: String::new(),
            tenants,
            tenant,
            dir,
        };
        server.token = server.login(ADMIN, PASSWORD).await;
        server
    }

    /// Another server process over the same data (a restart): a new registry, new
    /// connections, a new port; sessions live in the database and stay valid.
    /// The restarted server reads the same data folder, which `self` keeps alive.
    pub async fn restart(&self) -> TestServer {
        let tenants = Tenants::open(&db_config(self.dir.path())).await.unwrap();
        let tenant = tenants.get(&self.tenant.key).await.unwrap();
        let base = serve(tenants.clone()).await;
        TestServer {
            base,
            client: reqwest::Client::new(),
            token: self.token.clone(),
            tenants,
            tenant,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Publishes `package`, which must be refused (422); answers the paths of its
    /// problems, and checks each of `expected` is among them.
    pub async fn refused_paths(&self, package: Value, expected: &[&str]) -> Vec<String> {
        let refused = self.put("/api/meta", package).await;
        assert_eq!(refused.status, 422, "{:?}", refused.body);
        let paths: Vec<String> = refused.body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap().to_string())
            .collect();
        for path in expected {
            assert!(paths.iter().any(|p| p == path), "{path} in {paths:?}");
        }
        paths
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .send(
                reqwest::Method::POST,
                "/api/auth/login",
                Some(
                    json!({"tenant": self.tenant.key, "username": username, "password": password}),
                ),
                None,
                &[],
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {:?}", reply.body);
        reply.body["token"].as_str().unwrap().to_string()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None, Some(&self.token), &[])
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body),
            Some(&self.token),
            &[],
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(body),
            Some(&self.token),
            &[],
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value, version: Option<i64>) -> Reply {
        let version = version.map(|v| v.to_string());
        let headers: Vec<(&str, &str)> = version.iter().map(|v| ("If-Match", v.as_str())).collect();
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(body),
            Some(&self.token),
            &headers,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None, Some(&self.token), &[])
            .await
    }

    /// Creates a record and returns it, failing the test on any error.
    pub async fn create(&self, entity: &str, record: Value) -> Value {
        let reply = self.post(&format!("/api/data/{entity}"), record).await;
        assert_eq!(
            reply.status, 201,
            "create {entity} failed: {:#?}",
            reply.body
        );
        reply.body
    }

    /// Uploads a file with `token` (`POST /api/files`); the reply carries the
    /// attachment item.
    pub async fn upload_as(&self, token: &str, name: &str, bytes: &[u8]) -> Reply {
        let response = self
            .client
            .post(format!("{}/api/files", self.base))
            .query(&[("name", name)])
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply { status, body }
    }

    /// A GET with `token` answered with raw bytes (downloads, exports, printed pages).
    pub async fn fetch(&self, token: &str, path: &str) -> Fetched {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        Fetched {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            bytes: response.bytes().await.unwrap().to_vec(),
        }
    }

    /// Uploads a file as the admin and returns the attachment item.
    pub async fn upload(&self, name: &str, bytes: &[u8]) -> Value {
        let reply = self.upload_as(&self.token, name, bytes).await;
        assert_eq!(reply.status, 200, "upload {name}: {:?}", reply.body);
        reply.body
    }

    /// The field names of a 422's details.
    pub fn fields_of(reply: &Reply) -> Vec<String> {
        reply.body["error"]["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The records of `entity` the admin sees (first page, default order).
    pub async fn records(&self, entity: &str) -> Vec<Value> {
        let reply = self
            .post(&format!("/api/data/{entity}/query"), json!({}))
            .await;
        assert_eq!(reply.status, 200, "{entity}: {:?}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    /// The notifications of the user whose token this is, newest first.
    pub async fn notifications(&self, token: &str) -> Vec<Value> {
        let reply = self
            .call(token, reqwest::Method::GET, "/api/notifications", None)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    /// A request with another user's token.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.send(method, path, body, Some(token), &[]).await
    }

    /// Creates a department as the admin and returns its id.
    pub async fn department(&self, name: &str, parent: Option<i64>, manager: Option<i64>) -> i64 {
        let reply = self
            .post(
                "/api/departments",
                json!({"name": name, "parent": parent, "manager": manager}),
            )
            .await;
        assert_eq!(reply.status, 201, "department {name}: {:?}", reply.body);
        reply.body["id"].as_i64().unwrap()
    }

    /// Creates a user as the admin, logs them in, and returns (id, token).
    pub async fn user(
        &self,
        username: &str,
        roles: &[&str],
        department: Option<i64>,
    ) -> (i64, String) {
        let reply = self
            .post(
                "/api/users",
                json!({"username": username, "password": PASSWORD, "roles": roles, "department": department}),
            )
            .await;
        assert_eq!(reply.status, 201, "user {username}: {:?}", reply.body);
        let id = reply.body["id"].as_i64().unwrap();
        (id, self.login(username, PASSWORD).await)
    }
}

/// A PostgreSQL database of its own, for tests that start `serve` processes: a node's
/// background work covers every tenant of its database, so nodes must not share the
/// suite's database with other tests. Dropped with the value.
pub struct ScratchDatabase {
    pub url: String,
    suite_url: String,
    name: String,
}

impl ScratchDatabase {
    /// A fresh database beside the suite's; `None` when the suite runs on SQLite.
    pub async fn create(label: &str) -> Option<ScratchDatabase> {
        use sea_orm::ConnectionTrait;
        let suite_url = db_config(std::path::Path::new(".")).database_url?;
        let name = unique_key(label);
        let base = suite_url.rsplit_once('/').expect("a database URL").0;
        let admin = sea_orm::Database::connect(suite_url.as_str())
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(ScratchDatabase {
            url: format!("{base}/{name}"),
            suite_url,
            name,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.suite_url.clone(), self.name.clone());
        // Drop may run inside a runtime, which cannot block on another: a thread of its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sea_orm::ConnectionTrait;
                    let admin = sea_orm::Database::connect(url.as_str()).await?;
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!(
                "scratch database {} was not dropped: {dropped:?}",
                self.name
            );
        }
    }
}

/// The `metacrm` command over the data folder `data` and the suite's database and file
/// store (as the in-process servers over `data` use them).
pub fn metacrm_command(data: &std::path::Path) -> std::process::Command {
    let config = db_config(data);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_metacrm"));
    command.arg("--data").arg(data).env("RUST_LOG", "warn");
    match config.database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    match config.file_store {
        Some(store) => command.env("METACRM_FILE_STORE", store),
        None => command.env_remove("METACRM_FILE_STORE"),
    };
    command
}

/// Runs a command to its end: whether it succeeded, and all it printed.
pub fn run_command(command: &mut std::process::Command) -> (bool, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The plan the tenant's database makes for `select`, its lines joined with "; ".
/// PostgreSQL is told to avoid sequential scans and bitmap scans, which a test's small
/// tables would get whatever their indexes: the plan then shows what an index can do.
pub async fn explain(tenant: &Tenant, select: &sea_orm::sea_query::SelectStatement) -> String {
    use metacrm::store::db::Backend;
    use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let conn = tenant.db.conn();
    let txn = conn.begin().await.unwrap();
    let (sql, column) = match tenant.db.backend() {
        Backend::Sqlite => (
            format!(
                "EXPLAIN QUERY PLAN {}",
                select.to_string(SqliteQueryBuilder)
            ),
            "detail",
        ),
        Backend::Postgres => {
            txn.execute_unprepared(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
            )
            .await
            .unwrap();
            (
                format!("EXPLAIN {}", select.to_string(PostgresQueryBuilder)),
                "QUERY PLAN",
            )
        }
    };
    let rows = txn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

/// An index's definition as the tenant's database shows it.
pub async fn index_definition(tenant: &Tenant, index: &str) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = tenant.db.conn();
    let sql = match tenant.db.schema() {
        Some(schema) => format!(
            "SELECT indexdef AS def FROM pg_indexes WHERE schemaname = '{schema}' \
             AND indexname = '{index}'"
        ),
        None => format!("SELECT sql AS def FROM sqlite_master WHERE name = '{index}'"),
    };
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "index {index} exists");
    rows[0].try_get::<String>("", "def").unwrap()
}

/// Makes the tenant look as it did before tenant migration `migration`: `index` on
/// `table` is the plain index on `column` again, the indexes `added` (by the migration)
/// are gone, and the migration is not yet run (the tenant's next opening runs it).
pub async fn put_back_plain_index(
    tenant: &Tenant,
    (table, index, column): (&str, &str, &str),
    added: &[&str],
    migration: &str,
) {
    use sea_orm::ConnectionTrait;
    let qualified = |name: &str| match tenant.db.schema() {
        Some(schema) => format!("\"{schema}\".\"{name}\""),
        None => format!("\"{name}\""),
    };
    let txn = tenant.db.begin_write().await.unwrap();
    for sql in added
        .iter()
        .map(|added| format!("DROP INDEX {}", qualified(added)))
        .chain([
            format!("DROP INDEX {}", qualified(index)),
            format!(
                "CREATE INDEX \"{index}\" ON {} (\"{column}\")",
                qualified(table)
            ),
            format!(
                "DELETE FROM {} WHERE version LIKE '{migration}%'",
                qualified("seaql_migrations")
            ),
        ])
    {
        txn.execute_unprepared(&sql).await.unwrap();
    }
    txn.commit().await.unwrap();
    // As after a publish: no SQLite connection keeps statements prepared before.
    tenant.db.reconnect_after_schema_change().await.unwrap();
}
