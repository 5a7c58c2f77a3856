//! The search conformance suite, over HTTP, run against every backend
//! (`SearchBackend::all`: embedded always, Meilisearch when configured): Chinese
//! fragments, pinyin, initials, typos, phone digits, snippets, permission filtering
//! inside the engine, masked fields, updates and deletes through the outbox, rebuilds,
//! duplicate checks.

use crate::common;

use std::sync::Arc;

use common::{SearchBackend, TestServer};
use metacrm::error::{Error as MError, Result as MResult};
use metacrm::search::indexer::{self, Serving, drain};
use metacrm::search::{Document, Hit, SearchIndex, SearchQuery};
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

/// A server with the test package per search backend.
async fn servers() -> Vec<TestServer> {
    let mut servers = Vec::new();
    for backend in SearchBackend::all() {
        servers.push(TestServer::start_with(package(), |dir| backend.open(dir)).await);
    }
    servers
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
    for server in servers().await {
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
}

#[tokio::test(flavor = "multi_thread")]
async fn results_are_filtered_by_scope_and_masks_inside_the_engine() {
    for server in servers().await {
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
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_the_index_through_the_outbox() {
    for server in servers().await {
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
        let count = metacrm::search::indexer::rebuild(
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
}

/// A sales rep owning 深圳市震华信息技术有限公司: the rep's id and token, the record's id.
async fn rep_with_zhenhua(server: &TestServer) -> (i64, String, i64) {
    let (rep, token) = server.user("rep", &["sales"], None).await;
    let existing = server
        .create(
            "customer",
            json!({"name": ZHENHUA, "phone": "0755-8888 6666", "owner": rep}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    (rep, token, existing)
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_are_found_before_creating() {
    for server in servers().await {
        let (rep, rep_token, existing) = rep_with_zhenhua(&server).await;
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
}

/// A backend that misbehaves on command: it can stop in the middle of a batch (half
/// of the documents written, then an error, as a crash would leave it), fail before
/// writing, or hold writes into one index until released.
struct Faulty {
    inner: Arc<dyn SearchIndex>,
    /// Upserts that still fail: `true` writes half of the batch first.
    failures: std::sync::Mutex<Vec<bool>>,
    /// Writes into indexes whose name ends so wait for `release`.
    hold: std::sync::Mutex<Option<String>>,
    held: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Faulty {
    fn new(inner: Arc<dyn SearchIndex>) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            failures: Default::default(),
            hold: Default::default(),
            held: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        })
    }
}

#[async_trait::async_trait]
impl SearchIndex for Faulty {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn upsert(&self, tenant: &str, index: &str, documents: Vec<Document>) -> MResult<()> {
        let held = self
            .hold
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|suffix| index.ends_with(suffix.as_str()));
        if held {
            self.held.notify_one();
            self.release.notified().await;
        }
        let failure = self.failures.lock().unwrap().pop();
        match failure {
            Some(partly) => {
                if partly {
                    let half = documents[..documents.len() / 2].to_vec();
                    self.inner.upsert(tenant, index, half).await?;
                }
                Err(MError::Internal("the indexer crashed".into()))
            }
            None => self.inner.upsert(tenant, index, documents).await,
        }
    }

    async fn delete(&self, tenant: &str, index: &str, ids: Vec<i64>) -> MResult<()> {
        self.inner.delete(tenant, index, ids).await
    }

    async fn clear(&self, tenant: &str, index: &str) -> MResult<()> {
        self.inner.clear(tenant, index).await
    }

    async fn drop_index(&self, tenant: &str, index: &str) -> MResult<()> {
        self.inner.drop_index(tenant, index).await
    }

    async fn search(&self, tenant: &str, index: &str, query: &SearchQuery) -> MResult<Vec<Hit>> {
        self.inner.search(tenant, index, query).await
    }
}

/// Every hit for `text` in the entity's serving index, as ids (duplicates kept).
async fn ids_in_index(server: &TestServer, index: &dyn SearchIndex, text: &str) -> Vec<i64> {
    let serving = Serving::load(&server.tenant.db).await.unwrap();
    let query = SearchQuery {
        text: text.into(),
        fields: vec!["name".into()],
        owners: None,
        limit: 1000,
    };
    let hits = index
        .search(&server.tenant.key, &serving.index("customer"), &query)
        .await
        .unwrap();
    hits.into_iter().map(|h| h.id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_step_of_indexing_loses_no_update_and_duplicates_nothing() {
    for backend in SearchBackend::all() {
        let faulty = Faulty::new(backend.open(tempfile::tempdir().unwrap().keep().as_path()));
        let index = faulty.clone();
        let server = TestServer::start_with(package(), move |_| index).await;
        let mut ids = Vec::new();
        for n in 0..40 {
            let record = server
                .create("customer", json!({"name": format!("崩溃测试{n}号")}))
                .await;
            ids.push(record["id"].as_i64().unwrap());
        }
        server
            .patch(
                &format!("/api/data/customer/{}", ids[0]),
                json!({"name": "改名后的崩溃测试"}),
                None,
            )
            .await;
        server
            .delete(&format!("/api/data/customer/{}", ids[1]))
            .await;
        // Crash in the middle of a batch, then before writing anything.
        *faulty.failures.lock().unwrap() = vec![false, true];
        let catalog = server.tenant.catalog().await.clone();
        for _ in 0..2 {
            assert!(
                drain(&server.tenant, &catalog, faulty.as_ref())
                    .await
                    .is_err()
            );
        }
        assert_eq!(
            drain(&server.tenant, &catalog, faulty.as_ref())
                .await
                .unwrap(),
            42,
            "the whole outbox is replayed after the crashes"
        );
        let mut found = ids_in_index(&server, faulty.as_ref(), "崩溃测试").await;
        found.sort();
        let mut expected: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[1]).collect();
        expected.sort();
        assert_eq!(found, expected, "every live record exactly once");
        assert_eq!(
            ids_in_index(&server, faulty.as_ref(), "改名后").await,
            vec![ids[0]]
        );

        // A rebuild that crashes leaves the serving generation answering; the next
        // one completes and switches.
        let before = Serving::load(&server.tenant.db).await.unwrap();
        *faulty.failures.lock().unwrap() = vec![true];
        assert!(
            indexer::sync(&server.tenant, faulty.as_ref())
                .await
                .is_err()
        );
        let after = Serving::load(&server.tenant.db).await.unwrap();
        assert_eq!(after.generation("customer"), before.generation("customer"));
        assert_eq!(
            ids_in_index(&server, faulty.as_ref(), "崩溃测试")
                .await
                .len(),
            39
        );
        indexer::sync(&server.tenant, faulty.as_ref())
            .await
            .unwrap();
        let rebuilt = Serving::load(&server.tenant.db).await.unwrap();
        assert_eq!(
            rebuilt.generation("customer"),
            before.generation("customer") + 1
        );
        assert_eq!(
            ids_in_index(&server, faulty.as_ref(), "崩溃测试")
                .await
                .len(),
            39
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_searchable_fields_rebuilds_in_the_background_while_search_answers() {
    for backend in SearchBackend::all() {
        let faulty = Faulty::new(backend.open(tempfile::tempdir().unwrap().keep().as_path()));
        let index = faulty.clone();
        let server = TestServer::start_with(package(), move |_| index).await;
        let token = server.token.clone();
        indexer::sync(&server.tenant, faulty.as_ref())
            .await
            .unwrap();
        server
            .create(
                "customer",
                json!({"name": ZHENHUA, "notes": "老客户，年底续约"}),
            )
            .await;
        assert!(
            search(&server, &token, "续约").await.is_empty(),
            "notes not searchable yet"
        );

        let mut changed = package();
        changed["entities"][0]["fields"][2]["searchable"] = json!(true);
        server.tenant.apply(&changed, None, false).await.unwrap();
        let generation = Serving::load(&server.tenant.db)
            .await
            .unwrap()
            .generation("customer");
        let next = format!("-g{}", generation + 1);
        *faulty.hold.lock().unwrap() = Some(next);
        let tenant = server.tenant.clone();
        let background = faulty.clone();
        let rebuild =
            tokio::spawn(async move { indexer::sync(&tenant, background.as_ref()).await });
        faulty.held.notified().await;
        // Mid-rebuild: the current generation answers, and new writes reach it.
        assert_eq!(search(&server, &token, "震华").await, vec![ZHENHUA]);
        server
            .create(
                "customer",
                json!({"name": "重建期间新客户", "notes": "续约中"}),
            )
            .await;
        assert_eq!(
            search(&server, &token, "重建期间").await,
            vec!["重建期间新客户"]
        );
        *faulty.hold.lock().unwrap() = None;
        faulty.release.notify_one();
        rebuild.await.unwrap().unwrap();
        assert_eq!(
            Serving::load(&server.tenant.db)
                .await
                .unwrap()
                .generation("customer"),
            generation + 1
        );
        let mut found = search(&server, &token, "续约").await;
        found.sort();
        let mut expected = vec![ZHENHUA.to_string(), "重建期间新客户".to_string()];
        expected.sort();
        assert_eq!(found, expected, "the new searchable field is searched");
        // Nothing to rebuild any more.
        let catalog = server.tenant.catalog().await.clone();
        assert!(
            indexer::stale(&server.tenant, &catalog, faulty.as_ref())
                .await
                .unwrap()
                .is_empty()
        );
    }
}

async fn count_customers(server: &TestServer) -> usize {
    let reply = server
        .post("/api/data/customer/query", json!({"limit": 1000}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().unwrap().len()
}

/// The test package with a blocking duplicate check on customers that managers may
/// override.
fn blocking_package() -> Value {
    let mut package = package();
    package["entities"][0]["duplicate_check"] = json!({"block": true, "force_roles": ["manager"]});
    package["roles"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "manager", "permissions": [
            {"entity": "customer", "actions": ["create", "read"], "scope": "all"}]}));
    package
}

#[tokio::test(flavor = "multi_thread")]
async fn certain_duplicates_are_refused_unless_an_allowed_user_forces_them() {
    for backend in SearchBackend::all() {
        let server = TestServer::start_with(blocking_package(), |dir| backend.open(dir)).await;
        let (_, rep_token, existing) = rep_with_zhenhua(&server).await;
        let (_, manager_token) = server.user("boss", &["manager"], None).await;
        let check = |values: Value| {
            let server = &server;
            async move {
                let reply = server.post("/api/data/customer/duplicates", values).await;
                assert_eq!(reply.status, 200, "{:?}", reply.body);
                reply.body["items"].as_array().unwrap().clone()
            }
        };
        let same = check(json!({"name": "深圳震华信息技术有限公司"})).await;
        assert_eq!(same[0]["id"], json!(existing));
        assert_eq!(same[0]["verdict"], json!("certain"));
        assert_eq!(same[0]["reasons"], json!({"name": "same_name"}));
        let near = check(json!({"name": "震华信息"})).await;
        assert_eq!(near[0]["verdict"], json!("likely"), "{near:?}");
        let phone = check(json!({"phone": "+86 755 8888 6666"})).await;
        assert_eq!(phone[0]["reasons"], json!({"phone": "same_phone"}));

        // The rep typing the same company differently is refused, with the match.
        for values in [
            json!({"name": "震华信息技术（深圳）有限公司"}),
            json!({"name": "另一个名字", "phone": "+86 755 8888 6666"}),
        ] {
            let refused = server
                .call(&rep_token, Method::POST, "/api/data/customer", Some(values))
                .await;
            assert_eq!(refused.status, 409, "{:?}", refused.body);
            assert_eq!(refused.body["error"]["code"], json!("duplicate"));
            assert_eq!(
                refused.body["error"]["details"]["matches"][0]["id"],
                json!(existing)
            );
            assert!(
                refused.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(ZHENHUA)
            );
        }
        assert_eq!(count_customers(&server).await, 1, "nothing was created");
        // Forcing is for administrators and the check's roles.
        let forced = server
            .call(
                &rep_token,
                Method::POST,
                "/api/data/customer?force=true",
                Some(json!({"name": "深圳震华信息技术有限公司"})),
            )
            .await;
        assert_eq!(forced.status, 403, "{:?}", forced.body);
        for token in [&manager_token, &server.token] {
            let forced = server
                .call(
                    token,
                    Method::POST,
                    "/api/data/customer?force=true",
                    Some(json!({"name": "深圳震华信息技术有限公司"})),
                )
                .await;
            assert_eq!(forced.status, 201, "{:?}", forced.body);
        }
        // Something new goes through without forcing.
        let new = server
            .call(
                &rep_token,
                Method::POST,
                "/api/data/customer",
                Some(json!({"name": "广州市宏达贸易有限公司", "phone": "020-1234 5678"})),
            )
            .await;
        assert_eq!(new.status, 201, "{:?}", new.body);
        assert_eq!(count_customers(&server).await, 4);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_check_naming_an_unknown_role_is_rejected_with_its_path() {
    let server = TestServer::start(package()).await;
    let mut bad = package();
    bad["entities"][0]["duplicate_check"] = json!({"block": true, "force_roles": ["ceo"]});
    bad["entities"][1]["duplicate_check"] = json!({"block": true});
    bad["entities"][1]["fields"][0]["searchable"] = json!(false);
    let reply = server
        .call(&server.token.clone(), Method::PUT, "/api/meta", Some(bad))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    let problems = reply.body["error"]["details"].to_string();
    assert!(
        problems.contains("entities[0].duplicate_check.force_roles[0]"),
        "{problems}"
    );
    assert!(problems.contains("unknown role \\\"ceo\\\""), "{problems}");
    assert!(
        problems.contains("entities[1].duplicate_check.block"),
        "{problems}"
    );
}
