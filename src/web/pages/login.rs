//! Logging in and out, and choosing the UI language.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{login, sessions};
use crate::tenant::Tenants;
use crate::web::i18n::Lang;
use crate::web::page::{self, Viewer};
use crate::web::{session, view};

/// Where to go after logging in: a path on this site, never another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    tenant: Option<String>,
}

fn login_page(
    lang: Lang,
    status: StatusCode,
    tenant: &str,
    username: &str,
    next: &str,
    failed: bool,
) -> Response {
    let context = json!({
        "lang": lang.code(),
        "tenant": tenant,
        "username": username,
        "next": next,
        "failed": failed,
    });
    match view::render("login.html", &context) {
        Ok(body) => page::html(status, body),
        Err(e) => page::error_page(lang, &e),
    }
}

#[handler]
pub fn show(req: &Request, Query(query): Query<LoginQuery>) -> Response {
    let next = local_path(query.next.as_deref());
    login_page(
        Lang::of(req),
        StatusCode::OK,
        query.tenant.as_deref().unwrap_or_default(),
        "",
        &next,
        false,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    tenant: String,
    username: String,
    password: String,
    next: Option<String>,
}

#[handler]
pub async fn submit(
    req: &Request,
    tenants: Data<&Arc<Tenants>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(req);
    let next = local_path(form.next.as_deref());
    let client_ip = req
        .remote_addr()
        .as_socket_addr()
        .map(|address| address.ip().to_string());
    match login::login(
        &tenants,
        form.tenant.trim(),
        form.username.trim(),
        &form.password,
        client_ip,
    )
    .await
    {
        Ok(logged_in) => {
            session::start(req, &logged_in.token);
            Redirect::see_other(next).into_response()
        }
        Err(crate::error::Error::Unauthorized(_)) => login_page(
            lang,
            StatusCode::UNAUTHORIZED,
            &form.tenant,
            &form.username,
            &next,
            true,
        ),
        Err(error) => page::error_page(lang, &error),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

#[handler]
pub async fn logout(
    req: &Request,
    tenants: Data<&Arc<Tenants>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(token) = session::token(req) {
        if !session::csrf_matches(&token, &form.csrf) {
            return page::error_page(
                Lang::of(req),
                &crate::error::Error::Forbidden(
                    "the form's CSRF token is not this session's".into(),
                ),
            );
        }
        if let Err(error) = sessions::end(&tenants.platform, &token).await {
            return page::error_page(Lang::of(req), &error);
        }
    }
    session::end(req);
    Redirect::see_other("/login").into_response()
}

#[derive(Deserialize)]
pub struct LangForm {
    lang: String,
    #[serde(rename = "_csrf")]
    csrf: String,
    back: Option<String>,
}

/// Switches the UI language (a cookie), then goes back to the page it came from.
#[handler]
pub async fn switch_lang(req: &Request, viewer: Viewer, Form(form): Form<LangForm>) -> Response {
    let Some(lang) = Lang::parse(&form.lang) else {
        return page::error_page(
            viewer.lang,
            &crate::error::Error::BadRequest(format!("unknown language {:?}", form.lang)),
        );
    };
    if !viewer.csrf_matches(&form.csrf) {
        return page::error_page(
            viewer.lang,
            &crate::error::Error::Forbidden("the form's CSRF token is not this session's".into()),
        );
    }
    session::remember_lang(req, lang.code());
    Redirect::see_other(local_path(form.back.as_deref())).into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local_path(Some("/e/customer?x=1")), "/e/customer?x=1");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
