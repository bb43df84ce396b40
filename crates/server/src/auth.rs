//! Who is calling: every handler but `/healthz` takes a [`Caller`], which
//! only a valid, unrevoked bearer token produces (401 otherwise), so no
//! handler can forget to authenticate; [`Caller::require`] checks the role.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use provkit_service::tokens::{self, Role};
use provkit_store::Actor;

use crate::problem::Problem;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub tokens::Caller);

impl Caller {
    /// 403 unless the caller's role is at least `role`.
    ///
    /// # Errors
    /// A `forbidden` problem naming the role needed.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} is a {}; this needs {}",
                    self.0.name,
                    self.0.role.as_str(),
                    role.as_str()
                ),
            ))
        }
    }

    /// The organization group the caller acts within.
    pub fn scope(&self) -> &str {
        &self.0.org_group
    }

    /// The caller as the actor the audit log records, at `at`.
    pub fn actor(&self, at: chrono::DateTime<chrono::Utc>) -> Actor {
        let kind = if self.0.console { "console" } else { "token" };
        Actor {
            name: format!("{kind}:{}", self.0.name),
            at,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // Authenticated already by the route's least-role layer.
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(Problem::unauthorized)?
            .to_owned();
        let caller = state
            .run(provkit_store::org::ROOT, move |store| {
                let all = store.tokens()?;
                Ok(tokens::authenticate(&all, &presented))
            })
            .await?
            .ok_or_else(Problem::unauthorized)?;
        tracing::Span::current().record("caller", caller.name.as_str());
        Ok(Caller(caller))
    }
}
