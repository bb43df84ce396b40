//! Every refusal and failure as an RFC 9457 problem details response
//! (`application/problem+json`) with a stable `code`: handlers return
//! `Result<_, Problem>` and use `?` on service calls.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provkit_service::ServiceError;
use provkit_store::StoreError;
use serde_json::{Map, Value, json};

/// A problem: an HTTP status, a stable code, a title and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (`not-found`, `in-use`, `untrusted-profile`, ...).
    pub code: &'static str,
    /// What happened, for a person.
    pub detail: String,
    /// Members beyond the standard ones (`findings`, `apps`, ...).
    pub extra: Map<String, Value>,
}

impl Problem {
    /// A problem with no extra members.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member.
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// 401: no token, or one that is not (or no longer) valid.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid token as Authorization: Bearer TOKEN",
        )
    }

    /// 404, the same whether the object does not exist or lies outside the
    /// caller's scope.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no {what} by that name"),
        )
    }

    /// 503 for a part of the server that stopped.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 503 for a console page asked for while the tenant is first read
    /// (after the server started): the page says so and reloads itself.
    pub fn loading() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "loading",
            "The tenant is being read for the first time since the server started; this page reloads itself until it is ready.",
        )
    }

    /// 500 with `detail`; the cause belongs in the server log, not here.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// 500 for a failure whose cause the server log has (logged by the
    /// caller).
    pub fn failed() -> Self {
        Self::internal("the operation failed; the server log has the details")
    }

    /// 400 for a request that does not read.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:provkit:problem:{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Value::Object(m) = &mut body {
            m.extend(self.extra);
        }
        let loading = self.code == "loading";
        let mut r = (self.status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if loading {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        r
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::UnknownReference { kind, .. } => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", e.to_string())
                    .with("kind", json!(kind))
            }
            StoreError::Invalid(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
            }
            StoreError::Conflict(_) => {
                Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Profile(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-a-profile",
                e.to_string(),
            ),
            _ => {
                tracing::error!(error = %e, "store failure");
                Problem::internal("the store failed; the server log has the details")
            }
        }
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        let detail = e.to_string();
        match e {
            ServiceError::Store(s) => s.into(),
            ServiceError::Untrusted { uuid, findings } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "untrusted-profile",
                detail,
            )
            .with("uuid", json!(uuid))
            .with("findings", json!(findings)),
            ServiceError::NotASuccessor { .. } => {
                Problem::new(StatusCode::CONFLICT, "not-a-successor", detail)
            }
            ServiceError::InUse {
                uuid,
                apps,
                assignments,
            } => Problem::new(StatusCode::CONFLICT, "in-use", detail)
                .with("uuid", json!(uuid))
                .with("apps", json!(apps))
                .with("assignments", json!(assignments)),
            ServiceError::InvalidApp { codes } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-app", detail)
                    .with("findings", json!(codes))
            }
            ServiceError::NotAnApp(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "not-an-app", detail)
            }
            ServiceError::Ambiguous { matches, .. } => {
                Problem::new(StatusCode::CONFLICT, "ambiguous", detail)
                    .with("matches", json!(matches))
            }
            ServiceError::Unknown { kind, .. } => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", detail).with("kind", json!(kind))
            }
            ServiceError::NotAnInventory(_) => Problem::bad_request("not-an-inventory", detail),
            ServiceError::OutOfRange(_) => Problem::bad_request("out-of-range", detail),
            ServiceError::NotEmpty { .. } => {
                Problem::new(StatusCode::CONFLICT, "not-empty", detail)
            }
            _ => {
                tracing::error!(error = %detail, "service failure");
                Problem::failed()
            }
        }
    }
}

/// Every error response as a problem: axum's own rejections (a body that
/// is not JSON, a missing query parameter, a body over the limit, a method
/// the path does not take, a timeout) come as plain text; this rewrites
/// them, keeping their text as the detail. Problems pass unchanged.
pub(crate) async fn normalize(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            // Problems already, and the console's pages that say what went wrong.
            v.starts_with(b"application/problem+json") || v.starts_with(b"text/html")
        });
    if is_problem {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid-body",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::NOT_FOUND => "not-found",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    // Rejection texts are short; read at most 4 KiB of them.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    Problem::new(status, code, detail).into_response()
}
