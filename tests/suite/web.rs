//! The web pages, server side: who may see which page, the session cookie and CSRF,
//! the security headers, escaping, masked fields, the live form state and saved
//! views. (The browser tests drive the same pages in Chromium.)

use crate::common;

use common::web::{WebUser, post_login};
use common::{PASSWORD, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "label": "名称", "type": "text", "required": true, "searchable": true},
          {"key": "kind", "label": "<script>alert('label')</script>", "type": "select",
           "options": [{"value": "company", "label": "公司"}, {"value": "person", "label": "<b>个人</b>"}]},
          {"key": "id_card", "label": "身份证号", "type": "text",
           "visible_if": "kind == 'person'", "required_if": "kind == 'person'"},
          {"key": "revenue", "label": "营收", "type": "decimal", "scale": 2},
          {"key": "secret", "label": "底价", "type": "text"}
        ],
        "pipeline": {"stages": [
          {"key": "new", "label": "初步接触"}, {"key": "quote", "label": "报价"},
          {"key": "won", "label": "签单", "won": true}], "transitions": "forward"},
        "pool": {"reclaim_after_days": 30},
        "layout": {"sections": [{"label": "基本", "columns": 2,
          "fields": ["name", "kind", "id_card", "revenue", "secret"]}]}},
      {"key": "contact", "label": "联系人", "title_field": "name", "fields": [
          {"key": "name", "label": "姓名", "type": "text", "required": true},
          {"key": "customer", "label": "所属客户", "type": "reference", "target": "customer"}
        ]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own",
           "deny_read": ["secret"]}]},
      {"key": "manager", "permissions": [
          {"entity": "customer", "actions": ["read", "update", "assign"], "scope": "all"}]},
      {"key": "outsider", "permissions": []}
    ],
    "reports": [
      {"key": "by_stage", "label": "按阶段", "entity": "customer", "group_by": [{"field": "stage"}],
       "measures": [{"fn": "count"}], "chart": "bar", "roles": ["manager"]}
    ],
    "dashboards": [
      {"key": "board", "label": "看板", "reports": ["by_stage"], "roles": ["manager"]}
    ]})
}

struct Site {
    server: TestServer,
}

impl Site {
    async fn start() -> Site {
        let server = TestServer::start(package()).await;
        for (name, role) in [
            ("sales1", "sales"),
            ("boss", "manager"),
            ("stranger", "outsider"),
        ] {
            server.user(name, &[role], None).await;
        }
        Site { server }
    }

    async fn web(&self, username: &str) -> WebUser {
        WebUser::login(&self.server, username, PASSWORD).await
    }
}

/// Every page answers 200 to a user allowed to see it and 403 to one who is not;
/// without a session every page sends the browser to the login page.
#[tokio::test]
async fn pages_answer_by_rights() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let sales = site.web("sales1").await;
    let boss = site.web("boss").await;
    let stranger = site.web("stranger").await;
    let record = site
        .server
        .create("customer", json!({"name": "深圳市震华信息技术有限公司"}))
        .await;
    let id = record["id"].as_i64().unwrap();

    let every_user = [
        "/",
        "/approvals",
        "/followups",
        "/notifications",
        "/search?q=zh",
        "/reports",
        "/reports/new",
    ];
    for path in every_user {
        for (who, user) in [
            ("admin", &admin),
            ("sales", &sales),
            ("stranger", &stranger),
        ] {
            let page = user.page(path).await;
            assert_eq!(page.status, 200, "{who} on {path}: {}", page.html);
        }
    }
    let readers = [
        "/e/customer".to_string(),
        "/e/customer/new".to_string(),
        "/pool/customer".to_string(),
        format!("/e/customer/{id}"),
        format!("/e/customer/{id}/edit"),
    ];
    for path in &readers {
        assert_eq!(admin.page(path).await.status, 200, "admin on {path}");
        let page = stranger.page(path).await;
        assert_eq!(page.status, 403, "stranger on {path}");
        assert!(
            page.html.contains("403"),
            "an HTML error page: {}",
            page.html
        );
    }
    // The sales user reads their own records only: the admin's record is not found.
    assert_eq!(sales.page("/e/customer").await.status, 200);
    assert_eq!(sales.page(&format!("/e/customer/{id}")).await.status, 404);
    // The manager may read and update but not create.
    assert_eq!(
        boss.page(&format!("/e/customer/{id}/edit")).await.status,
        200
    );
    assert_eq!(boss.page("/e/customer/new").await.status, 403);

    for path in ["/designer", "/designer/customer"] {
        assert_eq!(admin.page(path).await.status, 200, "admin on {path}");
        assert_eq!(sales.page(path).await.status, 403, "sales on {path}");
    }
    assert_eq!(boss.page("/reports/by_stage").await.status, 200);
    assert_eq!(boss.page("/reports/by_stage/edit").await.status, 200);
    assert_eq!(sales.page("/reports/by_stage").await.status, 403);
    assert_eq!(boss.page("/dashboards/board").await.status, 200);
    assert_eq!(sales.page("/dashboards/board").await.status, 403);
    // A manager's home is their dashboard; others get the shortcuts.
    assert!(
        boss.page("/").await.html.contains("data-dashboard"),
        "the boss's home is the dashboard"
    );
    assert!(!sales.page("/").await.html.contains("data-dashboard"));
    assert_eq!(admin.page("/e/no_such_entity").await.status, 404);

    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/e/customer", "/designer", "/reports"] {
        let response = anonymous
            .get(format!("{}{path}", site.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "anonymous on {path}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("/login?next="), "{path} → {location}");
    }
    let login = anonymous
        .get(format!("{}/login", site.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
}

/// Navigation lists only what the user may read, and the designer only for admins.
#[tokio::test]
async fn navigation_follows_rights() {
    let site = Site::start().await;
    let admin = site.web("admin").await.page("/").await.html;
    let stranger = site.web("stranger").await.page("/").await.html;
    assert!(admin.contains("data-nav-entity=\"customer\""));
    assert!(admin.contains("id=\"nav-designer\""));
    assert!(!stranger.contains("data-nav-entity=\"customer\""));
    assert!(!stranger.contains("id=\"nav-designer\""));
}

#[tokio::test]
async fn login_sets_a_safe_cookie_and_refuses_bad_passwords() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let flags = admin.set_cookie.to_ascii_lowercase();
    assert!(flags.contains("httponly"), "{flags}");
    assert!(flags.contains("samesite=lax"), "{flags}");
    assert!(flags.contains("path=/"), "{flags}");

    let refused = post_login(&site.server, "admin", "wrong password").await;
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"login-error\""), "{html}");

    // Logging out ends the session: the same cookie no longer opens pages.
    let csrf = admin.csrf().await;
    let forged = admin.post_form("/logout", &[("_csrf", "forged")]).await;
    assert_eq!(
        forged.status().as_u16(),
        403,
        "a logout needs the session's token"
    );
    assert_eq!(
        admin.page("/").await.status,
        200,
        "and a forged one ends nothing"
    );
    let out = admin.post_form("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(admin.page("/").await.status, 303);
    assert_eq!(
        admin
            .api(Method::GET, "/api/auth/me", None, None)
            .await
            .status,
        401
    );
}

/// The API accepts the session cookie: reads freely, writes only with the session's
/// CSRF token; a token of another session does not do.
#[tokio::test]
async fn cookie_writes_need_the_csrf_token() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let other = site.web("boss").await;
    let csrf = admin.csrf().await;
    let me = admin.api(Method::GET, "/api/auth/me", None, None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "admin");

    let body = json!({"name": "无令牌公司"});
    let refused = admin
        .api(Method::POST, "/api/data/customer", Some(body.clone()), None)
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "forbidden");
    let foreign = other.csrf().await;
    let refused = admin
        .api(
            Method::POST,
            "/api/data/customer",
            Some(body.clone()),
            Some(&foreign),
        )
        .await;
    assert_eq!(refused.status, 403);
    let listed = site
        .server
        .post("/api/data/customer/query", json!({}))
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        0,
        "nothing was written"
    );

    let created = admin
        .api(Method::POST, "/api/data/customer", Some(body), Some(&csrf))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    // A bearer request is not a cookie request: no CSRF token needed.
    assert_eq!(
        site.server
            .create("customer", json!({"name": "持令牌公司"}))
            .await["name"],
        "持令牌公司"
    );
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_escape_everything() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let record = site
        .server
        .create(
            "customer",
            json!({"name": "<img src=x onerror=alert(1)>", "kind": "person", "id_card": "440301"}),
        )
        .await;
    let id = record["id"].as_i64().unwrap();
    for path in [
        "/e/customer".to_string(),
        format!("/e/customer/{id}"),
        format!("/e/customer/{id}/edit"),
        "/e/customer/new".to_string(),
    ] {
        let page = admin.page(&path).await;
        assert_eq!(page.status, 200, "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(
            !page.html.contains("<script>alert("),
            "{path} renders a label as markup"
        );
        assert!(
            !page.html.contains("<img src=x"),
            "{path} renders a value as markup"
        );
        assert!(
            !page.html.contains("<b>个人</b>"),
            "{path} renders an option label as markup"
        );
        assert!(
            !page.html.contains("<script>")
                || page.html.matches("<script").count()
                    == page.html.matches("<script src=").count(),
            "{path}: only external scripts"
        );
    }
    let form = admin.page("/e/customer/new").await.html;
    assert!(
        form.contains("&lt;script&gt;alert("),
        "the label is shown as text"
    );
}

/// A field masked from a user is in none of their pages, and not offered as a filter
/// or column.
#[tokio::test]
async fn masked_fields_stay_out_of_pages() {
    let site = Site::start().await;
    let sales = site.web("sales1").await;
    let csrf = sales.csrf().await;
    let created = sales
        .api(
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "华南客户"})),
            Some(&csrf),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    site.server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"secret": "底价九折"}),
            None,
        )
        .await;
    for path in [
        "/e/customer".to_string(),
        "/e/customer?col=name&col=secret".to_string(),
        format!("/e/customer/{id}"),
        format!("/e/customer/{id}/edit"),
    ] {
        let page = sales.page(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.html.contains("底价"), "{path} shows the masked field");
    }
    let admin = site.web("admin").await;
    assert!(
        admin
            .page(&format!("/e/customer/{id}"))
            .await
            .html
            .contains("底价九折")
    );
}

/// Lists filter, sort and page through the same query as the API, within the
/// viewer's scope.
#[tokio::test]
async fn lists_filter_sort_and_page() {
    let site = Site::start().await;
    for n in 0..55 {
        let kind = if n % 5 == 0 { "person" } else { "company" };
        let mut record = json!({"name": format!("客户{n:02}"), "kind": kind});
        if kind == "person" {
            record["id_card"] = json!(format!("4403{n:02}"));
        }
        site.server.create("customer", record).await;
    }
    let admin = site.web("admin").await;
    let first = admin.page("/e/customer?sort=name").await.html;
    assert_eq!(first.matches("<tr data-id=").count(), 50);
    assert!(first.find("客户00").unwrap() < first.find("客户01").unwrap());
    let next = first.split("id=\"next-page\"").next().unwrap();
    let href = &next[next.rfind("href=\"").unwrap() + 6..next.len() - 2];
    let href = href
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&");
    let second = admin.page(&href).await.html;
    assert_eq!(second.matches("<tr data-id=").count(), 5, "{href}");
    assert!(second.contains("客户54"));

    let persons = admin.page("/e/customer?f.kind=person").await.html;
    assert_eq!(persons.matches("<tr data-id=").count(), 11);
    let searched = admin.page("/e/customer?q=%E5%AE%A2%E6%88%B712").await.html;
    assert_eq!(searched.matches("<tr data-id=").count(), 1);
    let columns = admin.page("/e/customer?col=kind").await.html;
    assert!(columns.contains("data-column=\"kind\"") && !columns.contains("data-column=\"name\""));
    // A bad filter value is the API's 400, shown as a page.
    assert_eq!(
        admin.page("/e/customer?f.revenue.from=abc").await.status,
        400
    );

    // Someone who sees only their own records sees none of these.
    let sales = site.web("sales1").await.page("/e/customer").await.html;
    assert_eq!(sales.matches("<tr data-id=").count(), 0);
}

/// The live form state applies the save's own rules: visible_if hides, required_if
/// requires, for the values typed so far.
#[tokio::test]
async fn form_state_follows_the_rules() {
    let site = Site::start().await;
    let state = site
        .server
        .post(
            "/api/meta/entities/customer/form/state",
            json!({"values": {"kind": "company"}}),
        )
        .await;
    assert_eq!(state.status, 200, "{:?}", state.body);
    assert_eq!(state.body["hidden"], json!(["id_card"]));
    assert_eq!(state.body["required"], json!(["name"]));
    let state = site
        .server
        .post(
            "/api/meta/entities/customer/form/state",
            json!({"values": {"kind": "person"}}),
        )
        .await;
    assert_eq!(state.body["hidden"], json!([]));
    assert_eq!(state.body["required"], json!(["name", "id_card"]));
    let bad = site
        .server
        .post(
            "/api/meta/entities/customer/form/state",
            json!({"kind": "person"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    // Masked fields are not part of a user's state at all.
    let sales = site.web("sales1").await;
    let csrf = sales.csrf().await;
    let state = sales
        .api(
            Method::POST,
            "/api/meta/entities/customer/form/state",
            Some(json!({"values": {}})),
            Some(&csrf),
        )
        .await;
    assert!(
        !state.body.to_string().contains("secret"),
        "{:?}",
        state.body
    );
}

#[tokio::test]
async fn saved_views_are_personal() {
    let site = Site::start().await;
    let boss = site.web("boss").await;
    let sales = site.web("sales1").await;
    let boss_csrf = boss.csrf().await;
    let sales_csrf = sales.csrf().await;
    let saved = boss
        .api(
            Method::POST,
            "/api/views/customer",
            Some(json!({"name": "个人客户", "query": "f.kind=person&sort=name"})),
            Some(&boss_csrf),
        )
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let id = saved.body["id"].as_i64().unwrap();
    // Saving the same name again replaces the view.
    boss.api(
        Method::POST,
        "/api/views/customer",
        Some(json!({"name": "个人客户", "query": "f.kind=person"})),
        Some(&boss_csrf),
    )
    .await;
    let listed = boss
        .api(Method::GET, "/api/views/customer", None, None)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["query"], "f.kind=person");
    let new_id = listed.body["items"][0]["id"].as_i64().unwrap();
    assert_ne!(new_id, id);

    let theirs = sales
        .api(Method::GET, "/api/views/customer", None, None)
        .await;
    assert_eq!(theirs.body["items"], json!([]));
    let refused = sales
        .api(
            Method::DELETE,
            &format!("/api/views/customer/{new_id}"),
            None,
            Some(&sales_csrf),
        )
        .await;
    assert_eq!(refused.status, 404);
    let bad = boss
        .api(
            Method::POST,
            "/api/views/customer",
            Some(json!({"name": " ", "query": ""})),
            Some(&boss_csrf),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["details"][0]["field"], "name");
    let stranger = site.web("stranger").await;
    assert_eq!(
        stranger
            .api(Method::GET, "/api/views/customer", None, None)
            .await
            .status,
        403
    );
    let deleted = boss
        .api(
            Method::DELETE,
            &format!("/api/views/customer/{new_id}"),
            None,
            Some(&boss_csrf),
        )
        .await;
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn assets_are_versioned_and_cached() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let html = admin.page("/").await.html;
    let at = html
        .find("/static/app.js?v=")
        .expect("a versioned script URL");
    let url = &html[at..at + html[at..].find('"').unwrap()];
    let response = admin
        .client
        .get(format!("{}{url}", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let etag = response.headers()["etag"].clone();
    let again = admin
        .client
        .get(format!("{}{url}", admin.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let vendored = admin
        .client
        .get(format!(
            "{}/static/vendor/chartjs-4.6.1/chart.umd.min.js",
            admin.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(vendored.status().as_u16(), 200);
    let missing = admin
        .client
        .get(format!("{}/static/nope.js", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn language_follows_the_browser_then_the_choice() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let english = admin
        .page_with("/", &[("accept-language", "en-US,en;q=0.9")])
        .await
        .html;
    assert!(english.contains("<html lang=\"en\">") && english.contains("Log out"));
    let chinese = admin.page("/").await.html;
    assert!(chinese.contains("<html lang=\"zh\">") && chinese.contains("退出"));
    let csrf = admin.csrf().await;
    let forged = admin
        .post_form(
            "/lang",
            &[("lang", "en"), ("_csrf", "forged"), ("back", "/")],
        )
        .await;
    assert_eq!(forged.status().as_u16(), 403);
    assert!(
        forged.headers().get("set-cookie").is_none(),
        "a forged switch changes nothing"
    );
    let switched = admin
        .post_form(
            "/lang",
            &[("lang", "en"), ("_csrf", &csrf), ("back", "/e/customer")],
        )
        .await;
    assert_eq!(switched.status().as_u16(), 303);
    assert_eq!(switched.headers()["location"], "/e/customer");
    let lang_cookie = switched.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = admin.page_with("/", &[("cookie", &lang_cookie)]).await.html;
    assert!(
        page.contains("<html lang=\"en\">"),
        "the choice wins over the browser's default"
    );
}

/// A record page lists the records pointing at it, with a link to a new one already
/// pointing here; the new form shows the given reference, and the list filters by it.
#[tokio::test]
async fn related_records_and_prefilled_forms() {
    let site = Site::start().await;
    let admin = site.web("admin").await;
    let customer = site
        .server
        .create("customer", json!({"name": "深圳市震华信息技术有限公司"}))
        .await;
    let id = customer["id"].as_i64().unwrap();
    let other = site
        .server
        .create("customer", json!({"name": "华润万家"}))
        .await;
    site.server
        .create("contact", json!({"name": "王经理", "customer": id}))
        .await;
    site.server
        .create(
            "contact",
            json!({"name": "李会计", "customer": other["id"]}),
        )
        .await;

    let page = admin.page(&format!("/e/customer/{id}")).await.unescaped();
    assert!(page.contains("data-related=\"contact\""), "{page}");
    assert!(page.contains("王经理") && !page.contains("李会计"));
    assert!(
        page.contains(&format!("href=\"/e/contact/new?customer={id}\"")),
        "a link to a new contact of this customer"
    );
    assert!(page.contains(&format!("href=\"/e/contact?f.customer={id}\"")));

    let form = admin
        .page(&format!("/e/contact/new?customer={id}"))
        .await
        .html;
    assert!(
        form.contains("value=\"深圳市震华信息技术有限公司\""),
        "the picker shows the customer's title"
    );
    assert!(
        form.contains(&format!("name=\"customer\" value=\"{id}\"")),
        "and holds its id"
    );
    assert_eq!(
        admin.page("/e/contact?f.customer=abc").await.status,
        400,
        "a reference filter that is not an id is refused, not read as empty"
    );
    let ignored = admin.page("/e/contact/new?customer=abc").await;
    assert_eq!(
        ignored.status, 200,
        "a value that does not convert is ignored"
    );

    let listed = admin
        .page(&format!("/e/contact?f.customer={id}"))
        .await
        .html;
    assert_eq!(listed.matches("<tr data-id=").count(), 1);
    assert!(listed.contains("王经理"));
    let picker = admin
        .page(&format!("/e/contact?f.customer={id}"))
        .await
        .unescaped();
    assert!(
        picker.contains("data-target=\"customer\"")
            && picker.contains("value=\"深圳市震华信息技术有限公司\""),
        "the reference filter shows the chosen customer by its title"
    );
    // Someone who may not read contacts sees no contact list on the customer page.
    let boss = site
        .web("boss")
        .await
        .page(&format!("/e/customer/{id}"))
        .await
        .html;
    assert!(!boss.contains("data-related=\"contact\""));
}

/// Field errors come in the language the caller asked for (the page's cookie or the
/// browser's `Accept-Language`); API callers asking for none get English.
#[tokio::test]
async fn field_errors_speak_the_callers_language() {
    let site = Site::start().await;
    let english = site
        .server
        .post("/api/data/customer", json!({"kind": "person"}))
        .await;
    assert_eq!(english.status, 422);
    let messages: Vec<&str> = english.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["is required", "is required"],
        "{:?}",
        english.body
    );

    let chinese = site
        .server
        .send(
            Method::POST,
            "/api/data/customer",
            Some(json!({"kind": "person", "revenue": "abc"})),
            Some(&site.server.token),
            &[("accept-language", "zh-CN,zh;q=0.9")],
        )
        .await;
    assert_eq!(chinese.status, 422);
    assert_eq!(
        chinese.body["error"]["code"], "validation_failed",
        "codes stay as they are"
    );
    assert_eq!(
        chinese.body["error"]["message"],
        "填写有误，请修改标出的字段"
    );
    let details = chinese.body["error"]["details"].as_array().unwrap();
    assert_eq!(details[0]["field"], "revenue");
    assert_eq!(details[0]["message"], "请填写数字", "{details:?}");
    let required = site
        .server
        .send(
            Method::POST,
            "/api/data/customer",
            Some(json!({"kind": "person"})),
            Some(&site.server.token),
            &[("accept-language", "zh-CN")],
        )
        .await;
    assert_eq!(required.body["error"]["details"][0]["message"], "必填");
    let french = site
        .server
        .send(
            Method::POST,
            "/api/data/customer",
            Some(json!({"kind": "person"})),
            Some(&site.server.token),
            &[("accept-language", "fr-FR,fr;q=0.9")],
        )
        .await;
    assert_eq!(
        french.body["error"]["details"][0]["message"], "is required",
        "a language we do not speak gets the API's English"
    );
}
