//! The web console: server-rendered pages over the same provkit-service
//! calls and the same [`Caller`] checks as the JSON API. A console user
//! signs in with a password and gets a session cookie; the session acts
//! as a [`Caller`] with the user's role within the organization group the
//! session looks at (the user's own group or one below it). Every form
//! carries the session's CSRF token. Reads work without JavaScript.

mod apps;
mod devices;
mod layout;
mod notices;
mod pages;
mod profiles;
mod session;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub(crate) use session::Console;

use crate::problem::Problem;
use crate::state::AppState;

/// The console's routes, under `/console`: app uploads take the upload
/// limit (streamed to a file), every other form the body limit.
pub(crate) fn router(limits: crate::Limits) -> Router<AppState> {
    let body = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let upload = usize::try_from(limits.max_upload_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::dashboard))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/org-group", post(session::switch_group))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route(
            "/console/profiles",
            get(profiles::list).post(profiles::create),
        )
        .route("/console/profiles.csv", get(profiles::csv))
        .route("/console/profiles/new", get(profiles::new_form))
        .route("/console/profiles/{uuid}", get(profiles::show))
        .route(
            "/console/profiles/{uuid}/assignments",
            post(profiles::assignments),
        )
        .route("/console/profiles/{uuid}/renew", post(profiles::renew))
        .route(
            "/console/profiles/{uuid}/notifications",
            post(profiles::notifications),
        )
        .route("/console/apps/notifications", post(apps::notifications))
        .route("/console/profiles/{uuid}/delete", post(profiles::delete))
        .route(
            "/console/apps",
            get(apps::list)
                .post(apps::upload)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route("/console/devices", get(devices::list))
        .route("/console/devices/{udid}", get(devices::show))
        .route("/console/groups", get(pages::groups))
        .route("/console/audit", get(pages::audit))
        .route("/console/settings", get(pages::settings))
        .route("/console/settings/stages", post(pages::set_stages))
        .route("/console/settings/mdm", post(pages::add_mdm))
        .route("/console/settings/mdm/remove", post(pages::remove_mdm))
        .route("/console/settings/channels", post(pages::add_channel))
        .route(
            "/console/settings/channels/remove",
            post(pages::remove_channel),
        )
        .layer(DefaultBodyLimit::max(body))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/console.js"),
    )
}

/// What a console handler fails with: a page saying what went wrong with
/// the problem's status, or a redirect (to sign in).
#[derive(Debug)]
pub(crate) enum Failure {
    /// Render the problem as a page.
    Page(Box<(Problem, Option<Console>)>),
    /// Send the browser elsewhere.
    Redirect(String),
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        Failure::Page(Box::new((p, None)))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Redirect(to) => Redirect::to(&to).into_response(),
            Failure::Page(b) => {
                let (p, console) = *b;
                if p.code == "loading" {
                    let body = maud::html! {
                        h1 { "Loading" }
                        div.note role="status" { p { (p.detail) } p { a href="" { "Reload" } } }
                    };
                    let page =
                        layout::page_reloading(console.as_ref(), "Loading", "", body, Some(2));
                    return (p.status, [(header::RETRY_AFTER, "2")], page).into_response();
                }
                let title = match p.status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    _ => "Something went wrong",
                };
                let body = maud::html! {
                    h1 { (title) }
                    div.error role="alert" { p { (p.detail) } p.muted { "Code: " span.mono { (p.code) } } }
                };
                let page = layout::page(console.as_ref(), title, "", body);
                (p.status, page).into_response()
            }
        }
    }
}

/// A console handler's result.
pub(crate) type Out = Result<Response, Failure>;
