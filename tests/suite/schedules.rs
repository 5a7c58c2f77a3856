//! Scheduled rules: two nodes over one database run each slot once, owners hear of
//! their own records and a role of all of them, every run is logged, an administrator
//! can run a rule now, and bad rules are refused at publish with their path.

use chrono::{Duration, Utc};
use metacrm::plugin::schedules;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common;
use common::TestServer;

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "next_followup_date", "type": "date"}]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]},
      {"key": "finance", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "all"}]}
    ],
    "schedules": [
      {"key": "followups_due", "label": "今日待跟进提醒", "cron": "0 9 * * *",
       "notify": {"entity": "customer", "to": "owner",
        "filter": {"field": "next_followup_date", "op": "lte", "value": {"relative": "today"}},
        "title": "今日待跟进客户 {{ count }} 个",
        "body": "{% for r in records %}{{ r.title }}{% if not loop.last %}、{% endif %}{% endfor %}"}},
      {"key": "monthly", "cron": "0 9 1 * *",
       "notify": {"entity": "customer", "to": {"role": "finance"}, "title": "客户共 {{ count }} 个"}}
    ]})
}

async fn titles(server: &TestServer, token: &str) -> Vec<(String, String)> {
    server
        .notifications(token)
        .await
        .iter()
        .filter(|n| n["kind"] == "scheduled")
        .map(|n| {
            (
                n["title"].as_str().unwrap().to_string(),
                n["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_nodes_run_each_slot_once() {
    let server = TestServer::start(package()).await;
    let (_, alice) = server.user("alice", &["sales"], None).await;
    let (_, bob) = server.user("bob", &["sales"], None).await;
    let (_, fin) = server.user("fin", &["finance"], None).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    let due = today.to_string();
    let later = (today + Duration::days(30)).to_string();
    for (token, name, date) in [
        (&alice, "深圳市震华信息技术有限公司", &due),
        (&alice, "华润万家", &due),
        (&alice, "沃尔玛", &later),
        (&bob, "比亚迪", &due),
    ] {
        let created = server
            .call(
                token,
                Method::POST,
                "/api/data/customer",
                Some(json!({"name": name, "next_followup_date": date})),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }

    // The second node: another registry over the same database.
    let other = server.restart().await;
    let now = Utc::now();
    assert!(
        schedules::run_due(&server.tenant, now)
            .await
            .unwrap()
            .is_empty(),
        "a new rule starts its clock, it does not run for the past"
    );
    // Forty days on, a 09:00 slot and a first-of-the-month slot have both come;
    // both nodes look at once.
    let at = now + Duration::days(40);
    let (a, b) = tokio::join!(
        schedules::run_due(&server.tenant, at),
        schedules::run_due(&other.tenant, at)
    );
    let mut ran: Vec<String> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|r| r.schedule)
        .collect();
    ran.sort();
    assert_eq!(ran, ["followups_due", "monthly"], "each rule once");
    let again = schedules::run_due(&other.tenant, at + Duration::minutes(1))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    assert_eq!(
        titles(&server, &alice).await,
        [(
            "今日待跟进客户 2 个".to_string(),
            "深圳市震华信息技术有限公司、华润万家".to_string()
        )]
    );
    assert_eq!(
        titles(&server, &bob).await,
        [("今日待跟进客户 1 个".to_string(), "比亚迪".to_string())]
    );
    assert_eq!(
        titles(&server, &fin).await,
        [("客户共 4 个".to_string(), String::new())]
    );

    let overview = server.get("/api/schedules").await;
    assert_eq!(overview.status, 200, "{:?}", overview.body);
    let followups = &overview.body["items"][0];
    assert_eq!(followups["key"], "followups_due");
    assert!(followups["next_run"].is_string());
    let runs = followups["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "done");
    assert_eq!(runs[0]["notified"], 2);
    assert_eq!(
        runs[0]["detail"], "3 record(s)",
        "every record found, not per owner"
    );

    let now_run = server
        .post("/api/schedules/followups_due/run", json!({}))
        .await;
    assert_eq!(now_run.status, 200, "{:?}", now_run.body);
    assert_eq!(now_run.body["notified"], 2);
    assert_eq!(titles(&server, &alice).await.len(), 2);
    let unknown = server.post("/api/schedules/nothing/run", json!({})).await;
    assert_eq!(unknown.status, 404);
    let refused = server
        .call(&alice, Method::GET, "/api/schedules", None)
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn bad_rules_are_refused_with_their_path() {
    let server = TestServer::start(package()).await;
    let mut bad = package();
    bad["schedules"] = json!([
        {"key": "a", "cron": "0 9 * *",
         "notify": {"entity": "nothing", "to": "owner", "title": "x"}},
        {"key": "b", "cron": "0 9 * * 1-5",
         "notify": {"entity": "customer", "to": {"role": "nobody"}, "title": "{{ unclosed",
                    "filter": {"field": "name", "op": "frobnicate", "value": 1}}}
    ]);
    server
        .refused_paths(
            bad,
            &[
                "schedules[0].cron",
                "schedules[0].notify.entity",
                "schedules[1].notify.to.role",
                "schedules[1].notify.title",
            ],
        )
        .await;
    // The filter is compiled with the catalog once the rest is sound.
    let mut bad_filter = package();
    bad_filter["schedules"][0]["notify"]["filter"] =
        json!({"field": "name", "op": "frobnicate", "value": 1});
    let refused = server.put("/api/meta", bad_filter).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert!(
        refused.body["error"]["details"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("schedules[0].notify.filter"),
        "{:?}",
        refused.body
    );
}
