//! What every page shares: the signed-in viewer (resolved from the session cookie, or
//! a redirect to the login page), the navigation built from their rights, rendering
//! with the security headers, and errors as HTML pages.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Redirect;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde_json::{Value, json};

use super::i18n::{Lang, text};
use super::{session, view};
use crate::auth::Context;
use crate::error::{Error, Result};
use crate::meta::Action;
use crate::tenant::Tenants;

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A page request without a live session: answered by a redirect to the login page.
#[derive(Debug, thiserror::Error)]
#[error("log in first")]
pub struct LoginFirst {
    next: String,
}

impl poem::error::ResponseError for LoginFirst {
    fn status(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn as_response(&self) -> Response {
        let query = serde_urlencoded::to_string([("next", &self.next)]).unwrap_or_default();
        Redirect::see_other(format!("/login?{query}")).into_response()
    }
}

/// The signed-in user of a page request.
pub struct Viewer {
    pub ctx: Context,
    pub lang: Lang,
    /// The session's CSRF token, for forms and the JavaScript's API calls.
    pub csrf: String,
    /// The request's path and query, for links back here.
    pub here: String,
}

impl<'a> FromRequest<'a> for Viewer {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let here = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let login_first = || LoginFirst { next: here.clone() };
        let tenants = req
            .data::<Arc<Tenants>>()
            .expect("the server puts Tenants in the request data");
        let token = session::token(req).ok_or_else(login_first)?;
        let ctx = Context::from_token(tenants, &token)
            .await
            .map_err(|_| login_first())?;
        Ok(Viewer {
            ctx,
            lang: Lang::of(req),
            csrf: session::csrf_token(&token),
            here,
        })
    }
}

/// Adds the headers every HTML page carries.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        // Pages hold customer data: never keep them in shared or back-button caches.
        ("cache-control", "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, value.parse().expect("static header value"));
    }
    response
}

/// An HTML response with the security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    secure(
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(body),
    )
}

impl Viewer {
    /// Whether a form's `_csrf` is this session's token (compared in constant time).
    pub fn csrf_matches(&self, offered: &str) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.csrf.as_bytes(), offered.as_bytes()).into()
    }

    /// Renders `template` with `context` merged over what every page gets: `lang`,
    /// `csrf`, `user`, `nav` and `here`.
    pub async fn page(&self, template: &str, context: Value) -> Result<Response> {
        let mut merged = json!({
            "lang": self.lang.code(),
            "csrf": self.csrf,
            "here": self.here,
            "user": {
                "id": self.ctx.user.id,
                "name": self.ctx.user.display_name,
                "is_admin": self.ctx.user.is_admin,
            },
            "nav": self.nav().await?,
        });
        if let (Some(base), Value::Object(extra)) = (merged.as_object_mut(), context) {
            base.extend(extra);
        }
        let body = view::render(template, &merged)?;
        Ok(html(StatusCode::OK, body))
    }

    /// The navigation: the entities this user may read (and their public pools), and
    /// the designer for those with designer rights.
    async fn nav(&self) -> Result<Value> {
        let catalog = self.ctx.tenant.catalog().await;
        let mut entities = Vec::new();
        for entity in catalog.entities() {
            if self.ctx.authorize(entity, Action::Read).await.is_ok() {
                entities.push(json!({
                    "key": entity.def.key,
                    "label": entity.def.label(),
                    "pool": entity.def.pool.is_some(),
                }));
            }
        }
        Ok(json!({
            "entities": entities,
            "designer": self.ctx.require_admin().await.is_ok(),
        }))
    }

    /// The page, or the error as an HTML page with its status.
    pub async fn respond(&self, result: Result<Response>) -> Response {
        match result {
            Ok(response) => response,
            Err(error) => error_page(self.lang, &error),
        }
    }
}

/// An error as a page of its own (no navigation: it must render even when loading
/// the navigation is what failed).
pub fn error_page(lang: Lang, error: &Error) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (headline, detail) = match error {
        Error::Forbidden(_) | Error::ForbiddenFields(_) => ("forbidden", error.to_string()),
        Error::NotFound(_) => ("not_found", error.to_string()),
        Error::Database(_) | Error::Internal(_) => {
            tracing::error!(%error, "page failed");
            ("error", String::new())
        }
        _ => ("error", error.to_string()),
    };
    let context = json!({
        "lang": lang.code(),
        "status": status.as_u16(),
        "headline": text(lang, headline),
        "detail": detail,
    });
    let body = view::render("error.html", &context).unwrap_or_else(|_| text(lang, headline));
    html(status, body)
}
