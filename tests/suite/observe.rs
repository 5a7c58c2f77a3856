//! What operators watch: liveness and readiness, Prometheus metrics by route and
//! status with latency and outbox lag, and a request id on every answer.

use serde_json::json;

use crate::common;
use common::TestServer;

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "title_field": "name", "fields": [{"key": "name", "type": "text", "searchable": true}]}
    ]}))
    .await;
    let get = |path: &str| server.client.get(format!("{}{path}", server.base));

    let live = get("/healthz").send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"database": "ok", "search": "ok"}));

    // The caller's request id comes back; without one, the server makes one.
    let traced = get("/healthz")
        .header("x-request-id", "req-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "req-7f3a");
    let fresh = get("/healthz").send().await.unwrap();
    let id = fresh.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16, "{id}");

    let created = server
        .create("customer", json!({"name": "深圳市震华信息技术有限公司"}))
        .await;
    let path = format!("/api/data/customer/{}", created["id"]);
    assert_eq!(server.get(&path).await.status, 200);
    assert_eq!(server.get("/api/data/customer/999999").await.status, 404);

    let metrics = get("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    // The series are process-wide and other tests run beside this one: each must be
    // there and count this test's request, whatever the others added.
    let value_of = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse::<f64>().ok())
    };
    for series in [
        r#"metacrm_http_requests_total{method="GET",route="/api/data/:name/:id",status="200"}"#,
        r#"metacrm_http_requests_total{method="POST",route="/api/data/:name",status="201"}"#,
        r#"metacrm_http_requests_total{method="GET",route="not_found",status="404"}"#,
        r#"metacrm_http_request_seconds_bucket{method="GET",route="/api/data/:name/:id",le="+Inf"}"#,
        "metacrm_tenants_active",
        &format!(
            r#"metacrm_outbox_pending{{tenant="{}"}}"#,
            server.tenant.key
        ),
        "metacrm_search_indexed_total",
    ] {
        let value = value_of(series);
        assert!(value.is_some(), "{series} not in:\n{text}");
        if !series.contains("outbox_pending") && !series.contains("indexed_total") {
            assert!(value >= Some(1.0), "{series} = {value:?} in:\n{text}");
        }
    }
}

/// Rate limits: a user over their limit gets 429 with Retry-After, a colleague is not
/// held up by it, and the tenant's limit holds for everyone together.
#[tokio::test]
async fn rate_limits_per_user_and_per_tenant() {
    use metacrm::auth::rate::{Rate, RateLimits};
    let server = TestServer::start(json!({"format": 1, "entities": [
        {"key": "customer", "title_field": "name", "fields": [{"key": "name", "type": "text"}]}
    ]}))
    .await;
    let (_, colleague) = server.user("rep2", &[], None).await;
    server.tenants.set_rate_limits(RateLimits::new(
        Rate::every(std::time::Duration::from_secs(60), 5),
        Rate::every(std::time::Duration::from_secs(60), 8),
    ));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(server.get("/api/meta").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let refused = server
        .client
        .get(format!("{}/api/meta", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");

    // The colleague has a budget of their own, until the tenant's runs out.
    let mut theirs = Vec::new();
    for _ in 0..4 {
        theirs.push(
            server
                .call(&colleague, reqwest::Method::GET, "/api/meta", None)
                .await
                .status,
        );
    }
    assert_eq!(theirs, [200, 200, 200, 429]);
}
