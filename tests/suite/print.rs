//! Printed documents: a quote with the letterhead and logo, its lines, totals and the
//! amount in capitals; the built-in format; sandboxed templates that fail cleanly.

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

const QUOTE: &str = r#"<h1>报价单</h1>
<p>客户：{{ record.customer }}　编号：{{ record.code }}</p>
<table><thead><tr><th>品名</th><th>数量</th><th>金额</th></tr></thead>
{% for line in children.quote_line.rows %}<tr><td>{{ line.item }}</td><td>{{ line.quantity }}</td><td class="number">{{ line.amount|money }}</td></tr>{% endfor %}
</table>
<p>明细合计：{{ children.quote_line.totals.amount|money }}</p>
<p>总金额：￥{{ raw.total|money }}　大写：{{ raw.total|rmb_upper }}</p>
<div class="page-break"></div><p>附：条款</p>"#;

fn package(logo: Option<&str>, template: &str) -> Value {
    json!({"format": 1,
    "branding": {"company": "深圳市震华信息技术有限公司", "address": "深圳市南山区科技园", "phone": "0755-86001234",
                 "logo": logo, "footer": "本报价单有效期30天"},
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "label": "客户名称", "type": "text", "required": true}]},
      {"key": "quote", "label": "报价单", "title_field": "code", "fields": [
          {"key": "code", "label": "报价单号", "type": "text"},
          {"key": "customer", "label": "客户", "type": "reference", "target": "customer"},
          {"key": "total", "label": "总金额", "type": "decimal", "scale": 2}],
       "prints": [{"key": "formal", "label": "正式报价单", "template": template}]},
      {"key": "quote_line", "label": "报价明细", "fields": [
          {"key": "quote", "label": "报价单", "type": "reference", "target": "quote"},
          {"key": "item", "label": "品名", "type": "text"},
          {"key": "quantity", "label": "数量", "type": "integer"},
          {"key": "amount", "label": "金额", "type": "decimal", "scale": 2}]}
    ],
    "roles": [{"key": "outsider", "permissions": [{"entity": "customer", "actions": ["read"], "scope": "own"}]}]})
}

async fn print(server: &TestServer, token: &str, path: &str) -> (u16, String, Option<String>) {
    let fetched = server.fetch(token, path).await;
    let csp = fetched.header("content-security-policy");
    (
        fetched.status,
        String::from_utf8(fetched.bytes).unwrap(),
        csp,
    )
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[tokio::test]
async fn a_quote_prints_with_letterhead_lines_totals_and_capitals() {
    let server = TestServer::start(package(None, QUOTE)).await;
    let logo = server.upload("logo.png", PNG).await["file"]
        .as_str()
        .unwrap()
        .to_string();
    let applied = server.put("/api/meta", package(Some(&logo), QUOTE)).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let customer = server
        .create("customer", json!({"name": "广州<白云>电器"}))
        .await;
    let quote = server
        .create(
            "quote",
            json!({"code": "Q-2024-001", "customer": customer["id"], "total": "1234.50"}),
        )
        .await;
    for (item, quantity, amount) in [("服务器", 1, "1000.00"), ("安装调试", 2, "234.50")] {
        server
            .create(
                "quote_line",
                json!({"quote": quote["id"], "item": item, "quantity": quantity, "amount": amount}),
            )
            .await;
    }
    let path = format!("/api/data/quote/{}/print/formal", quote["id"]);
    let (status, html, csp) = print(&server, &server.token, &path).await;
    assert_eq!(status, 200, "{html}");
    for expected in [
        "深圳市震华信息技术有限公司",
        "深圳市南山区科技园",
        // Attribute values are HTML-escaped (`/` as `&#x2f;`); browsers read them back.
        "src=\"data:image&#x2f;png;base64,",
        "size: A4",
        "Q-2024-001",
        "广州&lt;白云&gt;电器",
        "服务器",
        "安装调试",
        "1,000.00",
        "明细合计：1,234.50",
        "总金额：￥1,234.50",
        "壹仟贰佰叁拾肆元伍角整",
        "page-break",
        "本报价单有效期30天",
    ] {
        assert!(html.contains(expected), "{expected} missing from {html}");
    }
    let csp = csp.unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("img-src data:"),
        "{csp}"
    );

    let (status, html, _) = print(
        &server,
        &server.token,
        &format!("/api/data/quote/{}/print/default", quote["id"]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("报价单号") && html.contains("报价明细") && html.contains("合计"),
        "{html}"
    );

    let (_, outsider) = server.user("outsider", &["outsider"], None).await;
    assert_eq!(
        print(&server, &outsider, &path).await.0,
        403,
        "no read right, no print"
    );
    let (status, _, _) = print(
        &server,
        &server.token,
        &format!("/api/data/quote/{}/print/nope", quote["id"]),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn print_templates_are_sandboxed() {
    let server = TestServer::start(package(None, QUOTE)).await;
    let broken = server
        .put("/api/meta", package(None, "{% for x in %}"))
        .await;
    assert_eq!(broken.status, 422);
    assert_eq!(
        broken.body["error"]["details"][0]["path"], "entities[1].prints[0].template",
        "{:?}",
        broken.body
    );

    let quote = server.create("quote", json!({"code": "Q1"})).await;
    let path = format!("/api/data/quote/{}/print/formal", quote["id"]);
    for (hostile, says) in [
        (r#"{% include "/etc/passwd" %}"#, "passwd"),
        (
            r#"{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"#,
            "fuel",
        ),
        (
            r#"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"#,
            "recursion",
        ),
    ] {
        let applied = server.put("/api/meta", package(None, hostile)).await;
        assert_eq!(applied.status, 200, "{:?}", applied.body);
        let (status, body, _) = print(&server, &server.token, &path).await;
        assert_eq!(status, 400, "{hostile}: {body}");
        assert!(body.contains(says), "{hostile}: {body}");
        assert!(!body.contains("root:"), "no file was read");
    }
}

/// The record page links its print formats and the list page its exports; both open
/// with the page's session cookie.
#[tokio::test]
async fn pages_link_prints_and_exports() {
    let server = TestServer::start(package(None, QUOTE)).await;
    let quote = server
        .create("quote", json!({"code": "Q-WEB", "total": "88"}))
        .await;
    let admin = common::web::WebUser::login(&server, common::ADMIN, common::PASSWORD).await;
    let record = admin.page(&format!("/e/quote/{}", quote["id"])).await;
    let html = record.unescaped();
    let formal = format!("/api/data/quote/{}/print/formal", quote["id"]);
    assert!(
        html.contains(&formal) && html.contains("正式报价单"),
        "{html}"
    );
    let printed = admin.page(&formal).await;
    assert_eq!(printed.status, 200);
    assert!(printed.html.contains("捌拾捌元整"), "{}", printed.html);

    let list = admin.page("/e/quote?q=Q-WEB").await.unescaped();
    let start = list
        .find("/api/export/quote?format=xlsx")
        .expect("an export link");
    let href: String = list[start..].chars().take_while(|c| *c != '"').collect();
    let exported = admin.page(&href).await;
    assert_eq!(exported.status, 200);
    assert!(
        exported.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    let csv_start = list.find("/api/export/quote?format=csv").unwrap();
    let csv_href: String = list[csv_start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let csv = admin.page(&csv_href).await.html;
    assert!(
        csv.contains("Q-WEB") && csv.lines().count() == 2,
        "the list's filter applies: {csv}"
    );
}
