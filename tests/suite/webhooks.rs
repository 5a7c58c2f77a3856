//! Webhooks against a real local HTTP receiver started by the test: the signature
//! verifies, a failing receiver gets retries with backoff, nothing is lost across a
//! server restart, the delivery log shows every attempt, redelivery sends again, and a
//! chat robot gets its text.

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use metacrm::plugin::webhooks;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Request, Response, handler, http::StatusCode, web::Data};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common;
use common::TestServer;

const SECRET: &str = "a-long-shared-secret";

/// What the receiver was sent.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    signature: Option<String>,
    timestamp: Option<String>,
    pub(crate) body: String,
}

/// A receiver that answers 500 to its first `failures` requests, then 200.
#[derive(Default)]
pub(crate) struct Receiver {
    failures: usize,
    pub(crate) received: Vec<Received>,
}

#[handler]
async fn receive(request: &Request, body: String, state: Data<&Arc<Mutex<Receiver>>>) -> Response {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let mut state = state.0.lock().unwrap();
    state.received.push(Received {
        path: request.uri().path().to_string(),
        signature: header(webhooks::SIGNATURE_HEADER),
        timestamp: header(webhooks::TIMESTAMP_HEADER),
        body,
    });
    if state.received.len() <= state.failures {
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("down for maintenance")
    } else {
        Response::builder().status(StatusCode::OK).body("ok")
    }
}

pub(crate) async fn start_receiver(failures: usize) -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver {
        failures,
        received: Vec::new(),
    }));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    let app = poem::Route::new()
        .at("/*path", poem::post(receive))
        .data(state.clone());
    tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(app)
            .await
            .unwrap();
    });
    (format!("http://127.0.0.1:{port}"), state)
}

fn package(receiver: &str) -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "deal", "label": "商机", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "amount", "type": "decimal", "scale": 2}],
       "pipeline": {"stages": [{"key": "open", "label": "初步接触"}, {"key": "quote", "label": "报价"},
                                {"key": "won", "label": "签单", "won": true}],
        "transitions": "forward"}},
      {"key": "note", "fields": [{"key": "text", "type": "text"}]}
    ],
    "roles": [{"key": "sales", "permissions": [
        {"entity": "deal", "actions": ["create", "read", "update"], "scope": "own"}]}],
    "webhooks": [
      {"key": "erp", "url": format!("{receiver}/erp"), "entity": "deal",
       "events": ["created", "stage_changed"], "secret": SECRET},
      {"key": "robot", "url": format!("{receiver}/robot"), "entity": "deal",
       "events": ["stage_changed"], "when": "stage == 'won'", "format": "chat_text",
       "text": "{{ entity }}「{{ title }}」{{ event }}，金额 {{ record.amount }} 元"}
    ]})
}

fn received(state: &Arc<Mutex<Receiver>>) -> Vec<Received> {
    state.lock().unwrap().received.clone()
}

async fn dispatch(server: &TestServer, at: chrono::DateTime<Utc>) {
    webhooks::run(&server.tenant, &reqwest::Client::new(), at)
        .await
        .unwrap();
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_survive_a_restart() {
    let (receiver, state) = start_receiver(2).await;
    let server = TestServer::start(package(&receiver)).await;
    let created = server
        .post(
            "/api/data/deal",
            json!({"name": "震华信息 ERP 项目", "amount": "128000.00"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    // Notes have no webhook: they queue nothing.
    server.post("/api/data/note", json!({"text": "x"})).await;

    let now = Utc::now();
    dispatch(&server, now).await;
    assert_eq!(received(&state).len(), 1, "the first attempt");
    dispatch(&server, now + Duration::seconds(10)).await;
    assert_eq!(
        received(&state).len(),
        1,
        "a failed delivery waits for its backoff"
    );

    // A restart in the middle: the delivery row carries on.
    let restarted = server.restart().await;
    dispatch(&restarted, now + Duration::seconds(31)).await;
    assert_eq!(received(&state).len(), 2, "retried after 30 s");
    dispatch(&restarted, now + Duration::seconds(31 + 59)).await;
    assert_eq!(received(&state).len(), 2, "the second backoff is a minute");
    dispatch(&restarted, now + Duration::seconds(31 + 61)).await;
    let sent = received(&state);
    assert_eq!(sent.len(), 3, "delivered on the third attempt");

    let last = &sent[2];
    assert_eq!(last.path, "/erp");
    let body: Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(body["event"], "created");
    assert_eq!(body["entity"], "deal");
    assert_eq!(body["id"], id);
    assert_eq!(body["title"], "震华信息 ERP 项目");
    assert_eq!(
        body["record"]["amount"], created.body["amount"],
        "the record as the API shows it"
    );
    let timestamp: i64 = last.timestamp.as_deref().unwrap().parse().unwrap();
    assert_eq!(
        last.signature.as_deref().unwrap(),
        webhooks::signature(SECRET, timestamp, &last.body),
        "the receiver can verify the delivery"
    );
    assert_ne!(
        last.signature.as_deref().unwrap(),
        webhooks::signature("another-secret-entirely", timestamp, &last.body)
    );

    let log = restarted.get("/api/webhooks/deliveries?webhook=erp").await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(items[0]["attempts"], 3);
    assert_eq!(items[0]["last_status"], 200);
    assert_eq!(items[0]["last_response"], "ok");

    // A stage change reaches the ERP; the robot hears only of won deals, in text.
    let quoted = restarted
        .post(
            &format!("/api/data/deal/{id}/stage"),
            json!({"to": "quote"}),
        )
        .await;
    assert_eq!(quoted.status, 200, "{:?}", quoted.body);
    dispatch(&restarted, now + Duration::seconds(150)).await;
    let sent = received(&state);
    assert_eq!(
        sent.len(),
        4,
        "the robot's condition does not hold: {sent:?}"
    );
    let moved = restarted
        .post(&format!("/api/data/deal/{id}/stage"), json!({"to": "won"}))
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    dispatch(&restarted, now + Duration::seconds(200)).await;
    let sent = received(&state);
    assert_eq!(sent.len(), 6, "{sent:?}");
    let robot = sent.iter().find(|r| r.path == "/robot").expect("the robot");
    let robot: Value = serde_json::from_str(&robot.body).unwrap();
    assert_eq!(
        robot,
        json!({"msgtype": "text", "text": {"content": format!("商机「震华信息 ERP 项目」阶段变更，金额 {} 元", created.body["amount"])}})
    );
    let erp = &sent.iter().rfind(|r| r.path == "/erp").unwrap().body;
    let erp: Value = serde_json::from_str(erp).unwrap();
    assert_eq!(erp["event"], "stage_changed");
    assert_eq!(erp["record"]["stage"], "won");

    // Redelivery sends the first delivery once more.
    let first = items[0]["id"].as_i64().unwrap();
    let again = restarted
        .post(
            &format!("/api/webhooks/deliveries/{first}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    dispatch(&restarted, now + Duration::seconds(300)).await;
    let sent = received(&state);
    assert_eq!(sent.len(), 7);
    let resent: Value = serde_json::from_str(&sent[6].body).unwrap();
    assert_eq!(resent["event"], "created");
    let missing = restarted
        .post("/api/webhooks/deliveries/999999/redeliver", json!({}))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_given_up_and_the_log_is_for_admins() {
    let (receiver, state) = start_receiver(usize::MAX).await;
    let server = TestServer::start(package(&receiver)).await;
    let created = server
        .post("/api/data/deal", json!({"name": "华润万家"}))
        .await;
    assert_eq!(created.status, 201);
    let mut at = Utc::now();
    for attempt in 1..=webhooks::MAX_ATTEMPTS {
        dispatch(&server, at).await;
        at += webhooks::backoff(attempt) + Duration::seconds(1);
    }
    dispatch(&server, at + Duration::days(1)).await;
    assert_eq!(
        received(&state).len(),
        webhooks::MAX_ATTEMPTS as usize,
        "no attempt after the last"
    );
    let log = server.get("/api/webhooks/deliveries?status=failed").await;
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", log.body);
    assert_eq!(items[0]["last_status"], 500);
    assert_eq!(items[0]["last_response"], "down for maintenance");

    let (_, sales) = server.user("sales1", &["sales"], None).await;
    for path in ["/api/webhooks", "/api/webhooks/deliveries"] {
        let refused = server.call(&sales, Method::GET, path, None).await;
        assert_eq!(refused.status, 403, "{path}");
    }
    let meta = server.call(&sales, Method::GET, "/api/meta", None).await;
    assert_eq!(meta.status, 200);
    assert!(
        meta.body["webhooks"][0].get("secret").is_none(),
        "secrets are for administrators: {:?}",
        meta.body["webhooks"][0]
    );
    let listed = server.get("/api/webhooks").await;
    assert_eq!(listed.body["items"][0]["signed"], true);
    assert!(listed.body["items"][0].get("secret").is_none());
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_their_path() {
    let server = TestServer::start(package("http://127.0.0.1:9")).await;
    let mut bad = package("http://127.0.0.1:9");
    bad["webhooks"] = json!([
        {"key": "a", "url": "ftp://example.com", "events": ["created"]},
        {"key": "b", "url": "http://127.0.0.1:9/x", "events": [], "entity": "nothing"},
        {"key": "c", "url": "http://127.0.0.1:9/x", "events": ["created"], "secret": "short",
         "format": "chat_text", "text": "{{ unclosed"},
        {"key": "d", "url": "http://127.0.0.1:9/x", "events": ["created"], "when": "stage == 'won'"},
        {"key": "e", "url": "http://127.0.0.1:9/x", "events": ["created"], "entity": "deal",
         "when": "nosuchfield == 1"}
    ]);
    server
        .refused_paths(
            bad,
            &[
                "webhooks[0].url",
                "webhooks[1].events",
                "webhooks[1].entity",
                "webhooks[2].secret",
                "webhooks[2].text",
                "webhooks[3].when",
                "webhooks[4].when",
            ],
        )
        .await;
}

#[tokio::test]
async fn approval_verdicts_are_webhook_events() {
    let (receiver, state) = start_receiver(0).await;
    let mut package = package(&receiver);
    package["flows"] = json!([{"key": "review", "label": "合同评审", "entity": "deal",
        "trigger": {"on": "submit"},
        "steps": [{"key": "mgr", "approvers": {"role": "mgr"}}],
        "on_approve": {"set": {"amount": "1.00"}}}]);
    package["roles"] = json!([{"key": "mgr", "permissions": [
        {"entity": "deal", "actions": ["read", "update"], "scope": "all"}]}]);
    package["webhooks"] = json!([{"key": "verdicts", "url": format!("{receiver}/verdicts"),
        "events": ["approved", "rejected"]}]);
    let server = TestServer::start(package).await;
    let (_, manager) = server.user("mgr1", &["mgr"], None).await;
    let mut decided = Vec::new();
    for (name, verdict) in [("甲方合同", "approve"), ("乙方合同", "reject")] {
        let deal = server.post("/api/data/deal", json!({"name": name})).await;
        let id = deal.body["id"].as_i64().unwrap();
        let submitted = server
            .post(
                &format!("/api/data/deal/{id}/submit"),
                json!({"flow": "review"}),
            )
            .await;
        assert_eq!(submitted.status, 200, "{:?}", submitted.body);
        let approval = submitted.body["id"].as_i64().unwrap();
        let acted = server
            .call(
                &manager,
                Method::POST,
                &format!("/api/approvals/{approval}/{verdict}"),
                Some(json!({"comment": "意见"})),
            )
            .await;
        assert_eq!(acted.status, 200, "{:?}", acted.body);
        decided.push(id);
    }
    dispatch(&server, Utc::now()).await;
    let bodies: Vec<Value> = received(&state)
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies.len(),
        2,
        "created and updated are not listened to: {bodies:?}"
    );
    assert_eq!(bodies[0]["event"], "approved");
    assert_eq!(bodies[0]["id"], decided[0]);
    assert_eq!(
        bodies[0]["record"]["amount"],
        server
            .get(&format!("/api/data/deal/{}", decided[0]))
            .await
            .body["amount"],
        "the record as the flow's effects left it"
    );
    assert_eq!(bodies[1]["event"], "rejected");
    assert_eq!(bodies[1]["id"], decided[1]);
}
