//! The page shell: header with navigation, the org-group switcher and
//! sign-out, a main landmark, the stylesheet and the little script.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Console;

/// The sections of the navigation: (path, label).
const NAV: [(&str, &str); 7] = [
    ("/console/", "Dashboard"),
    ("/console/profiles", "Profiles"),
    ("/console/apps", "Apps"),
    ("/console/devices", "Devices"),
    ("/console/groups", "Groups"),
    ("/console/audit", "Audit log"),
    ("/console/settings", "Settings"),
];

/// A whole page: `title`, the navigation with `section` current, `body`.
pub(crate) fn page(
    console: Option<&Console>,
    title: &str,
    section: &str,
    body: Markup,
) -> Response {
    page_reloading(console, title, section, body, None)
}

/// [`page`] that the browser loads again after `reload` seconds.
pub(crate) fn page_reloading(
    console: Option<&Console>,
    title: &str,
    section: &str,
    body: Markup,
    reload: Option<u32>,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(s) = reload { meta http-equiv="refresh" content=(s); }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · provkit" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console/" { "provkit" }
                    @if let Some(c) = console {
                        nav.main aria-label="Main" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        a href=(path) aria-current=[(path == section).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                        div.who {
                            form method="post" action="/console/org-group" {
                                input type="hidden" name="csrf" value=(c.session.csrf);
                                label.check for="org-group" { span.muted { "Organization group" } }
                                select id="org-group" name="org_group" {
                                    @for g in &c.groups {
                                        option value=(g) selected[*g == c.session.org_group] { (g) }
                                    }
                                }
                                button.secondary type="submit" { "Switch" }
                            }
                            span { (c.session.user) " (" (c.session.role) ")" }
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(c.session.csrf);
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    @if let Some((as_of, cost)) = console.and_then(|c| c.lag.get()) {
                        div.note.lag role="status" {
                            "This page shows the tenant as it was at " (as_of.format("%Y-%m-%d %H:%M:%S UTC"))
                            ": a change made since is being applied (the last update took "
                            (format!("{:.1}", cost.as_secs_f64())) " s). "
                            a href="" { "Reload" } " to see it."
                        }
                    }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The class of a days-left cell: red at 30 or less, amber to 60.
pub(crate) fn days_class(days: i64) -> &'static str {
    if days <= 30 {
        "num days-red"
    } else if days <= 60 {
        "num days-amber"
    } else {
        "num"
    }
}

/// "expires in N days" / "expired N days ago".
pub(crate) fn days_text(days: i64) -> String {
    match days {
        d if d < 0 => format!("expired {} days ago", -d),
        0 => "expires today".to_owned(),
        1 => "expires in 1 day".to_owned(),
        d => format!("expires in {d} days"),
    }
}

/// A date as admins read it.
pub(crate) fn date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Previous and next links for a page of `total` items.
pub(crate) fn pager(base: &str, offset: usize, limit: usize, total: usize) -> Markup {
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a href={(base) (sep) "offset=" (offset.saturating_sub(limit))} rel="prev" { "← Previous" }
            }
            span.muted { (offset.min(total) + usize::from(total > 0)) "–" ((offset + limit).min(total)) " of " (total) }
            @if offset + limit < total {
                a href={(base) (sep) "offset=" (offset + limit)} rel="next" { "Next →" }
            }
        }
    }
}
