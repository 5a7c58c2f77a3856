//! A browser-like client of the web pages: logs in through the login form, keeps the
//! session cookie, reads the CSRF token from the page, and calls the API the way the
//! pages' JavaScript does.

use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use serde_json::Value;

use super::{Reply, TestServer};

pub struct WebUser {
    pub client: reqwest::Client,
    pub base: String,
    /// `metacrm_session=…`, as the browser would send it.
    pub cookie: String,
    /// The `Set-Cookie` header of the login, for checking its attributes.
    pub set_cookie: String,
}

/// A page: status, headers and HTML.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// The HTML with the entities the templates escape (`/`, `=`, `&`, quotes)
    /// decoded, for looking for links and values as a browser sees them.
    pub fn unescaped(&self) -> String {
        self.html
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the login form; the response, unfollowed.
pub async fn post_login(server: &TestServer, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/login", server.base))
        .form(&[
            ("tenant", server.tenant.key.as_str()),
            ("username", username),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap()
}

impl WebUser {
    pub async fn login(server: &TestServer, username: &str, password: &str) -> WebUser {
        let response = post_login(server, username, password).await;
        assert_eq!(
            response.status().as_u16(),
            303,
            "login of {username} failed"
        );
        let set_cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("metacrm_session="))
            .expect("the login sets the session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        WebUser {
            client: client(),
            base: server.base.clone(),
            cookie,
            set_cookie,
        }
    }

    pub async fn page(&self, path: &str) -> Page {
        self.page_with(path, &[]).await
    }

    /// A page requested with more headers; a `cookie` among them is added to the
    /// session cookie.
    pub async fn page_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut cookie = self.cookie.clone();
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("cookie") {
                cookie = format!("{cookie}; {value}");
            } else {
                request = request.header(*name, *value);
            }
        }
        let response = request.header(COOKIE, cookie).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        Page {
            status,
            headers,
            html,
        }
    }

    /// Posts a page form with the session cookie; the response, unfollowed.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token the pages carry in `<meta name="csrf-token">`.
    pub async fn csrf(&self) -> String {
        let page = self.page("/").await;
        let marker = "<meta name=\"csrf-token\" content=\"";
        let start = page.html.find(marker).expect("pages carry the CSRF token") + marker.len();
        let end = start + page.html[start..].find('"').unwrap();
        page.html[start..end].to_string()
    }

    /// An API call with the session cookie (and `csrf` as the header, when given).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csrf: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
}
