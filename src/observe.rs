//! What operators watch: Prometheus metrics (`/metrics`), readiness (`/readyz`) and a
//! request id on every request and its log lines. Requests are counted by route —
//! the path with tenant-defined names and ids replaced (`/api/data/:entity/:id`), so
//! the series stay few — method and status, with a latency histogram.

use std::sync::LazyLock;
use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::tenant::Tenants;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: &str = "x-request-id";

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    indexed: IntCounter,
    outbox_pending: IntGaugeVec,
    tenants: IntGauge,
    leases: IntGauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new_custom(Some("metacrm".into()), None).expect("a valid prefix");
    let requests = IntCounterVec::new(
        Opts::new(
            "http_requests_total",
            "HTTP requests by route, method and status",
        ),
        &["route", "method", "status"],
    )
    .expect("valid metric");
    let latency = HistogramVec::new(
        HistogramOpts::new("http_request_seconds", "HTTP request latency by route").buckets(vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ]),
        &["route", "method"],
    )
    .expect("valid metric");
    let indexed = IntCounter::new(
        "search_indexed_total",
        "outbox rows the search indexer applied (its rate is the indexing rate)",
    )
    .expect("valid metric");
    let outbox_pending = IntGaugeVec::new(
        Opts::new(
            "outbox_pending",
            "outbox rows the search indexer has yet to apply",
        ),
        &["tenant"],
    )
    .expect("valid metric");
    let tenants =
        IntGauge::new("tenants_active", "tenants loaded in this process").expect("valid metric");
    let leases = IntGauge::new(
        "tenant_leases_held",
        "tenants whose background work (indexing, webhooks, schedules, jobs) this node does",
    )
    .expect("valid metric");
    for collector in [
        Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(latency.clone()),
        Box::new(indexed.clone()),
        Box::new(outbox_pending.clone()),
        Box::new(tenants.clone()),
        Box::new(leases.clone()),
    ] {
        registry.register(collector).expect("metrics register once");
    }
    Metrics {
        registry,
        requests,
        latency,
        indexed,
        outbox_pending,
        tenants,
        leases,
    }
});

/// Counts outbox rows the indexer applied.
pub fn count_indexed(rows: usize) {
    METRICS.indexed.inc_by(rows as u64);
}

/// A path as a route: ids, tenant-defined names and file names replaced.
pub fn route_label(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut route = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let previous = if i > 0 { segments[i - 1] } else { "" };
        let named = matches!(
            previous,
            "data"
                | "e"
                | "pool"
                | "reports"
                | "dashboards"
                | "import"
                | "export"
                | "schedules"
                | "designer"
                | "entities"
                | "files"
                | "print"
                | "convert"
                | "views"
        );
        let label = if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            ":id"
        } else if named && !segment.is_empty() && previous != "api" {
            ":name"
        } else if previous == "static" {
            "*"
        } else {
            segment
        };
        route.push(label);
        if label == "*" {
            break;
        }
    }
    route.join("/")
}

/// The middleware: a request id (the caller's, or a new one) on the request's span and
/// on the response, and the request counted and timed.
pub async fn around<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(new_request_id);
    let route = route_label(req.uri().path());
    let method = req.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, path = %route);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let mut response = match result {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    let status = response.status().as_u16().to_string();
    // Any path can be asked for: what matched nothing must not mint a series each.
    let route = if response.status() == poem::http::StatusCode::NOT_FOUND {
        "not_found".to_string()
    } else {
        route
    };
    METRICS
        .requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    METRICS
        .latency
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    span.in_scope(|| tracing::debug!(%status, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

fn new_request_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// `/metrics`: the request series, plus gauges read now — loaded tenants, leases held
/// and how far each one's search indexer is behind its outbox.
pub async fn render(tenants: &Tenants) -> String {
    let loaded = tenants.loaded_keys().await;
    METRICS.tenants.set(loaded.len() as i64);
    METRICS.leases.set(tenants.leases.held() as i64);
    for key in &loaded {
        let Ok(tenant) = tenants.get(key).await else {
            continue;
        };
        match crate::search::indexer::pending(&tenant.db).await {
            Ok(pending) => METRICS
                .outbox_pending
                .with_label_values(&[key.as_str()])
                .set(pending),
            Err(error) => tracing::warn!(tenant = %tenant.key, %error, "outbox lag unreadable"),
        }
    }
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut text)
        .expect("the text format encodes any metric");
    String::from_utf8(text).expect("the text format is UTF-8")
}

/// `/readyz`: the database answers and the search backend is reachable.
pub async fn readiness(tenants: &Tenants) -> (bool, Value) {
    let database = match tenants
        .platform
        .system()
        .execute_unprepared("SELECT 1")
        .await
    {
        Ok(_) => "ok".to_string(),
        Err(error) => error.to_string(),
    };
    let search = match tenants.search.ready().await {
        Ok(()) => "ok".to_string(),
        Err(error) => error.to_string(),
    };
    let ready = database == "ok" && search == "ok";
    (ready, json!({"database": database, "search": search}))
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn routes_name_no_record_and_no_tenant_word() {
        for (path, route) in [
            ("/api/data/customer/12", "/api/data/:name/:id"),
            ("/api/data/customer/query", "/api/data/:name/query"),
            (
                "/api/data/quote/5/print/formal",
                "/api/data/:name/:id/print/:name",
            ),
            ("/e/customer/5/edit", "/e/:name/:id/edit"),
            ("/api/reports/sales_funnel/run", "/api/reports/:name/run"),
            ("/api/approvals/7/approve", "/api/approvals/:id/approve"),
            ("/static/vendor/x/y.js", "/static/*"),
            (
                "/api/meta/entities/customer/form",
                "/api/meta/entities/:name/form",
            ),
            ("/", "/"),
        ] {
            assert_eq!(route_label(path), route, "{path}");
        }
    }
}
