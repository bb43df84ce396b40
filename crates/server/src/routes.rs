//! The route table: every endpoint once, with its method, path, least role,
//! query parameters, body and summary. The router and the OpenAPI document
//! are both built from it, so the description cannot drift from the code.

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde_json::{Map, Value, json};

use axum::extract::Request;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use provkit_service::tokens::Role;

use crate::api::{admin, apps, mdm, notify, profiles, tenant};
use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Nothing.
    None,
    /// A JSON document.
    Json,
    /// Raw bytes of this media type.
    Bytes(&'static str),
    /// JSON or CSV.
    JsonOrCsv,
}

/// One endpoint.
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    /// The least role that may call it (`None`: no token needed), enforced
    /// for the route before its handler runs; a handler may ask more for
    /// some requests (an admin to override trust).
    pub(crate) role: Option<Role>,
    pub(crate) query: &'static [(&'static str, &'static str)],
    pub(crate) body: Body,
    /// The success status and what it returns.
    pub(crate) ok: (u16, &'static str),
    pub(crate) summary: &'static str,
    /// A large upload (the upload limit applies instead of the body limit).
    pub(crate) upload: bool,
    pub(crate) handler: fn() -> MethodRouter<AppState>,
}

const PAGE: [(&str, &str); 2] = [
    ("limit", "items per page, 1 to 1000 (default 100)"),
    ("offset", "items to skip"),
];

/// Every endpoint.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        role: None,
        query: &[],
        body: Body::None,
        ok: (200, "the server is up"),
        summary: "Liveness, without authentication",
        upload: false,
        handler: || get(crate::healthz),
    },
    Route {
        method: "get",
        path: "/api/v1/openapi.json",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (200, "this document"),
        summary: "The OpenAPI 3.1 description of every endpoint",
        upload: false,
        handler: || get(crate::openapi_json),
    },
    Route {
        method: "get",
        path: "/api/v1/profiles",
        role: Some(Role::Viewer),
        query: &[
            ("kind", "development, adhoc, enterprise, appstore, ..."),
            ("team", "team identifier"),
            ("q", "substring of the name, UUID or App ID"),
            PAGE[0],
            PAGE[1],
        ],
        body: Body::None,
        ok: (200, "a page of profiles, soonest expiry first"),
        summary: "List profiles",
        upload: false,
        handler: || get(profiles::list),
    },
    Route {
        method: "post",
        path: "/api/v1/profiles",
        role: Some(Role::Operator),
        query: &[
            ("name", "the admin's display name (at most 200 characters)"),
            (
                "description",
                "the admin's description (at most 2,000 characters)",
            ),
            (
                "allow_untrusted",
                "store a profile that fails its trust checks (admin; audited)",
            ),
        ],
        body: Body::Bytes("application/octet-stream"),
        ok: (201, "the stored profile"),
        summary: "Upload a .mobileprovision: verified against the tenant's anchors and stored",
        upload: false,
        handler: || post(profiles::upload),
    },
    Route {
        method: "get",
        path: "/api/v1/profiles/{uuid}",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (200, "the profile with its versions"),
        summary: "One profile, by UUID or a unique prefix of 8 or more",
        upload: false,
        handler: || get(profiles::show),
    },
    Route {
        method: "patch",
        path: "/api/v1/profiles/{uuid}",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Json,
        ok: (200, "the profile with its versions"),
        summary: "Set the admin's name and description ({\"name\": ..., \"description\": ...}; empty clears)",
        upload: false,
        handler: || patch(profiles::relabel),
    },
    Route {
        method: "delete",
        path: "/api/v1/profiles/{uuid}",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (204, "deleted"),
        summary: "Delete a profile; 409 with the apps and assignments while it is in use",
        upload: false,
        handler: || delete(profiles::delete),
    },
    Route {
        method: "get",
        path: "/api/v1/profiles/{uuid}/assignments",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (200, "include and exclude targets"),
        summary: "A profile's assignment targets",
        upload: false,
        handler: || get(profiles::assignments),
    },
    Route {
        method: "put",
        path: "/api/v1/profiles/{uuid}/assignments",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Json,
        ok: (200, "targets before and after, devices gaining and losing"),
        summary: "Set exactly these include and exclude targets",
        upload: false,
        handler: || put(profiles::put_assignments),
    },
    Route {
        method: "patch",
        path: "/api/v1/profiles/{uuid}/assignments",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Json,
        ok: (200, "targets before and after, devices gaining and losing"),
        summary: "Add targets ({\"add\": ...}) or remove them ({\"remove\": ...})",
        upload: false,
        handler: || patch(profiles::patch_assignments),
    },
    Route {
        method: "get",
        path: "/api/v1/profiles/{uuid}/devices",
        role: Some(Role::Viewer),
        query: &PAGE,
        body: Body::None,
        ok: (
            200,
            "a page of devices with their state: pending-install, sent, installed, failed (with the error chain), pending-removal, removed",
        ),
        summary: "Per-device status of a profile",
        upload: false,
        handler: || get(profiles::devices),
    },
    Route {
        method: "post",
        path: "/api/v1/profiles/{uuid}/renew",
        role: Some(Role::Operator),
        query: &[("allow_untrusted", "admin; audited")],
        body: Body::Bytes("application/octet-stream"),
        ok: (200, "what moved to the successor"),
        summary: "Renew with the successor's bytes: apps and assignments move to it",
        upload: false,
        handler: || post(profiles::renew),
    },
    Route {
        method: "post",
        path: "/api/v1/apps",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Bytes("application/octet-stream"),
        ok: (201, "the app, linked to its embedded profile"),
        summary: "Upload an .ipa: verified, its profile stored, the app linked; refused with its findings",
        upload: true,
        handler: || post(apps::upload),
    },
    Route {
        method: "post",
        path: "/api/v1/ipa/verify",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::Bytes("application/octet-stream"),
        ok: (200, "the verification report"),
        summary: "Verify an .ipa the way iOS does, now; nothing is stored",
        upload: true,
        handler: || post(apps::verify),
    },
    Route {
        method: "post",
        path: "/api/v1/inventory",
        role: Some(Role::Viewer),
        query: &[
            ("replace", "replace every group and device the batch names"),
            (
                "replace_groups",
                "comma-separated groups to replace; the rest merges",
            ),
            ("dry_run", "report the change, write nothing (viewer)"),
        ],
        body: Body::JsonOrCsv,
        ok: (
            200,
            "every change, with the devices whose desired profiles change",
        ),
        summary: "Import users, devices and groups (merged by default); operator, or viewer for a dry run",
        upload: false,
        handler: || post(tenant::post_inventory),
    },
    Route {
        method: "get",
        path: "/api/v1/plan",
        role: Some(Role::Viewer),
        query: &[
            (
                "limit",
                "commands and user notices per page, 1 to 1000 (default 1000)",
            ),
            ("offset", "commands and user notices to skip"),
        ],
        body: Body::None,
        ok: (
            200,
            "a page of the commands and user notices (with their totals), the notifications, blockers and warnings",
        ),
        summary: "The plan now",
        upload: false,
        handler: || get(tenant::get_plan),
    },
    Route {
        method: "get",
        path: "/api/v1/expiring",
        role: Some(Role::Viewer),
        query: &[
            ("within", "a window such as 60d (default) or 8w"),
            ("kind", "profile or certificate"),
            ("team", "team identifier"),
            ("app", "bundle id"),
        ],
        body: Body::None,
        ok: (200, "dead but in use, and dying within the window"),
        summary: "What dies, when, and what to do",
        upload: false,
        handler: || get(tenant::expiring),
    },
    Route {
        method: "get",
        path: "/api/v1/devices/{udid}/explain",
        role: Some(Role::Viewer),
        query: &[(
            "profile",
            "the profile's UUID or a unique prefix (required)",
        )],
        body: Body::None,
        ok: (200, "why the device should or should not hold the profile"),
        summary: "Explain a device's profile",
        upload: false,
        handler: || get(tenant::explain),
    },
    Route {
        method: "get",
        path: "/api/v1/audit",
        role: Some(Role::Viewer),
        query: &PAGE,
        body: Body::None,
        ok: (200, "a page of the audit log, newest first"),
        summary: "The audit log",
        upload: false,
        handler: || get(tenant::audit_log),
    },
    Route {
        method: "get",
        path: "/api/v1/tokens",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (
            200,
            "the tokens of the caller's group and below, revoked ones too; never a token or its hash",
        ),
        summary: "List API tokens",
        upload: false,
        handler: || get(admin::tokens_list),
    },
    Route {
        method: "post",
        path: "/api/v1/tokens",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Json,
        ok: (201, "the token, shown this once, and its record"),
        summary: "Make a token: {\"name\": ..., \"role\": \"viewer|operator|admin\", \"org_group\": PATH within the caller's}",
        upload: false,
        handler: || post(admin::tokens_create),
    },
    Route {
        method: "delete",
        path: "/api/v1/tokens/{name}",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (200, "the revoked token's record"),
        summary: "Revoke a token; it authenticates nothing from then on",
        upload: false,
        handler: || delete(admin::tokens_revoke),
    },
    Route {
        method: "get",
        path: "/api/v1/org-groups",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (200, "the caller's organization group and those below it"),
        summary: "List organization groups",
        upload: false,
        handler: || get(admin::org_groups_list),
    },
    Route {
        method: "post",
        path: "/api/v1/org-groups",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Json,
        ok: (201, "the groups made (200 and none when all were there)"),
        summary: "Make an organization group and its missing parents: {\"path\": \"Global/EMEA/Benelux\"}",
        upload: false,
        handler: || post(admin::org_groups_create),
    },
    Route {
        method: "get",
        path: "/api/v1/trust-anchors",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (200, "the anchors beside Apple's roots"),
        summary: "List trust anchors",
        upload: false,
        handler: || get(admin::anchors_list),
    },
    Route {
        method: "post",
        path: "/api/v1/trust-anchors",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Bytes("application/x-pem-file"),
        ok: (201, "the anchor"),
        summary: "Add a trust anchor (a certificate, PEM or DER; the root group's admins)",
        upload: false,
        handler: || post(admin::anchors_add),
    },
    Route {
        method: "delete",
        path: "/api/v1/trust-anchors/{sha256}",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (200, "the anchor removed"),
        summary: "Remove a trust anchor by SHA-256 (or a unique prefix of 8 or more)",
        upload: false,
        handler: || delete(admin::anchors_remove),
    },
    Route {
        method: "get",
        path: "/api/v1/mdm-connections",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (
            200,
            "the connections of the caller's group and below, with their delivery state; never a key",
        ),
        summary: "List MDM connections: due dispatches, devices not pushed, degraded when sends keep failing",
        upload: false,
        handler: || get(mdm::list),
    },
    Route {
        method: "post",
        path: "/api/v1/mdm-connections",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Json,
        ok: (201, "the connection, without its keys"),
        summary: "Add an MDM connection: {\"kind\": \"nanomdm|micromdm\", \"url\", \"api_key\", \"webhook_hmac_key\", \"org_group\", \"name\"}",
        upload: false,
        handler: || post(mdm::add),
    },
    Route {
        method: "delete",
        path: "/api/v1/mdm-connections/{name}",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (204, "removed"),
        summary: "Remove an MDM connection",
        upload: false,
        handler: || delete(mdm::remove),
    },
    Route {
        method: "get",
        path: "/api/v1/notify-channels",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (
            200,
            "the channels of the caller's group and below, with their pending messages and last failure; never a secret",
        ),
        summary: "List notification channels",
        upload: false,
        handler: || get(notify::list),
    },
    Route {
        method: "post",
        path: "/api/v1/notify-channels",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Json,
        ok: (201, "the channel, without its secret"),
        summary: "Add a channel: {\"name\", \"kind\": \"webhook|slack|teams\", \"url\", \"secret\", \"to\", \"org_group\"}",
        upload: false,
        handler: || post(notify::add),
    },
    Route {
        method: "delete",
        path: "/api/v1/notify-channels/{name}",
        role: Some(Role::Admin),
        query: &[],
        body: Body::None,
        ok: (204, "removed"),
        summary: "Remove a notification channel",
        upload: false,
        handler: || delete(notify::remove),
    },
    Route {
        method: "put",
        path: "/api/v1/notify-stages",
        role: Some(Role::Admin),
        query: &[],
        body: Body::Json,
        ok: (
            200,
            "the stages as stored (admin stages sorted, most days first)",
        ),
        summary: "The tenant's notice stages: {\"admin_thresholds_days\": [60, 30, 7, 0], \"user_notice_days\": 30} (an admin at the root group)",
        upload: false,
        handler: || put(notify::stages),
    },
    Route {
        method: "put",
        path: "/api/v1/profiles/{uuid}/notifications",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Json,
        ok: (200, "the settings as stored"),
        summary: "A profile's own notification stages or off: {\"stages\": [90, 30, 7]} or {\"off\": true}; {} for the tenant's",
        upload: false,
        handler: || put(notify::settings),
    },
    Route {
        method: "put",
        path: "/api/v1/apps/{bundle_id}/notifications",
        role: Some(Role::Operator),
        query: &[],
        body: Body::Json,
        ok: (200, "the settings as stored"),
        summary: "An app's own notification settings, for every version: {\"off\": true}, or {\"stages\": [90, 30], \"user_stage\": 45} (admin stages for the profiles it uses, its device users' stage); {} for the tenant's",
        upload: false,
        handler: || put(notify::app_settings),
    },
    Route {
        method: "get",
        path: "/api/v1/calendar.ics",
        role: Some(Role::Viewer),
        query: &[],
        body: Body::None,
        ok: (
            200,
            "an iCalendar feed: an event per profile's death date, reminders at the admin stages",
        ),
        summary: "The expiry calendar of the caller's organization group",
        upload: false,
        handler: || get(notify::calendar),
    },
    Route {
        method: "post",
        path: "/webhooks/nanomdm",
        role: None,
        query: &[],
        body: Body::Json,
        ok: (200, "kept; processed after the answer"),
        summary: "NanoMDM's webhook: X-Hmac-Signature checked when a connection has a key (401 otherwise), 400 for an unreadable event",
        upload: false,
        handler: || post(mdm::nanomdm_webhook),
    },
    Route {
        method: "post",
        path: "/webhooks/micromdm",
        role: None,
        query: &[],
        body: Body::Json,
        ok: (200, "kept; processed after the answer"),
        summary: "MicroMDM's command webhook, as NanoMDM's",
        upload: false,
        handler: || post(mdm::micromdm_webhook),
    },
];

/// Authenticates the caller and checks the route's least role before the
/// handler (or any of its extractors) runs; the handler finds the caller in
/// the request's extensions.
async fn least_role(
    role: Role,
    caller: Caller,
    mut req: Request,
    next: Next,
) -> Result<Response, Problem> {
    caller.require(role)?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The router over [`ROUTES`]: each route's least role enforced, large
/// uploads given the upload limit and every other route the body limit.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let limits = state.limits;
    ROUTES.iter().fold(Router::new(), |r, route| {
        let body_limit = if route.upload {
            limits.max_upload_bytes
        } else {
            limits.max_body_bytes
        };
        let limit = usize::try_from(body_limit).unwrap_or(usize::MAX);
        let mut handler = (route.handler)().layer(axum::extract::DefaultBodyLimit::max(limit));
        if let Some(role) = route.role {
            handler = handler.route_layer(from_fn_with_state(
                state.clone(),
                move |caller: Caller, req: Request, next: Next| least_role(role, caller, req, next),
            ));
        }
        r.route(route.path, handler)
    })
}

fn problem_ref() -> Value {
    json!({"description": "a problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// The OpenAPI 3.1 document for [`ROUTES`].
pub(crate) fn openapi() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(|(name, what)| {
            json!({"name": name, "in": "query", "required": *name == "profile", "description": what, "schema": {"type": "string"}})
        }));
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}{}", r.method, r.path.replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": {
                r.ok.0.to_string(): {"description": r.ok.1},
                "default": problem_ref(),
            },
        });
        match r.role {
            Some(role) => {
                op["security"] = json!([{"bearer": []}]);
                op["x-provkit-role"] = json!(role.as_str());
            }
            None => op["security"] = json!([]),
        }
        let content = match r.body {
            Body::None => None,
            Body::Json => Some(json!({"application/json": {"schema": {"type": "object"}}})),
            Body::Bytes(t) => Some(json!({t: {"schema": {"type": "string", "format": "binary"}}})),
            Body::JsonOrCsv => Some(json!({
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            })),
        };
        if let Some(c) = content {
            op["requestBody"] = json!({"required": true, "content": c});
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "provkit", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
            }},
        },
    })
}
