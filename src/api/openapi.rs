//! The OpenAPI 3.1 document, generated from the handlers' annotations (each handler's doc
//! comment gives its operation's summary, first line, and description, the rest) and the
//! request and response types, and served at `/openapi.json` with a browsable page at `/docs`
//! (docs.rs). The request bodies' schemas come from the types the handlers deserialize
//! (`requests.rs`). [`complete`] adds what the annotations cannot say once per route; its
//! parts are in `openapi/`.

mod constraints;
mod responses;
mod schemas;
pub mod travel_rule;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::requests::{
    CreditRequest, LimitsRequest, QuoteRequest, TravelRuleParty, WithdrawalRequest,
};

/// An error: `application/problem+json` with a stable `code`.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "/problems/insufficient_funds")]
    pub kind: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong, for a person; names the field at fault. Never repeats a value.
    pub detail: String,
    /// One of the `ErrorCode`s, for a program to branch on. A later version may add codes:
    /// treat one you do not know by the answer's HTTP status.
    #[schema(example = "insufficient_funds")]
    pub code: String,
}

/// A user's limits in one currency; null means unlimited.
#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(example = "1000.00")]
    pub max_per_withdrawal: Option<String>,
    #[schema(example = "5000.00")]
    pub max_per_day: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // Operator tokens (PAYOUTD_ADMIN_TOKENS), accepted only under /admin/v1.
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "payoutd",
        description = "Merchant-side CoinsPaid withdrawal service: holds a user's balance, sends the payout to CoinsPaid with a never-reused `foreign_id`, and settles the hold exactly once when CoinsPaid's signed callback says what happened.\n\nErrors are `application/problem+json` with a stable `code` (`ErrorCode`). Amounts are decimal strings, never JSON numbers. Times are RFC 3339 UTC. Any operation may answer `429` with `Retry-After`, and `503` (always with `Retry-After`) while the database fails over."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, CreditRequest, WithdrawalRequest, TravelRuleParty, QuoteRequest, LimitsRequest, LimitsView)),
    tags(
        (name = "balances", description = "Credits, balances and the ledger"),
        (name = "withdrawals", description = "Payouts through CoinsPaid"),
        (name = "events", description = "What the website is notified of: the events feed, a redelivery, a test event. Each event is also POSTed to the notification URL (see `webhooks`)"),
        (name = "callbacks", description = "CoinsPaid's signed callbacks"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "operators", description = "The operator interface: approvals, stuck withdrawals, pauses, audit (operator tokens only)"),
    )
)]
pub struct ApiDoc;

/// What the annotations cannot say once per route: the servers, `security: []` on public
/// routes, the answers every route can give (`responses`), the enums of codes, statuses and
/// kinds, open to values a later version adds, the constraints the handlers check on ids,
/// keys, amounts and page sizes (`constraints`), which response fields are always present,
/// request examples and links (`schemas`). Applied to the generated document before it is
/// served; a JSON value, as it uses JSON Schema keywords utoipa's types do not carry.
pub fn complete(document: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(&document).expect("the document serializes");
    doc["servers"] = json!([{"url": "/", "description": "This payoutd instance (the origin serving this document)"}]);
    schemas::complete(&mut doc["components"]["schemas"]);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                    continue;
                }
                if operation.get("security").is_none() {
                    operation["security"] = json!([]);
                }
                constraints::parameters(operation);
                responses::complete(path, operation);
            }
        }
    }
    schemas::request_bodies(&mut doc);
    schemas::links(&mut doc);
    schemas::require_response_fields(&mut doc);
    doc["webhooks"] = webhooks();
    doc
}

/// The notifications payoutd POSTs to `notify.url`: OpenAPI 3.1 `webhooks`, one per event type.
fn webhooks() -> Value {
    let header = |name: &str, description: &str| json!({"name": name, "in": "header", "required": true, "description": description, "schema": {"type": "string"}});
    let delivery = |summary: &str| {
        json!({"post": {
            "summary": summary,
            "description": "Signed in the Standard Webhooks format; verify over the raw body before parsing. Delivered at least once and in no particular order: drop a webhook-id seen before. The same body is listed in GET /v1/events.",
            "tags": ["events"],
            "parameters": [
                header("webhook-id", "The event's id, the same on every delivery of it"),
                header("webhook-timestamp", "This attempt, unix seconds"),
                header("webhook-signature", "`v1,<base64 HMAC-SHA256 of \"<webhook-id>.<webhook-timestamp>.<body>\">`, one per configured secret, space-separated"),
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}},
            "responses": {
                "2XX": {"description": "Stored. Anything else, or no answer within notify.timeout_secs, is retried with backoff"}
            }
        }})
    };
    json!({
        "withdrawal.status_changed": delivery("A withdrawal's status changed"),
        "webhook.test": delivery("POST /v1/webhooks/test asked for it"),
    })
}
