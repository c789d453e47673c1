//! `GET /v1/currencies` and `POST /v1/quotes`: what can be paid out, and what a user would
//! receive, so the website can show it before the user confirms.

use axum::extract::State;
use axum::Json;
use chrono::SecondsFormat;
use serde::Serialize;

use super::error::ApiError;
use super::json::ApiJson;
use super::requests::QuoteRequest;
use super::AppState;
use crate::currencies::Source;
use crate::domain::currency::CurrencyKind;
use crate::domain::money::format_amount;
use crate::domain::PairSource;
use crate::usecases::Quote;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrencyView {
    #[schema(example = "BTC")]
    currency: String,
    /// `crypto` or `fiat`.
    #[serde(rename = "type")]
    #[schema(example = "crypto")]
    kind: &'static str,
    /// Decimals an amount may carry.
    #[schema(example = 8)]
    precision: u32,
    /// The smallest withdrawal paid from this currency: `[withdrawal_minimums]` if configured,
    /// else CoinsPaid's documented default. A conversion must also reach its pair's `min_amount`.
    #[schema(example = "0.0002")]
    minimum_withdrawal: String,
    /// CoinsPaid's smallest *deposit* (`minimum_amount` of /v2/currencies/list), for
    /// information only: it never limits a withdrawal.
    #[schema(example = "0.0001")]
    minimum_deposit: Option<String>,
    tag_required: bool,
}

/// A conversion a withdrawal may ask for: `currency` pays, `convert_to` is delivered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PairView {
    #[schema(example = "EUR")]
    currency: String,
    #[schema(example = "BTC")]
    convert_to: String,
    /// The smallest amount, in `currency`, CoinsPaid converts along this pair.
    #[schema(example = "25")]
    min_amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrenciesResponse {
    data: Vec<CurrencyView>,
    /// `coinspaid` (loaded from /v2/currencies/list) or `builtin` (CoinsPaid not reached yet).
    source: &'static str,
    #[schema(format = DateTime)]
    refreshed_at: Option<String>,
    /// Where the allowed conversions come from: `coinspaid_rates` (/v2/currencies/rates),
    /// `coinspaid_pairs` (/v2/currencies/pairs, where rates answers 404) or `builtin` (no
    /// usable list: any currency converts to any other crypto, with no pair minimum).
    #[schema(example = "coinspaid_rates")]
    pairs_source: &'static str,
    /// The listed conversions; null under the built-in rule.
    pairs: Option<Vec<PairView>>,
}

/// List currencies and conversions
///
/// What can be paid out: each currency's precision, withdrawal minimum (and CoinsPaid's deposit
/// minimum, for information), whether a destination tag is required, and the conversions CoinsPaid
/// allows (`pairs`) with their minimums. Loaded from CoinsPaid and refreshed; `source` and
/// `pairs_source` say where each list came from.
#[utoipa::path(
    get, path = "/v1/currencies", operation_id = "listCurrencies", tag = "withdrawals",
    responses(
        (status = 200, description = "Currencies that can pay or be received, with precision and minimums, and the conversions allowed", body = CurrenciesResponse),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>) -> Json<CurrenciesResponse> {
    let catalog = state.currencies.catalog();
    let (source, refreshed_at) = state.currencies.source();
    let mut data: Vec<CurrencyView> = catalog
        .all()
        .map(|c| CurrencyView {
            currency: c.currency.to_string(),
            kind: if c.kind == CurrencyKind::Fiat {
                "fiat"
            } else {
                "crypto"
            },
            precision: c.precision,
            minimum_withdrawal: c.minimum_withdrawal.normalize().to_string(),
            minimum_deposit: c.minimum_deposit.map(|m| m.normalize().to_string()),
            tag_required: c.tag_required,
        })
        .collect();
    data.sort_by(|a, b| a.currency.cmp(&b.currency));
    let rules = catalog.pairs();
    let pairs = (rules.source() != PairSource::Builtin).then(|| {
        rules
            .pairs()
            .map(|p| PairView {
                currency: p.from.to_string(),
                convert_to: p.to.to_string(),
                min_amount: p.min_amount.normalize().to_string(),
            })
            .collect()
    });
    Json(CurrenciesResponse {
        data,
        source: match source {
            Source::CoinsPaid => "coinspaid",
            Source::Builtin => "builtin",
        },
        refreshed_at: refreshed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        pairs_source: rules.source().as_str(),
        pairs,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteResponse {
    #[schema(example = "100.00")]
    amount: String,
    #[schema(example = "EUR")]
    currency: String,
    #[schema(example = "BTC")]
    convert_to: String,
    /// CoinsPaid's `receiver_amount`: what the user would receive, at `convert_to`'s precision
    /// (cut, never rounded up). An estimate, not a promise.
    #[schema(example = "0.00166666")]
    receive_amount: String,
    /// CoinsPaid's fee for the conversion, in `fee_currency`, as it gives them.
    fee_amount: Option<String>,
    fee_currency: Option<String>,
    /// CoinsPaid's `price`, as it gives it: units of `convert_to` for one unit of `currency`.
    #[schema(example = "0.00001666")]
    price: Option<String>,
    /// CoinsPaid's `ts_fixed` and `ts_release` (unix seconds) and `fix_period` (seconds), passed
    /// through. CoinsPaid holds this price only for its `/v2/exchange/fixed`; a withdrawal
    /// converts at the rate of the moment CoinsPaid processes it, so it gets no fixed rate.
    #[schema(example = 1564293159)]
    ts_fixed: Option<i64>,
    #[schema(example = 1564293219)]
    ts_release: Option<i64>,
    #[schema(example = 60)]
    fix_period: Option<i64>,
    /// `ts_fixed` as RFC 3339, or the time of the answer when CoinsPaid gives none.
    #[schema(format = DateTime)]
    quoted_at: String,
    /// `fresh`: CoinsPaid's estimate for this quote. `recent`: its estimate made at `quoted_at`
    /// for an amount within a factor of two of this one, scaled to this amount (CoinsPaid
    /// allows 30 estimates a minute; see `[quotes]`).
    #[schema(example = "fresh")]
    source: &'static str,
}

/// Quote a conversion
///
/// CoinsPaid's estimate of what the user would receive for `amount` of `currency` paid out as
/// `convert_to`, with its price and fee, to show before the user confirms. Not binding: a
/// withdrawal converts at the rate of the moment CoinsPaid processes it.
///
/// CoinsPaid allows 30 estimates a minute, shared by every replica: beyond that, a recent estimate
/// of the same pair is scaled to the amount (`source: recent`), or, with none, the answer is `429`
/// with `Retry-After`.
#[utoipa::path(
    post, path = "/v1/quotes", operation_id = "createQuote", tag = "withdrawals",
    request_body = super::requests::QuoteRequest,
    responses(
        (status = 200, description = "CoinsPaid's estimate of what the user receives", body = QuoteResponse),
        (status = 422, description = "invalid_amount, unsupported_currency, unsupported_pair, below_minimum or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: CoinsPaid's budget of estimates is spent and no recent estimate of this pair and amount band exists; retry after Retry-After seconds", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 502, description = "provider_unavailable: CoinsPaid did not give an estimate and no recent one exists", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn quote(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<QuoteRequest>,
) -> Result<Json<QuoteResponse>, ApiError> {
    let quotes = &state.usecases.quotes;
    let quote = quotes
        .quote(&request.amount, &request.currency, &request.convert_to)
        .await?;
    Ok(Json(QuoteResponse::from(quote)))
}

impl From<Quote> for QuoteResponse {
    fn from(quote: Quote) -> Self {
        Self {
            amount: quote.amount.to_string(),
            currency: quote.currency,
            convert_to: quote.convert_to,
            receive_amount: format_amount(quote.receive_amount, quote.receive_precision),
            fee_amount: quote.fee_amount.map(|f| f.to_string()),
            fee_currency: quote.fee_currency,
            price: quote.price.map(|p| p.to_string()),
            ts_fixed: quote.ts_fixed,
            ts_release: quote.ts_release,
            fix_period: quote.fix_period,
            quoted_at: quote.quoted_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            source: quote.source.as_str(),
        }
    }
}
