//! The browser's session: the bearer token of an ordinary session, kept in an
//! HttpOnly, SameSite=Lax cookie. Writes made with the cookie need a CSRF token derived
//! from the session token (a hidden form field, or the `X-CSRF-Token` header for the
//! JavaScript that calls the API), which another site can neither read nor compute.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::http::{HeaderValue, Method, header};
use poem::web::cookie::{Cookie, SameSite};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::sessions::LIFETIME_HOURS;
use crate::error::Error;

pub const SESSION_COOKIE: &str = "metacrm_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "_csrf";

/// The session token the request's cookie carries.
pub fn token(req: &Request) -> Option<String> {
    req.cookie()
        .get(SESSION_COOKIE)
        .map(|c| c.value_str().to_string())
        .filter(|t| !t.is_empty())
}

/// The CSRF token of a session.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("metacrm-csrf\0{session_token}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// Whether `offered` is the CSRF token of `session_token`, compared in constant time.
pub fn csrf_matches(session_token: &str, offered: &str) -> bool {
    csrf_token(session_token)
        .as_bytes()
        .ct_eq(offered.as_bytes())
        .into()
}

/// A cookie in the shape every cookie of ours has; `Secure` when the request came
/// over HTTPS (directly or through a proxy that says so).
fn cookie(req: &Request, name: &str, value: &str, max_age_secs: i64) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_max_age(std::time::Duration::from_secs(max_age_secs.max(0) as u64));
    let https = req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes() == b"https");
    cookie.set_secure(https);
    cookie
}

pub fn start(req: &Request, token: &str) {
    req.cookie()
        .add(cookie(req, SESSION_COOKIE, token, LIFETIME_HOURS * 3600));
}

pub fn end(req: &Request) {
    req.cookie().add(cookie(req, SESSION_COOKIE, "", 0));
}

pub fn remember_lang(req: &Request, code: &str) {
    req.cookie()
        .add(cookie(req, super::i18n::LANG_COOKIE, code, 365 * 24 * 3600));
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Lets the web's JavaScript call the API with the session cookie: a request without
/// an `Authorization` header but with the cookie is authenticated as that session,
/// provided a write also carries the session's CSRF token. Bearer requests are left
/// as they are.
pub async fn api_cookie_auth<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if req.headers().get(header::AUTHORIZATION).is_none()
        && let Some(token) = token(&req)
    {
        if !is_safe(req.method()) {
            let offered = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !csrf_matches(&token, offered) {
                return Err(Error::Forbidden(format!(
                    "a write with the session cookie needs the {CSRF_HEADER} header of the session"
                ))
                .into());
            }
        }
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Unauthorized("malformed session cookie".into()))?;
        req.headers_mut().insert(header::AUTHORIZATION, bearer);
    }
    Ok(next.call(req).await?.into_response())
}
