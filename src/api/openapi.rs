//! The OpenAPI 3 document, generated from the handlers' annotations and the response types,
//! and served at `/openapi.json` with a browsable page at `/docs` (docs.rs). The request bodies'
//! schemas come from the types the handlers deserialize (`requests.rs`).

use serde::Serialize;
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
    pub detail: String,
    /// One of the stable codes of the contract.
    #[schema(example = "insufficient_funds")]
    pub code: String,
}

/// A user's limits in one currency; null means unlimited.
#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    #[schema(example = "EUR")]
    pub currency: String,
    pub max_per_withdrawal: Option<String>,
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
        description = "Merchant-side CoinsPaid withdrawal service: holds, submits, settles exactly once."
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

/// Every `code` a problem can carry, as the contract names them.
pub const ERROR_CODES: &[&str] = &[
    "invalid_json",
    "invalid_body",
    "payload_too_large",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "idempotency_key_required",
    "idempotency_key_reused",
    "reference_conflict",
    "invalid_amount",
    "unsupported_currency",
    "unsupported_pair",
    "invalid_address",
    "below_minimum",
    "insufficient_funds",
    "limit_exceeded",
    "validation_failed",
    "provider_unavailable",
    "internal_error",
    "unavailable",
    "timeout",
    "not_cancellable",
    "status_conflict",
    "submission_in_flight",
    "lookup_disagrees",
    "nothing_to_acknowledge",
    "notify_url_not_set",
];

/// A withdrawal's `status`, as `WithdrawalStatus` serializes it.
pub const WITHDRAWAL_STATUSES: &[&str] = &[
    "awaiting_approval",
    "pending",
    "processing",
    "confirmed",
    "cancelled",
    "rejected",
];

/// A ledger entry's `kind`, as `EntryKind` serializes it.
pub const ENTRY_KINDS: &[&str] = &["credit", "hold", "release", "debit"];

/// What the annotations cannot say once per route: the servers, `security: []` on public
/// routes, the problems every route can answer (500, 503 timeout/unavailable; 400 and 413
/// where a body is read), the enums of codes, statuses and kinds, and the constraints on ids,
/// keys and page sizes. Applied to the generated document before it is served.
pub fn complete(document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use serde_json::{json, Value};
    let mut doc = serde_json::to_value(&document).expect("the document serializes");
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    doc["servers"] = json!([{"url": "/", "description": "This payoutd instance (the origin serving this document)"}]);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                    continue;
                }
                let public = operation.get("security").is_none();
                if public {
                    operation["security"] = json!([]);
                }
                let has_body = operation.get("requestBody").is_some();
                let secured = !public;
                let responses = operation["responses"]
                    .as_object_mut()
                    .expect("every operation has responses");
                let mut add = |status: &str, value: Value| {
                    responses.entry(status.to_owned()).or_insert(value);
                };
                if secured {
                    add(
                        "401",
                        problem("unauthorized: the bearer token is missing or not one of this interface's"),
                    );
                }
                if has_body {
                    add("400", problem("invalid_json or invalid_body: the body is not a JSON object of the documented shape, or has an object key twice"));
                    add("413", problem("payload_too_large: the body is over 64 KiB"));
                }
                add(
                    "500",
                    problem("internal_error: the cause is logged under the x-request-id"),
                );
                add("503", problem("timeout: the request ran out of its time budget (server.request_timeout_secs); or unavailable: the database is"));
                if let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                {
                    for parameter in parameters {
                        constrain(parameter);
                    }
                }
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    schemas["Problem"]["properties"]["code"]["enum"] = json!(ERROR_CODES);
    if schemas.get("WithdrawalView").is_some() {
        schemas["WithdrawalView"]["properties"]["status"]["enum"] = json!(WITHDRAWAL_STATUSES);
    }
    if schemas.get("LedgerEntryView").is_some() {
        schemas["LedgerEntryView"]["properties"]["kind"]["enum"] = json!(ENTRY_KINDS);
    }
    if schemas.get("StatusChange").is_some() {
        schemas["StatusChange"]["properties"]["status"]["enum"] = json!(WITHDRAWAL_STATUSES);
        schemas["StatusChange"]["properties"]["previous_status"]["enum"] =
            json!(WITHDRAWAL_STATUSES);
    }
    let mut document: utoipa::openapi::OpenApi =
        serde_json::from_value(doc).expect("the completed document is still an OpenAPI document");
    // utoipa has no field for OpenAPI 3.1's top-level `webhooks`; its extensions map is
    // serialized flat into the document, so the section goes in there.
    document
        .extensions
        .get_or_insert_with(Default::default)
        .insert("webhooks".into(), webhooks());
    document
}

/// The notifications payoutd POSTs to `notify.url`: OpenAPI 3.1 `webhooks`, one per event type.
fn webhooks() -> serde_json::Value {
    use serde_json::json;
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

/// The constraints the handlers check, stated on the parameters they check them on.
fn constrain(parameter: &mut serde_json::Value) {
    use serde_json::json;
    let visible_ascii = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": "^[!-~]+$"});
    let schema = match (parameter["in"].as_str(), parameter["name"].as_str()) {
        (Some("path"), Some("user_id")) | (Some("query"), Some("user_id")) => visible_ascii(128),
        (Some("path"), Some("currency")) | (Some("query"), Some("currency")) => {
            json!({"type": "string", "pattern": "^[A-Z0-9]{2,12}$"})
        }
        (Some("path"), Some("id")) => json!({"type": "string", "format": "uuid"}),
        (Some("header"), Some("Idempotency-Key")) => visible_ascii(255),
        (Some("query"), Some("limit")) => {
            json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
        }
        (Some("query"), Some("status")) => json!({"type": "string", "enum": WITHDRAWAL_STATUSES}),
        _ => return,
    };
    parameter["schema"] = schema;
}
