//! The console's HTML, written with maud: every `(value)` is escaped when rendered, so a
//! user-controlled string (a user_id, an address, a reason) can never become markup.

use maud::{html, Markup, DOCTYPE};

use super::actions::Action;
use crate::api::admin::views::{AuditView, PauseView, StuckView, WithdrawalDetail};
use crate::api::views::WithdrawalView;

/// A message at the top of a page: what just happened, or why it did not.
pub enum Flash {
    Done(String),
    Failed { title: String, detail: String },
}

/// Search results: the withdrawals found for `text` (`None`: nothing asked yet), each linking
/// to its page, and a link to the next page of the user's withdrawals.
pub fn search(
    text: &str,
    found: Option<&[WithdrawalView]>,
    later_page: bool,
    next: Option<&str>,
) -> Markup {
    html! {
        @match found {
            None => { p.hint { "Type a withdrawal's id, its foreign_id (pd-…) or a user id in the search box." } }
            Some([]) => { p.empty #search-results { "Nothing found for " code { (text) } "." } }
            Some(found) => {
                p.hint { "Found for " code { (text) } ": the withdrawal with this id or foreign_id, then the user's, newest first." }
                table #search-results {
                    tr { th { "withdrawal" } th { "foreign_id" } th { "user" } th { "amount" } th { "status" } th { "created" } }
                    @for w in found {
                        tr {
                            td { (withdrawal_link(w)) }
                            td { code { (w.foreign_id) } }
                            td { (w.user_id) }
                            td.num { (money(w)) }
                            td { (w.status) }
                            td { (w.created_at) }
                        }
                    }
                }
            }
        }
        p.pages {
            @if later_page { a #first-page href=(format!("/admin/search?q={}", form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>())) { "← First page" } " " }
            @if let Some(href) = next { a #next-page href=(href) { "Next page →" } }
        }
    }
}

/// The stuck queue's kinds, in the order an operator works through them, with a heading.
pub const KINDS: [(&str, &str); 5] = [
    ("awaiting_approval", "Awaiting approval"),
    ("attempts_exhausted", "Parked: attempts exhausted"),
    ("needs_operator", "Parked: needs an operator"),
    ("missing", "Missing at CoinsPaid"),
    ("anomaly", "Anomalies"),
];

/// The page frame: navigation, the operator's name and logout (when logged in), the flash.
pub fn layout(
    title: &str,
    who: Option<(&str, &str)>,
    flash: Option<&Flash>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · payoutd console" }
                link rel="stylesheet" href="/admin/assets/console.css";
            }
            body {
                header {
                    strong { "payoutd console" }
                    @if let Some((operator, csrf)) = who {
                        nav {
                            a href="/admin" { "Stuck queue" }
                            a href="/admin/pauses" { "Pause switch" }
                            a href="/admin/audit" { "Audit trail" }
                        }
                        form.search role="search" method="get" action="/admin/search" {
                            input #search type="search" name="q" aria-label="Search withdrawals"
                                placeholder="withdrawal id, foreign_id or user id" required;
                            button type="submit" { "Search" }
                        }
                        form.logout method="post" action="/admin/logout" {
                            span { "Signed in as " strong #operator { (operator) } }
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @match flash {
                        Some(Flash::Done(text)) => { p.flash.done role="status" { (text) } }
                        Some(Flash::Failed { title, detail }) => {
                            div.flash.failed role="alert" { strong { (title) } p { (detail) } }
                        }
                        None => {}
                    }
                    (body)
                }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    let flash = error.map(|e| Flash::Failed {
        title: "Not signed in".into(),
        detail: e.into(),
    });
    layout(
        "Sign in",
        None,
        flash.as_ref(),
        html! {
            form.card method="post" action="/admin/login" {
                label for="token" { "Operator token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
                p.hint { "Your token from PAYOUTD_ADMIN_TOKENS. It is checked once; the browser keeps only a session cookie." }
            }
        },
    )
}

fn withdrawal_link(w: &WithdrawalView) -> Markup {
    html! { a href=(format!("/admin/withdrawals/{}", w.id)) { code { (w.id) } } }
}

fn money(w: &WithdrawalView) -> Markup {
    html! {
        (w.amount) " " (w.currency)
        @if let Some(to) = &w.convert_to { " → " (to) }
    }
}

/// The stuck queue: counts per kind in the whole queue, then this page's withdrawals in one
/// table per kind, and a link to the next page (oldest first, so a page never shifts under
/// an operator working through it). `next` is the next page's address.
pub fn stuck(
    items: &[StuckView],
    totals: &[(String, i64)],
    later_page: bool,
    next: Option<&str>,
) -> Markup {
    let total = |kind: &str| {
        totals
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n)
    };
    let count = |kind: &str| items.iter().filter(|i| i.kind == kind).count();
    html! {
        table.counts {
            tr { @for (kind, heading) in KINDS { th { a href=(format!("#{kind}")) { (heading) } } } }
            tr { @for (kind, _) in KINDS { td data-kind=(kind) { (total(kind)) } } }
        }
        @if later_page || next.is_some() {
            p.hint { "Counts are of the whole queue; the tables show this page's " (items.len()) "." }
        }
        @for (kind, heading) in KINDS {
            section #(kind) {
                h2 { (heading) " (" (count(kind)) @if later_page || next.is_some() { " on this page" } ")" }
                @if count(kind) == 0 {
                    p.empty { "Nothing here." }
                } @else {
                    table {
                        tr { th { "withdrawal" } th { "user" } th { "amount" } th { "status" } th { "why" } th { "created" } }
                        @for item in items.iter().filter(|i| i.kind == kind) {
                            tr {
                                td { (withdrawal_link(&item.withdrawal)) }
                                td { (item.withdrawal.user_id) }
                                td.num { (money(&item.withdrawal)) }
                                td { (item.withdrawal.status) }
                                td { (why(item)) }
                                td { (item.withdrawal.created_at) }
                            }
                        }
                    }
                }
            }
        }
        p.pages {
            @if later_page { a #first-page href="/admin" { "← First page" } " " }
            @if let Some(href) = next { a #next-page href=(href) { "Next page →" } }
        }
    }
}

/// One line on why a withdrawal needs a person.
fn why(item: &StuckView) -> String {
    item.review_reason
        .clone()
        .or_else(|| item.withdrawal.anomaly.clone())
        .or_else(|| {
            item.missing_since
                .as_ref()
                .map(|t| format!("no record at CoinsPaid since {t}"))
        })
        .or_else(|| item.job.as_ref().and_then(|j| j.last_error.clone()))
        .unwrap_or_default()
}

fn row<T: std::fmt::Display>(label: &str, value: Option<T>) -> Markup {
    row_m(label, value.map(|v| html! { (v) }))
}

fn row_m(label: &str, value: Option<Markup>) -> Markup {
    html! { tr { th { (label) } td { @if let Some(v) = value { (v) } @else { span.none { "—" } } } } }
}

/// A withdrawal's page: its fields, why it is here, the actions its status allows, its ledger
/// entries, callbacks and audit rows. Never travel-rule (MiCA) data: the view has none.
pub fn withdrawal(d: &WithdrawalDetail, csrf: &str) -> Markup {
    let w = &d.item.withdrawal;
    let job = d.item.job.as_ref();
    html! {
        div.columns {
            table.fields {
                (row("id", Some(w.id)))
                (row("kind", Some(&d.item.kind)))
                (row("status", Some(w.status)))
                (row("foreign_id", Some(&w.foreign_id)))
                (row("user_id", Some(&w.user_id)))
                (row_m("amount", Some(money(w))))
                (row("address", Some(&w.address)))
                (row("tag", w.tag.as_ref()))
                (row("end_user_reference", Some(&w.end_user_reference)))
                (row("provider_id", w.provider_id))
                (row("provider_status", w.provider_status.as_ref()))
                (row("sent", w.sent.as_ref().map(|m| format!("{} {}", m.amount, m.currency))))
                (row("received", w.received.as_ref().map(|m| format!("{} {}", m.amount, m.currency))))
                (row("txids", (!w.txids.is_empty()).then(|| w.txids.join(", "))))
                (row("error", w.error.as_ref()))
                (row("anomaly", w.anomaly.as_ref()))
                (row("anomaly acknowledged", d.item.anomaly_acknowledged_at.as_ref().map(|at| format!(
                    "{at} by {}{}",
                    d.item.anomaly_acknowledged_by.as_deref().unwrap_or("?"),
                    if d.item.anomaly_unacknowledged { "; a newer one is not acknowledged" } else { "" }
                ))))
                (row("review_reason", d.item.review_reason.as_ref()))
                (row("missing_since", d.item.missing_since.as_ref()))
                (row("submission", job.map(|j| format!(
                    "{} attempt(s){}{}",
                    j.attempts,
                    j.park_reason.as_ref().map(|r| format!(", parked: {r}")).unwrap_or_default(),
                    j.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
                ))))
                (row("created_at", Some(&w.created_at)))
                (row("updated_at", Some(&w.updated_at)))
            }
            div.actions {
                (action_forms(w, csrf))
                @if d.item.anomaly_unacknowledged { (acknowledge_form(w, csrf)) }
            }
        }
        h2 { "Ledger entries" }
        table {
            tr { th { "at" } th { "kind" } th { "amount" } th { "reference" } }
            @for e in &d.ledger {
                tr { td { (e.created_at) } td { (format!("{:?}", e.kind).to_lowercase()) } td.num { (e.amount) " " (e.currency) } td { (e.reference.as_deref().unwrap_or("")) } }
            }
        }
        h2 { "Callbacks" }
        @if d.callbacks.is_empty() { p.empty { "None received." } } @else {
            table {
                tr { th { "received" } th { "signature" } th { "CoinsPaid status" } th { "verdict" } th { "detail" } }
                @for c in &d.callbacks {
                    tr {
                        td { (c.received_at) }
                        td { @if c.verified { "verified" } @else { "refused" } }
                        td { (c.provider_status.as_deref().unwrap_or("")) }
                        td { (c.outcome) }
                        td { (c.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Audit rows" }
        (audit_table(&d.audit, false))
    }
}

/// The forms for the actions the withdrawal's status allows. Each posts to a confirmation
/// step first; nothing happens until it is confirmed.
fn action_forms(w: &WithdrawalView, csrf: &str) -> Markup {
    use crate::domain::WithdrawalStatus as S;
    let post = |action: &str| format!("/admin/withdrawals/{}/{action}", w.id);
    html! {
        h2 { "Actions" }
        @match w.status {
            S::AwaitingApproval => {
                form method="post" action=(post("approve")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Note (optional)" input type="text" name="reason" maxlength="500"; }
                    button #approve type="submit" { "Approve…" }
                }
                form method="post" action=(post("reject")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Reason" input type="text" name="reason" maxlength="500" required; }
                    button #reject.danger type="submit" { "Reject…" }
                }
            }
            S::Pending | S::Processing => {
                @if w.status == S::Pending {
                    form method="post" action=(post("retry")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Note (optional)" input type="text" name="reason" maxlength="500"; }
                        button #retry type="submit" { "Retry now…" }
                    }
                }
                form method="post" action=(post("lookup")) {
                    input type="hidden" name="csrf" value=(csrf);
                    button #lookup type="submit" { "Look up at CoinsPaid again…" }
                }
                form method="post" action=(post("resolve")) {
                    input type="hidden" name="csrf" value=(csrf);
                    fieldset {
                        legend { "Resolve" }
                        label.inline { input #outcome-paid type="radio" name="outcome" value="paid" required; " paid (debit)" }
                        label.inline { input #outcome-not-paid type="radio" name="outcome" value="not_paid"; " not paid (release)" }
                        label { "Reason" input #resolve-reason type="text" name="reason" maxlength="500" required; }
                        label.inline {
                            input #override type="checkbox" name="override" value="yes";
                            " Override: resolve even if a fresh CoinsPaid look-up does not back it"
                        }
                        button #resolve.danger type="submit" { "Resolve…" }
                    }
                }
            }
            _ => { p.empty { "Settled: no action applies." } }
        }
    }
}

/// Acknowledging an anomaly, whatever the status: a finished withdrawal can have one too.
fn acknowledge_form(w: &WithdrawalView, csrf: &str) -> Markup {
    html! {
        form method="post" action=(format!("/admin/withdrawals/{}/acknowledge", w.id)) {
            input type="hidden" name="csrf" value=(csrf);
            fieldset {
                legend { "Anomaly" }
                label { "How it was handled" input #acknowledge-reason type="text" name="reason" maxlength="500" required; }
                button #acknowledge type="submit" { "Acknowledge…" }
            }
        }
    }
}

/// The confirmation step: what will happen, the same fields again, and a button that does it.
pub fn confirm(w: &WithdrawalView, action: &Action, csrf: &str) -> Markup {
    html! {
        div.card.confirm {
            p { (action.consequence()) }
            table.fields {
                (row_m("withdrawal", Some(withdrawal_link(w))))
                (row("user_id", Some(&w.user_id)))
                (row_m("amount", Some(money(w))))
                (row("status now", Some(w.status)))
                @for (label, value) in action.summary() { (row(label, Some(value))) }
            }
            form method="post" action=(format!("/admin/withdrawals/{}/{}", w.id, action.name())) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in action.fields() {
                    input type="hidden" name=(name) value=(value);
                }
                button #confirm.danger type="submit" { "Yes, " (action.verb()) }
                " "
                a href=(format!("/admin/withdrawals/{}", w.id)) { "No, go back" }
            }
        }
    }
}

/// The pause switch: the pauses in force (each with a resume), and a form to pause.
pub fn pauses(list: &[PauseView], csrf: &str) -> Markup {
    html! {
        @if list.is_empty() {
            p #pause-state { "Submissions are running for every currency." }
        } @else {
            table #pause-state {
                tr { th { "scope" } th { "reason" } th { "by" } th { "since" } th {} }
                @for p in list {
                    @let scope = if p.scope == "*" { "all" } else { p.scope.as_str() };
                    tr {
                        td { (scope) }
                        td { (p.reason) }
                        td { (p.paused_by) }
                        td { (p.paused_at) }
                        td {
                            form method="post" action="/admin/pauses/resume" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="scope" value=(scope);
                                button type="submit" { "Resume " (scope) "…" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Pause submissions" }
        form.card method="post" action="/admin/pauses" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Scope: all, or a currency code" input type="text" name="scope" value="all" required; }
            label { "Reason" input type="text" name="reason" maxlength="500" required; }
            button.danger type="submit" { "Pause…" }
            p.hint { "Withdrawals are still accepted, held and queued; nothing is sent until resumed." }
        }
    }
}

/// Confirmation of a pause or a resume.
pub fn confirm_pause(pause: bool, scope: &str, reason: Option<&str>, csrf: &str) -> Markup {
    html! {
        div.card.confirm {
            p {
                @if pause { "Stop sending withdrawals to CoinsPaid for " strong { (scope) } "? They are still accepted and held." }
                @else { "Resume sending for " strong { (scope) } "? The queued withdrawals go out on the worker's next tick." }
            }
            form method="post" action=(if pause { "/admin/pauses" } else { "/admin/pauses/resume" }) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirm" value="yes";
                input type="hidden" name="scope" value=(scope);
                @if let Some(reason) = reason { input type="hidden" name="reason" value=(reason); }
                button #confirm.danger type="submit" { "Yes, " @if pause { "pause" } @else { "resume" } }
                " "
                a href="/admin/pauses" { "No, go back" }
            }
        }
    }
}

pub fn audit_table(rows: &[AuditView], with_withdrawal: bool) -> Markup {
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    html! {
        @if rows.is_empty() { p.empty { "No rows." } } @else {
            table.audit {
                tr {
                    th { "at" } th { "actor" } th { "action" }
                    @if with_withdrawal { th { "withdrawal" } }
                    th { "reason" } th { "before" } th { "after" }
                }
                @for r in rows {
                    tr {
                        td { (r.at) }
                        td.actor { (r.actor) }
                        td.action { (r.action) }
                        @if with_withdrawal {
                            td { @if let Some(id) = r.withdrawal_id { a href=(format!("/admin/withdrawals/{id}")) { code { (id) } } } }
                        }
                        td { (r.reason.as_deref().unwrap_or("")) }
                        td { code { (json(&r.before)) } }
                        td { code { (json(&r.after)) } }
                    }
                }
            }
        }
    }
}

pub fn audit(rows: &[AuditView], next: Option<&str>) -> Markup {
    html! {
        (audit_table(rows, true))
        @if let Some(cursor) = next { p { a href=(format!("/admin/audit?cursor={cursor}")) { "Older rows →" } } }
    }
}
