//! Follow-up cycles and the public pool, with the clock controlled by the test: due
//! lists at day boundaries, activities counting as contacts, reclaim, claim limits.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::TestServer;
use metacrm::auth::Access;
use metacrm::clock;
use metacrm::workflow::{followups, jobs};
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1, "entities": [
        {"key": "customer", "label": "客户", "title_field": "name", "fields": [
            {"key": "name", "type": "text", "required": true},
            {"key": "category", "type": "select", "options": [
                {"value": "intent", "label": "意向客户"}, {"value": "nurture", "label": "培育客户"},
                {"value": "potential", "label": "潜在客户"}]}
         ],
         "followup": {"field": "category", "days": {"intent": 5, "nurture": 10, "potential": 30},
                      "activity": {"entity": "visit", "field": "customer"}},
         "pool": {"reclaim_after_days": 30, "claim_limit": 2}},
        {"key": "visit", "label": "联系记录", "title_field": "note", "fields": [
            {"key": "customer", "type": "reference", "target": "customer", "required": true},
            {"key": "note", "type": "text"}]},
        {"key": "memo", "title_field": "title", "fields": [{"key": "title", "type": "text"}]}
    ], "flows": [
        {"key": "vip", "label": "大客户审批", "entity": "customer",
         "steps": [{"key": "review", "approvers": {"role": "sales"}}]}
    ], "roles": [
        {"key": "sales", "permissions": [
            {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"},
            {"entity": "visit", "actions": ["create", "read"], "scope": "own"}]}
    ]})
}

/// The tenant-local midnight `days` after the local day of `instant`.
fn midnight_after(instant: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    clock::start_of_day(clock::date_of(instant) + Duration::days(days))
}

async fn due_ids(server: &TestServer, now: DateTime<Utc>) -> Vec<(i64, i64)> {
    let catalog = server.tenant.catalog().await;
    let entity = catalog.entity("customer").unwrap();
    followups::due_for_entity(&server.tenant.db, entity, &Access::full(1), now, 100)
        .await
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_i64().unwrap(),
                item["overdue_days"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A customer made of `record` whose last contact was at `contacted`; answers its id.
async fn customer_contacted(server: &TestServer, record: Value, contacted: DateTime<Utc>) -> i64 {
    let id = server.create("customer", record).await["id"]
        .as_i64()
        .unwrap();
    followups::touch(
        &server.tenant.db.conn(),
        &server.tenant.db,
        "customer",
        id,
        contacted,
    )
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn due_lists_follow_the_cycle_at_day_boundaries() {
    let server = TestServer::start(package()).await;
    let created = Utc::now();
    let intent = server
        .create("customer", json!({"name": "意向", "category": "intent"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let nurture = server
        .create("customer", json!({"name": "培育", "category": "nurture"}))
        .await["id"]
        .as_i64()
        .unwrap();
    server.create("customer", json!({"name": "未分类"})).await;
    // Intent is due on the 5th local day after creation, not a second before.
    assert_eq!(
        due_ids(&server, midnight_after(created, 5) - Duration::seconds(1)).await,
        vec![]
    );
    assert_eq!(
        due_ids(&server, midnight_after(created, 5)).await,
        vec![(intent, 0)]
    );
    // Most overdue first: on day 12 intent is 7 days over, nurture 2.
    assert_eq!(
        due_ids(&server, midnight_after(created, 12)).await,
        vec![(intent, 7), (nurture, 2)]
    );
    // A visit is a contact: it restarts the cycle of the customer it refers to.
    let visit = server
        .post(
            "/api/data/visit",
            json!({"customer": intent, "note": "上门拜访"}),
        )
        .await;
    assert_eq!(visit.status, 201, "{:?}", visit.body);
    let record = server
        .get(&format!("/api/data/customer/{intent}"))
        .await
        .body;
    assert!(record["last_contact_at"].is_string(), "{record:?}");
    let visited = Utc::now();
    assert_eq!(
        due_ids(&server, midnight_after(visited, 5) - Duration::seconds(1)).await,
        vec![]
    );
    // Clients cannot write the clock themselves; sending it back is ignored.
    let echoed = server
        .patch(
            &format!("/api/data/customer/{intent}"),
            json!({"last_contact_at": "2000-01-01T00:00:00Z", "name": "意向2"}),
            None,
        )
        .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body["last_contact_at"], record["last_contact_at"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_due_list_over_http_is_scoped_and_ordered() {
    let server = TestServer::start(package()).await;
    let (rep, token) = server.user("rep", &["sales"], None).await;
    let mine = server
        .create(
            "customer",
            json!({"name": "我的", "category": "intent", "owner": rep}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let theirs = server
        .create("customer", json!({"name": "别人的", "category": "intent"}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Both were last contacted long ago.
    for (id, days) in [(mine, 20), (theirs, 40)] {
        followups::touch(
            &server.tenant.db.conn(),
            &server.tenant.db,
            "customer",
            id,
            Utc::now() - Duration::days(days),
        )
        .await
        .unwrap();
    }
    let admin = server.get("/api/followups/due").await;
    assert_eq!(admin.status, 200);
    let ids: Vec<i64> = admin.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![theirs, mine], "most overdue first");
    assert_eq!(admin.body["items"][0]["title"], json!("别人的"));
    let rep_view = server
        .call(&token, Method::GET, "/api/followups/due", None)
        .await;
    let ids: Vec<i64> = rep_view.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![mine], "only what the caller may read");
    let other = server.get("/api/followups/due?entity=memo").await;
    assert_eq!(other.body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_reclaims_neglected_records_and_limits_claims() {
    let server = TestServer::start(package()).await;
    let (rep1, token1) = server.user("rep1", &["sales"], None).await;
    let (rep2, token2) = server.user("rep2", &["sales"], None).await;
    let mut neglected = Vec::new();
    for index in 0..3 {
        let record =
            json!({"name": format!("冷落{index}"), "owner": rep1, "category": "potential"});
        neglected.push(customer_contacted(&server, record, Utc::now() - Duration::days(31)).await);
    }
    let recent = customer_contacted(
        &server,
        json!({"name": "常联系", "owner": rep2}),
        Utc::now() - Duration::days(29),
    )
    .await;

    let due_ids = || async {
        let due = server.get("/api/followups/due").await.body;
        due["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    let due_before_reclaim = due_ids().await;
    assert!(neglected.iter().all(|id| due_before_reclaim.contains(id)));

    let reports = jobs::run(&server.tenants, Some(&server.tenant.key), Utc::now())
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].count, 3);
    assert_eq!(reports[0].entity, "customer");
    // Idempotent: a second run finds nothing.
    assert!(
        jobs::run(&server.tenants, Some(&server.tenant.key), Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let record = server
        .get(&format!("/api/data/customer/{}", neglected[0]))
        .await
        .body;
    assert_eq!(record["owner"], Value::Null);
    let history = server
        .get(&format!("/api/data/customer/{}/history", neglected[0]))
        .await
        .body;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], json!("reclaim"));
    assert_eq!(last["changes"]["owner"], json!([rep1, null]));
    // Overdue as they are, records in the pool are nobody's to follow up.
    let due_after_reclaim = due_ids().await;
    assert!(neglected.iter().all(|id| !due_after_reclaim.contains(id)));
    assert_eq!(
        server
            .get(&format!("/api/data/customer/{recent}"))
            .await
            .body["owner"],
        json!(rep2)
    );
    let notices = server
        .call(&token1, Method::GET, "/api/notifications", None)
        .await;
    assert_eq!(
        notices.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "pool_reclaim")
            .count(),
        3
    );
    // rep1 no longer sees them; the pool shows them to every reader.
    let own = server
        .call(
            &token1,
            Method::POST,
            "/api/data/customer/query",
            Some(json!({})),
        )
        .await;
    assert_eq!(own.body["items"], json!([]));
    let pool = server
        .call(
            &token2,
            Method::POST,
            "/api/pool/customer/query",
            Some(json!({})),
        )
        .await;
    assert_eq!(pool.status, 200, "{:?}", pool.body);
    assert_eq!(pool.body["items"].as_array().unwrap().len(), 3);
    // Claims: two a day, then refused; a record outside the pool cannot be claimed.
    for id in &neglected[..2] {
        let claimed = server
            .call(
                &token2,
                Method::POST,
                &format!("/api/pool/customer/{id}/claim"),
                None,
            )
            .await;
        assert_eq!(claimed.status, 200, "{:?}", claimed.body);
        assert_eq!(claimed.body["owner"], json!(rep2));
        assert!(
            claimed.body["last_contact_at"].is_string(),
            "a claim restarts the clock"
        );
    }
    let over = server
        .call(
            &token2,
            Method::POST,
            &format!("/api/pool/customer/{}/claim", neglected[2]),
            None,
        )
        .await;
    assert_eq!(over.status, 409, "{:?}", over.body);
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    let taken = server
        .call(
            &token1,
            Method::POST,
            &format!("/api/pool/customer/{}/claim", neglected[0]),
            None,
        )
        .await;
    assert_eq!(taken.status, 404, "already claimed by someone else");
    let third = server
        .call(
            &token1,
            Method::POST,
            &format!("/api/pool/customer/{}/claim", neglected[2]),
            None,
        )
        .await;
    assert_eq!(third.status, 200, "limits are per user");
    let no_pool = server.post("/api/pool/memo/query", json!({})).await;
    assert_eq!(no_pool.status, 404);
    // Claimed records are not reclaimed at once: the clock restarted.
    assert!(
        jobs::run(&server.tenants, Some(&server.tenant.key), Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The reclaim takes a record on the day its last contact turns `reclaim_after_days`
/// old (tenant calendar days), not a second before; a record under a pending approval
/// stays with its owner; the daily claim limit starts again the next day.
#[tokio::test(flavor = "multi_thread")]
async fn the_reclaim_keeps_to_the_calendar_and_to_approvals() {
    use metacrm::workflow::pool;
    let server = TestServer::start(package()).await;
    let (rep1, _) = server.user("rep1", &["sales"], None).await;
    let contacted = Utc::now() - Duration::days(40);
    let mut ids = Vec::new();
    for name in ["到期", "审批中", "到期2", "到期3"] {
        ids.push(
            customer_contacted(&server, json!({"name": name, "owner": rep1}), contacted).await,
        );
    }
    let (due, locked) = (ids[0], ids[1]);
    let submitted = server
        .post(
            &format!("/api/data/customer/{locked}/submit"),
            json!({"flow": "vip"}),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    let server = &server;
    let owner = |id: i64| async move {
        server.get(&format!("/api/data/customer/{id}")).await.body["owner"].clone()
    };
    let reclaim_at = |now: DateTime<Utc>| async move {
        jobs::run(&server.tenants, Some(&server.tenant.key), now)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.job == "pool_reclaim")
            .map(|r| r.count)
            .sum::<u64>()
    };
    // The last second of the 29th day after the contact's day: still the rep's.
    let day_30 = midnight_after(contacted, 30);
    assert_eq!(reclaim_at(day_30 - Duration::seconds(1)).await, 0);
    assert_eq!(owner(due).await, json!(rep1));
    // The 30th day begins: back to the pool; the record under approval stays.
    assert_eq!(reclaim_at(day_30).await, 3);
    assert_eq!(owner(due).await, Value::Null);
    assert_eq!(owner(locked).await, json!(rep1));

    // Claims: the limit (2 a day) counts today's claims only.
    let catalog = server.tenant.catalog().await;
    let customers = catalog.entity("customer").unwrap();
    let db = &server.tenant.db;
    let pooled = [due, ids[2], ids[3]];
    let now = Utc::now();
    for id in &pooled[..2] {
        pool::claim(db, &catalog, customers, *id, rep1, now)
            .await
            .unwrap();
    }
    let refused = pool::claim(db, &catalog, customers, pooled[2], rep1, now).await;
    assert!(refused.is_err(), "a third claim the same day");
    let tomorrow = midnight_after(now, 1);
    let claimed = pool::claim(db, &catalog, customers, pooled[2], rep1, tomorrow)
        .await
        .unwrap();
    assert_eq!(claimed["owner"], json!(rep1));
}

/// With `hold_limit`, a user who owns that many records claims no more.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_holding_the_limit_claims_no_more() {
    let mut limited = package();
    limited["entities"][0]["pool"]["hold_limit"] = json!(1);
    let server = TestServer::start(limited).await;
    let (rep1, token1) = server.user("rep1", &["sales"], None).await;
    let (rep2, token2) = server.user("rep2", &["sales"], None).await;
    server
        .create("customer", json!({"name": "已有客户", "owner": rep1}))
        .await;
    let pooled = customer_contacted(
        &server,
        json!({"name": "公海客户", "owner": rep2}),
        Utc::now() - Duration::days(40),
    )
    .await;
    jobs::run(&server.tenants, Some(&server.tenant.key), Utc::now())
        .await
        .unwrap();
    let claim = |token: String| {
        let server = &server;
        async move {
            server
                .call(
                    &token,
                    Method::POST,
                    &format!("/api/pool/customer/{pooled}/claim"),
                    None,
                )
                .await
        }
    };
    let refused = claim(token1).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from 1 on"),
        "{:?}",
        refused.body
    );
    let claimed = claim(token2).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    assert_eq!(claimed.body["owner"], json!(rep2));
}

/// `metacrm jobs run` runs the jobs once, from another process, and says what they did;
/// a second run has nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_from_the_command_line() {
    let server = TestServer::start(package()).await;
    let (rep1, _) = server.user("rep1", &["sales"], None).await;
    let id = customer_contacted(
        &server,
        json!({"name": "久未联系", "owner": rep1}),
        Utc::now() - Duration::days(40),
    )
    .await;
    let run = || {
        common::run_command(common::metacrm_command(server.dir.path()).args([
            "jobs",
            "run",
            "--tenant",
            &server.tenant.key,
        ]))
    };
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "{}: pool_reclaim 1 record(s) of customer",
            server.tenant.key
        )),
        "{text}"
    );
    assert_eq!(
        server.get(&format!("/api/data/customer/{id}")).await.body["owner"],
        Value::Null
    );
    let (ok, text) = run();
    assert!(ok && text.contains("jobs done: 0 change(s)"), "{text}");
}

/// The scheduler `serve` runs (`--jobs-interval`) reclaims on its own.
#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_reclaims_on_its_own() {
    let scratch = common::ScratchDatabase::create("jobs").await;
    let server = TestServer::start_alone(package(), scratch.as_ref()).await;
    let (rep1, _) = server.user("rep1", &["sales"], None).await;
    let id = customer_contacted(
        &server,
        json!({"name": "久未联系", "owner": rep1}),
        Utc::now() - Duration::days(40),
    )
    .await;
    let scheduler = tokio::spawn(jobs::run_every(
        server.tenants.clone(),
        std::time::Duration::from_millis(100),
    ));
    let path = format!("/api/data/customer/{id}");
    let mut owner = json!(rep1);
    for _ in 0..200 {
        owner = server.get(&path).await.body["owner"].clone();
        if owner.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    scheduler.abort();
    assert_eq!(owner, Value::Null, "reclaimed within 10 seconds");
    let history = server.get(&format!("{path}/history")).await.body;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], json!("reclaim"));
}

/// How the database would run the due list (first category) for everyone and for the
/// rep `rep` alone, and the reclaim's next batch: the three plans, joined by " | ".
async fn due_and_reclaim_plans(server: &TestServer, rep: i64) -> String {
    use metacrm::auth::OwnerIndex;
    use metacrm::meta::Scope;
    use metacrm::workflow::pool;
    let catalog = server.tenant.catalog().await;
    let entity = catalog.entity("customer").unwrap();
    let db = &server.tenant.db;
    let today = clock::date_of(Utc::now());
    let everyone = Access::full(1);
    let own = Access::scoped(
        rep,
        Scope::Own,
        Some([rep].into_iter().collect()),
        OwnerIndex::Use,
        Default::default(),
        Default::default(),
    );
    let due =
        |access| followups::due_query(db, entity, access, "category", ("intent", 5), today, 100);
    let batch = pool::next_batch_query(db, entity, followups::due_before(today, 30));
    let mut plans = Vec::new();
    for select in [due(&everyone), due(&own), batch] {
        plans.push(common::explain(&server.tenant, &select).await);
    }
    plans.join(" | ")
}

const LAST_CONTACT_INDEX: &str = "ix_customer_last_contact_at";
const OWNER_LAST_CONTACT_INDEX: &str = "ix_customer__owner_last_contact";

/// Whether the three plans read the indexes they should: the last-contact index for
/// everyone's due list and the reclaim, the owner's for the rep's due list.
fn read_the_contact_indexes(plans: &str) -> bool {
    let plans: Vec<&str> = plans.split(" | ").collect();
    plans[0].contains(LAST_CONTACT_INDEX)
        && plans[1].contains(OWNER_LAST_CONTACT_INDEX)
        && plans[2].contains(LAST_CONTACT_INDEX)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_due_list_and_the_reclaim_read_the_last_contact_indexes() {
    let server = TestServer::start(package()).await;
    for (index, category) in ["intent", "nurture", "potential"].iter().enumerate() {
        server
            .create(
                "customer",
                json!({"name": format!("客户{index}"), "category": category}),
            )
            .await;
    }
    let rep = 1;
    let plans = due_and_reclaim_plans(&server, rep).await;
    assert!(read_the_contact_indexes(&plans), "{plans}");

    // A tenant from before: the index on the bare column, under the same name, and
    // no index by owner.
    common::put_back_plain_index(
        &server.tenant,
        ("e_customer", LAST_CONTACT_INDEX, "last_contact_at"),
        &[OWNER_LAST_CONTACT_INDEX],
        "m0015_tenant",
    )
    .await;
    let plans = due_and_reclaim_plans(&server, rep).await;
    assert!(
        !plans.contains(LAST_CONTACT_INDEX) && !plans.contains(OWNER_LAST_CONTACT_INDEX),
        "the bare column's index serves no statement: {plans}"
    );

    // Its next start rebuilds the one and adds the other; nothing else changes.
    let restarted = server.restart().await;
    let definition = common::index_definition(&restarted.tenant, LAST_CONTACT_INDEX).await;
    assert!(
        definition.contains("COALESCE") && definition.contains("IS NOT NULL"),
        "{definition}"
    );
    let plans = due_and_reclaim_plans(&restarted, rep).await;
    assert!(read_the_contact_indexes(&plans), "{plans}");
    let everyone = Access::full(1);
    let due = followups::due_for_entity(
        &restarted.tenant.db,
        restarted.tenant.catalog().await.entity("customer").unwrap(),
        &everyone,
        Utc::now() + Duration::days(40),
        100,
    )
    .await
    .unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
}
