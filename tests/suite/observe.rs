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
    for expected in [
        r#"metacrm_http_requests_total{method="GET",route="/api/data/:name/:id",status="200"} 1"#,
        r#"metacrm_http_requests_total{method="POST",route="/api/data/:name",status="201"} 1"#,
        r#"metacrm_http_requests_total{method="GET",route="not_found",status="404"} 1"#,
        r#"metacrm_http_request_seconds_bucket{method="GET",route="/api/data/:name/:id",le="+Inf"} 1"#,
        "metacrm_tenants_active 1",
        &format!(
            r#"metacrm_outbox_pending{{tenant="{}"}}"#,
            server.tenant.key
        ),
        "metacrm_search_indexed_total",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
}
