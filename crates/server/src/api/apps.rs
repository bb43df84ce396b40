//! `POST /api/v1/apps` (verify, store, link) and `POST /api/v1/ipa/verify`
//! (the report only). The upload is streamed to a temporary file, never
//! held whole in memory, and capped at the configured upload size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use http_body_util::BodyExt as _;
use provkit_codesign::archive::{Archive, Limits};
use provkit_codesign::{At, Options, verify_archive};
use provkit_service::tokens::Role;
use provkit_service::{import, trust};
use tokio::io::AsyncWriteExt as _;

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// A spooled upload, removed when dropped.
pub(crate) struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Upload {
    /// A new temporary path, not yet created.
    pub(crate) fn fresh() -> Self {
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        Upload(std::env::temp_dir().join(format!("provkit-upload-{}-{n}.ipa", std::process::id())))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// Streams `body` into a new temporary file of at most `max` bytes.
async fn spool(body: Body, max: u64) -> Result<Upload, Problem> {
    let upload = Upload::fresh();
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "spooling an upload");
        Problem::internal("the upload could not be stored")
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&upload.0)
        .await
        .map_err(internal)?;
    let mut body = body;
    let mut written: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Problem::bad_request("truncated-body", format!("the upload broke off: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > max {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the upload is larger than {max} bytes"),
            ));
        }
        file.write_all(&data).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    if written == 0 {
        return Err(Problem::bad_request(
            "empty-body",
            "send the .ipa as the body",
        ));
    }
    Ok(upload)
}

pub(crate) fn open(upload: &Upload) -> Result<Archive, Problem> {
    Archive::open(&upload.0, Limits::default()).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-an-app",
            format!("not readable as an app: {e}"),
        )
    })
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Operator)?;
    let upload = spool(body, state.limits.max_upload_bytes).await?;
    let at = state.now();
    let actor = caller.actor(at);
    let app = state
        .run(caller.scope(), move |store| {
            let archive = open(&upload)?;
            let verifier = trust::tenant_verifier(store)?;
            Ok(import::import_ipa(store, &archive, &verifier, at, &actor)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(app)))
}

pub(crate) async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<impl IntoResponse, Problem> {
    caller.require(Role::Viewer)?;
    let upload = spool(body, state.limits.max_upload_bytes).await?;
    let at = state.now();
    let report = state
        .run(caller.scope(), move |store| {
            let archive = open(&upload)?;
            let verifier = trust::tenant_verifier(store)?;
            verify_archive(&archive, &Options::new(&verifier, At::Instant(at))).map_err(|e| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not-an-app",
                    e.to_string(),
                )
            })
        })
        .await?;
    Ok(Json(report))
}
