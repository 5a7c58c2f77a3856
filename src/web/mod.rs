//! The web application: server-rendered pages (minijinja templates from
//! `web/templates/`, embedded in the binary) over the same modules and the same
//! permission gate as the API. The pages' JavaScript writes through the JSON API with
//! the session cookie and its CSRF token (`session`), so there is one implementation
//! of every write.

mod assets;
pub mod display;
pub mod i18n;
pub mod page;
mod pages;
pub mod session;
mod view;

use poem::{Route, get, post};

pub use session::api_cookie_auth;

/// The pages and static assets; the API is mounted beside them by `api::server`.
pub fn routes() -> Route {
    use pages::*;
    Route::new()
        .at("/", get(reports::home))
        .at("/login", get(login::show).post(login::submit))
        .at("/logout", post(login::logout))
        .at("/lang", post(login::switch_lang))
        .at("/static/*path", get(assets::serve))
        .at("/e/:entity", get(records::list))
        .at("/e/:entity/new", get(records::new_form))
        .at("/e/:entity/import", get(records::import_page))
        .at("/e/:entity/:id", get(records::record_view))
        .at("/e/:entity/:id/edit", get(records::edit_form))
        .at("/e/:entity/:id/convert/:key", post(records::convert_record))
        .at("/pool/:entity", get(records::pool_list))
        .at("/approvals", get(work::approvals))
        .at("/followups", get(work::followups_due))
        .at("/notifications", get(work::notifications_list))
        .at("/search", get(search::search))
        .at("/reports", get(reports::list))
        .at("/reports/new", get(reports::builder))
        .at("/reports/:key", get(reports::view))
        .at("/reports/:key/edit", get(reports::edit))
        .at("/dashboards/:key", get(reports::dashboard_view))
        .at("/automation", get(automation::automation))
        .at("/designer", get(designer::designer))
        .at("/designer/:entity", get(designer::designer_entity))
}
