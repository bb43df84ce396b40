//! Signing in and out, the session extractor, the org-group switcher and
//! the CSRF check every form passes.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use provkit_service::console;
use provkit_service::tokens::{self, Role};
use provkit_store::Session;
use ring::rand::SecureRandom as _;
use serde::Deserialize;

use super::{Failure, Out, layout};
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// The session cookie.
const COOKIE: &str = "pk_session";
/// The sign-in form's double-submit cookie (CSRF before there is a session).
const SIGNIN_COOKIE: &str = "pk_signin";

/// A signed-in console user: the session, and the caller it acts as.
#[derive(Debug, Clone)]
pub(crate) struct Console {
    pub(crate) session: Session,
    pub(crate) caller: Caller,
    /// The groups the switcher offers: the user's own and those below it.
    pub(crate) groups: Vec<String>,
    /// Set when the page answers from a snapshot that lags behind a
    /// change: the instant it shows and how long its build took.
    pub(crate) lag: std::sync::OnceLock<(chrono::DateTime<chrono::Utc>, std::time::Duration)>,
    /// When the request came (the page's waits are counted from it).
    pub(crate) asked: tokio::time::Instant,
}

impl Console {
    /// Marks the page as answered from a snapshot of the tenant `as_of`
    /// that lags behind a change (the page says so).
    pub(crate) fn lags_at(&self, as_of: chrono::DateTime<chrono::Utc>, cost: std::time::Duration) {
        let _ = self.lag.set((as_of, cost));
    }

    /// A 403 page unless the user's role is at least `role`.
    pub(crate) fn require(&self, role: Role) -> Result<(), Failure> {
        self.caller.require(role).map_err(|p| self.fail(p))
    }

    /// The organization group the session looks at.
    pub(crate) fn scope(&self) -> &str {
        self.caller.scope()
    }

    /// A 403 page unless `form` carries the session's CSRF token.
    pub(crate) fn check_csrf(&self, form: &FormData) -> Result<(), Failure> {
        if console::csrf_matches(&self.session, form.get("csrf").unwrap_or_default()) {
            Ok(())
        } else {
            Err(self.fail(Problem::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "the form did not carry this session's token; reload the page and try again",
            )))
        }
    }

    /// A form that needs `role`: the role and the CSRF token checked, the
    /// actor the audit log records at `at`.
    pub(crate) fn form_as(
        &self,
        role: Role,
        form: &FormData,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<provkit_store::Actor, Failure> {
        self.require(role)?;
        self.check_csrf(form)?;
        Ok(self.caller.actor(at))
    }

    /// `p` as a page within this session's layout.
    pub(crate) fn fail(&self, p: Problem) -> Failure {
        Failure::Page(Box::new((p, Some(self.clone()))))
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn random<const N: usize>() -> Result<[u8; N], Problem> {
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Problem::internal("no randomness from the operating system"))?;
    Ok(out)
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// Only a path inside the console may be returned to after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.contains("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let asked = tokio::time::Instant::now();
        let next = parts
            .uri
            .path_and_query()
            .map_or("/console/", |p| p.as_str())
            .to_owned();
        let to_sign_in = || {
            let next: String = next
                .bytes()
                .map(|b| match b {
                    b'&' => "%26".to_owned(),
                    b'?' => "%3F".to_owned(),
                    b'=' => "%3D".to_owned(),
                    b'#' => "%23".to_owned(),
                    b'%' => "%25".to_owned(),
                    b'+' => "%2B".to_owned(),
                    _ => (b as char).to_string(),
                })
                .collect();
            Failure::Redirect(format!("/console/sign-in?next={next}"))
        };
        let Some(presented) = cookie(&parts.headers, COOKIE).map(str::to_owned) else {
            return Err(to_sign_in());
        };
        let at = state.now();
        let found = state
            .run(provkit_store::org::ROOT, move |store| {
                let Some(session) = console::session(store, &presented, at)? else {
                    return Ok(None);
                };
                store.set_scope(&session.home_org_group);
                let groups = store.org_groups()?.into_iter().map(|g| g.path).collect();
                Ok(Some((session, groups)))
            })
            .await?;
        let Some((session, groups)) = found else {
            return Err(to_sign_in());
        };
        let role = Role::parse(&session.role).map_err(|e| Failure::from(Problem::from(e)))?;
        let caller = Caller(tokens::Caller::console_user(
            &session.user,
            role,
            &session.org_group,
        ));
        tracing::Span::current().record("caller", session.user.as_str());
        Ok(Console {
            session,
            caller,
            groups,
            lag: std::sync::OnceLock::new(),
            asked,
        })
    }
}

/// A form as submitted: every field in order (a key may repeat).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct FormData(pub(crate) Vec<(String, String)>);

impl FormData {
    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

fn sign_in_form(next: &str, token: &str, error: Option<&str>) -> maud::Markup {
    html! {
        div.signin {
            h1 { "Sign in to provkit" }
            @if let Some(e) = error { div.error role="alert" { (e) } }
            form.stack method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label { "User name" input type="text" name="name" id="name" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" id="password" autocomplete="current-password" required; }
                div { button type="submit" { "Sign in" } }
            }
        }
    }
}

pub(crate) async fn sign_in_page(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Out {
    let token = provkit_profile::hex(&random::<32>()?);
    let page = layout::page(
        None,
        "Sign in",
        "",
        sign_in_form(&safe_next(q.next.as_deref()), &token, None),
    );
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(&state, SIGNIN_COOKIE, &token, 900),
        )],
        page,
    )
        .into_response())
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    let next = safe_next(form.get("next"));
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    let presented = form.get("csrf").unwrap_or_default();
    let fresh = provkit_profile::hex(&random::<32>()?);
    let again = |status: StatusCode, msg: &str| {
        (
            status,
            [(
                header::SET_COOKIE,
                set_cookie(&state, SIGNIN_COOKIE, &fresh, 900),
            )],
            layout::page(None, "Sign in", "", sign_in_form(&next, &fresh, Some(msg))),
        )
            .into_response()
    };
    if expected.is_empty() || expected.len() != presented.len() || expected != presented {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this console; sign in again.",
        ));
    }
    let name = form.get("name").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default().to_owned();
    let at = state.now();
    let bytes = random::<64>()?;
    let signed = state
        .run(provkit_store::org::ROOT, move |store| {
            Ok(console::sign_in(store, &name, &password, &bytes, at)?)
        })
        .await?;
    let Some((cookie_value, _)) = signed else {
        tracing::info!("console sign-in refused");
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "That user name and password do not match.",
        ));
    };
    let ttl = console::SESSION_TTL.num_seconds();
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    for c in [
        set_cookie(&state, COOKIE, &cookie_value, ttl),
        set_cookie(&state, SIGNIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    console.check_csrf(&form)?;
    if let Some(c) = cookie(&headers, COOKIE).map(str::to_owned) {
        state
            .run(provkit_store::org::ROOT, move |store| {
                Ok(console::sign_out(store, &c)?)
            })
            .await?;
    }
    Ok((
        [(header::SET_COOKIE, set_cookie(&state, COOKIE, "", 0))],
        Redirect::to("/console/sign-in"),
    )
        .into_response())
}

pub(crate) async fn switch_group(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<FormData>,
) -> Out {
    console.check_csrf(&form)?;
    let group = form.get("org_group").unwrap_or_default().to_owned();
    let session = console.session.clone();
    state
        .run(&session.home_org_group.clone(), move |store| {
            Ok(console::switch_group(store, &session, &group)?)
        })
        .await
        .map_err(|p| console.fail(p))?;
    Ok(Redirect::to("/console/").into_response())
}
