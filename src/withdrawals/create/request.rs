//! A withdrawal request: its fields checked against the currency catalogue and the travel-rule
//! policy (pure), its fingerprint, and the outcomes and refusals of a create. Holding and
//! storing it is `group.rs`'s.

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::api::error::ErrorCode;
use crate::domain::address;
use crate::domain::money::AmountError;
use crate::domain::travel_rule::{TravelRule, TravelRuleInput, TravelRulePolicy};
use crate::domain::{Amount, Currency, CurrencyKind, UserId};
use crate::domain::{CurrencyCatalog, CurrencyInfo};
use crate::error::Error;
use crate::withdrawals::queue::Lease;
use crate::withdrawals::store::Withdrawal;

/// The request body's fields, as the API extracted them (strings, unvalidated).
#[derive(Debug, Clone, Default)]
pub struct WithdrawalInput {
    pub user_id: String,
    pub amount: String,
    pub currency: String,
    pub convert_to: Option<String>,
    pub address: String,
    pub tag: Option<String>,
    pub end_user_reference: Option<String>,
    /// The website's own permanent id for this payout.
    pub reference: Option<String>,
    /// MiCA sender and receiver, as stated (`Debug` redacts the data).
    pub travel_rule: TravelRuleInput,
}

/// A withdrawal request that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidWithdrawal {
    pub user_id: UserId,
    pub amount: Amount,
    pub currency: Currency,
    pub convert_to: Option<Currency>,
    pub address: String,
    pub tag: Option<String>,
    pub end_user_reference: String,
    /// The website's own permanent id for this payout: unique, never expiring.
    pub reference: Option<String>,
    /// What CoinsPaid is sent: the stated parties, with the merchant's defaults for the rest.
    pub travel_rule: TravelRule,
    /// What the request itself said; the idempotency fingerprint covers this, so a replay
    /// stays a replay even if the configured defaults change in between.
    pub stated_travel_rule: TravelRule,
}

/// Why a withdrawal is refused with nothing held. Each maps to one stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    InvalidAmount(String),
    #[error("{0}")]
    UnsupportedCurrency(String),
    #[error("{0}")]
    UnsupportedPair(String),
    #[error("{0}")]
    InvalidAddress(String),
    #[error("{0}")]
    BelowMinimum(String),
    #[error("available balance does not cover the amount")]
    InsufficientFunds,
    #[error("{field}: {message}")]
    ValidationFailed { field: String, message: String },
    #[error("{0}")]
    LimitExceeded(String),
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidAmount(_) => ErrorCode::InvalidAmount,
            Self::UnsupportedCurrency(_) => ErrorCode::UnsupportedCurrency,
            Self::UnsupportedPair(_) => ErrorCode::UnsupportedPair,
            Self::InvalidAddress(_) => ErrorCode::InvalidAddress,
            Self::BelowMinimum(_) => ErrorCode::BelowMinimum,
            Self::InsufficientFunds => ErrorCode::InsufficientFunds,
            Self::ValidationFailed { .. } => ErrorCode::ValidationFailed,
            Self::LimitExceeded(_) => ErrorCode::LimitExceeded,
        }
    }

    fn field(field: &str, message: impl Into<String>) -> Self {
        Self::ValidationFailed {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

fn visible_ascii(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

/// An amount of a paying currency and the crypto it becomes, checked against the catalogue.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub amount: Amount,
    pub paying: CurrencyInfo,
    /// `convert_to`, or the paying currency itself for a plain crypto withdrawal.
    pub receiving: CurrencyInfo,
    pub converts: bool,
}

/// The currency, pair and amount rules shared by withdrawals and quotes. Pure: no I/O.
///
/// A conversion must follow a pair of the catalogue's pair rules (CoinsPaid's list when one is
/// loaded, the built-in rule otherwise), and its amount must reach both the paying currency's
/// withdrawal minimum and the pair's `min_amount`.
pub fn validate_conversion(
    amount: &str,
    currency: &str,
    convert_to: Option<&str>,
    catalog: &CurrencyCatalog,
) -> Result<Conversion, Refusal> {
    let known = |code: &str| {
        Currency::parse(code)
            .and_then(|c| catalog.get(&c).cloned())
            .ok_or_else(|| {
                Refusal::UnsupportedCurrency(format!("{code:?} is not a supported currency"))
            })
    };
    let paying = known(currency)?;
    let (receiving, pair_minimum) = match convert_to {
        None if paying.kind == CurrencyKind::Fiat => {
            return Err(Refusal::UnsupportedPair(format!(
                "{} is fiat: set convert_to to the crypto the user receives",
                paying.currency
            )))
        }
        None => (paying.clone(), Decimal::ZERO),
        Some(code) => {
            let target = known(code)?;
            let Some(minimum) = catalog.pairs().minimum(&paying, &target) else {
                return Err(Refusal::UnsupportedPair(format!(
                    "CoinsPaid does not convert {} to {}",
                    paying.currency, target.currency
                )));
            };
            (target, minimum)
        }
    };
    let amount = Amount::parse(amount)
        .and_then(|a| a.check_precision(paying.currency.as_str(), paying.precision))
        .map_err(|e: AmountError| Refusal::InvalidAmount(e.to_string()))?;
    let minimum = paying.minimum_withdrawal.max(pair_minimum);
    if amount.value() < minimum {
        return Err(Refusal::BelowMinimum(format!(
            "the minimum withdrawal is {} {}",
            minimum.normalize(),
            paying.currency
        )));
    }
    Ok(Conversion {
        amount,
        paying,
        receiving,
        converts: convert_to.is_some(),
    })
}

/// Checks a request against the catalogue and the travel-rule policy. No I/O; reads the
/// clock only to tell a date of birth is in the past.
pub fn validate(
    input: &WithdrawalInput,
    catalog: &CurrencyCatalog,
    travel_policy: &TravelRulePolicy,
) -> Result<ValidWithdrawal, Refusal> {
    let user_id = UserId::parse(&input.user_id)
        .ok_or_else(|| Refusal::field("user_id", "1 to 128 visible ASCII characters"))?;
    let Conversion {
        amount,
        paying,
        receiving,
        converts,
    } = validate_conversion(
        &input.amount,
        &input.currency,
        input.convert_to.as_deref(),
        catalog,
    )?;
    if !address::looks_valid(receiving.currency.as_str(), &input.address) {
        return Err(Refusal::InvalidAddress(format!(
            "not a valid {} address",
            receiving.currency
        )));
    }
    let tag = input.tag.clone().filter(|t| !t.is_empty());
    match &tag {
        None if receiving.tag_required => {
            return Err(Refusal::field(
                "tag",
                format!("{} needs a destination tag", receiving.currency),
            ))
        }
        Some(t) if !visible_ascii(t, 100) => {
            return Err(Refusal::field("tag", "1 to 100 visible ASCII characters"))
        }
        _ => {}
    }
    let end_user_reference = input
        .end_user_reference
        .clone()
        .unwrap_or_else(|| user_id.to_string());
    if !visible_ascii(&end_user_reference, 128) {
        return Err(Refusal::field(
            "end_user_reference",
            "1 to 128 visible ASCII characters",
        ));
    }
    let reference = input.reference.clone();
    if reference.as_deref().is_some_and(|r| !visible_ascii(r, 255)) {
        return Err(Refusal::field(
            "reference",
            "1 to 255 visible ASCII characters",
        ));
    }
    let travel_field = |e: crate::domain::travel_rule::FieldError| Refusal::ValidationFailed {
        field: e.field,
        message: e.message,
    };
    let stated_travel_rule = TravelRule::parse(&input.travel_rule, chrono::Utc::now().date_naive())
        .map_err(travel_field)?;
    let travel_rule = travel_policy
        .apply(&stated_travel_rule)
        .map_err(travel_field)?;
    Ok(ValidWithdrawal {
        user_id,
        amount,
        convert_to: converts.then(|| receiving.currency.clone()),
        currency: paying.currency,
        address: input.address.clone(),
        tag,
        end_user_reference,
        reference,
        travel_rule,
        stated_travel_rule,
    })
}

impl ValidWithdrawal {
    /// Fingerprint of the request, to tell "the same request again" from "the key reused".
    pub(crate) fn fingerprint(&self) -> Vec<u8> {
        let mut hash = Sha256::new();
        for part in [
            self.user_id.as_str(),
            &self.amount.to_string(),
            self.currency.as_str(),
            self.convert_to.as_ref().map_or("", |c| c.as_str()),
            &self.address,
            self.tag.as_deref().unwrap_or(""),
            &self.end_user_reference,
        ] {
            // Length-prefixed so that field boundaries cannot be shifted.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.update([
            u8::from(self.convert_to.is_some()),
            u8::from(self.tag.is_some()),
        ]);
        // Canonical (parsed, fixed field order), so only a real difference in the data counts.
        let stated = self
            .stated_travel_rule
            .to_json()
            .map(|json| json.to_string())
            .unwrap_or_default();
        hash.update((stated.len() as u64).to_be_bytes());
        hash.update(stated.as_bytes());
        // Only when given, so the fingerprints of requests without one stay what they were.
        if let Some(reference) = &self.reference {
            hash.update(b"reference");
            hash.update((reference.len() as u64).to_be_bytes());
            hash.update(reference.as_bytes());
        }
        hash.finalize().to_vec()
    }
}

#[derive(Debug)]
pub enum CreateOutcome {
    /// Stored and held; the caller owns the first submission attempt through `lease`.
    Created {
        withdrawal: Withdrawal,
        lease: Lease,
    },
    /// The same key and request were seen before: this is that withdrawal, nothing new done.
    Replayed(Withdrawal),
    /// Stored and held but not to be sent now: awaiting an operator's approval, or its
    /// currency's submissions are paused (the worker sends it once resumed).
    Held(Withdrawal),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the idempotency key was used for a different request")]
    KeyReused,
    #[error("this reference names a withdrawal requested with a different body")]
    ReferenceConflict,
    /// The database is away, or one of its money guards refused the write (`crate::error`).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<sqlx::Error> for CreateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> WithdrawalInput {
        WithdrawalInput {
            user_id: "u1".into(),
            amount: "100.00".into(),
            currency: "EUR".into(),
            convert_to: Some("BTC".into()),
            address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
            tag: None,
            end_user_reference: None,
            reference: None,
            travel_rule: TravelRuleInput::default(),
        }
    }

    fn check(i: &WithdrawalInput, c: &CurrencyCatalog) -> Result<ValidWithdrawal, Refusal> {
        validate(i, c, &TravelRulePolicy::default())
    }

    fn code(i: WithdrawalInput) -> &'static str {
        check(&i, &CurrencyCatalog::builtin())
            .unwrap_err()
            .code()
            .as_str()
    }

    #[test]
    fn a_good_request_validates_and_defaults_the_end_user_reference() {
        let v = check(&input(), &CurrencyCatalog::builtin()).unwrap();
        assert_eq!(v.end_user_reference, "u1");
        assert_eq!(v.convert_to.unwrap().as_str(), "BTC");
    }

    #[test]
    fn each_refusal_has_its_code() {
        assert_eq!(
            code(WithdrawalInput {
                amount: "1.001".into(),
                ..input()
            }),
            "invalid_amount"
        );
        assert_eq!(
            code(WithdrawalInput {
                amount: "-5".into(),
                ..input()
            }),
            "invalid_amount"
        );
        assert_eq!(
            code(WithdrawalInput {
                currency: "DOGE".into(),
                ..input()
            }),
            "unsupported_currency"
        );
        assert_eq!(
            code(WithdrawalInput {
                convert_to: Some("USD".into()),
                ..input()
            }),
            "unsupported_pair"
        );
        assert_eq!(
            code(WithdrawalInput {
                convert_to: None,
                ..input()
            }),
            "unsupported_pair"
        );
        assert_eq!(
            code(WithdrawalInput {
                address: "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe".into(),
                ..input()
            }),
            "invalid_address"
        );
        assert_eq!(
            code(WithdrawalInput {
                amount: "0.50".into(),
                ..input()
            }),
            "below_minimum"
        );
        assert_eq!(
            code(WithdrawalInput {
                user_id: "".into(),
                ..input()
            }),
            "validation_failed"
        );
        let xrp = WithdrawalInput {
            convert_to: Some("XRP".into()),
            address: "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh".into(),
            ..input()
        };
        assert_eq!(code(xrp.clone()), "validation_failed");
        assert!(check(
            &WithdrawalInput {
                tag: Some("12345".into()),
                ..xrp
            },
            &CurrencyCatalog::builtin()
        )
        .is_ok());
    }

    #[test]
    fn a_loaded_pair_list_decides_conversions_and_their_minimums() {
        use crate::domain::{Pair, PairRules, PairSource};
        let pair = |from: &str, to: &str, min: &str| Pair {
            from: Currency::parse(from).unwrap(),
            to: Currency::parse(to).unwrap(),
            min_amount: min.parse().unwrap(),
        };
        let catalog = CurrencyCatalog::builtin().with_pairs(
            PairRules::listed(
                PairSource::Rates,
                [pair("EUR", "BTC", "25"), pair("BTC", "EUR", "0.003")],
            )
            .unwrap(),
        );
        let check = |amount: &str, convert_to: &str| {
            validate_conversion(amount, "EUR", Some(convert_to), &catalog).map(|c| c.amount)
        };
        assert!(check("25.00", "BTC").is_ok());
        assert_eq!(check("24.99", "BTC").unwrap_err().code(), "below_minimum");
        // ETH is a currency, but CoinsPaid lists no EUR -> ETH pair.
        assert_eq!(check("100", "ETH").unwrap_err().code(), "unsupported_pair");
        // A plain crypto withdrawal needs no pair.
        assert!(validate_conversion("0.01", "BTC", None, &catalog).is_ok());
        // Without a list the built-in rule converts to any other crypto.
        assert!(validate_conversion("10", "EUR", Some("ETH"), &CurrencyCatalog::builtin()).is_ok());
    }

    #[test]
    fn fingerprints_differ_when_any_field_differs() {
        let c = CurrencyCatalog::builtin();
        let a = check(&input(), &c).unwrap();
        let b = check(
            &WithdrawalInput {
                amount: "100.0".into(),
                ..input()
            },
            &c,
        )
        .unwrap();
        let t = check(
            &WithdrawalInput {
                tag: Some("1".into()),
                ..input()
            },
            &c,
        )
        .unwrap();
        assert_eq!(a.fingerprint(), check(&input(), &c).unwrap().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), t.fingerprint());
    }

    fn with_sender(first_name: &str) -> WithdrawalInput {
        let data = serde_json::json!({"first_name": first_name, "last_name": "Müller", "date_of_birth": "1995-08-17"});
        WithdrawalInput {
            travel_rule: TravelRuleInput {
                sender_type: Some("natural".into()),
                sender_data: data.as_object().cloned(),
                ..TravelRuleInput::default()
            },
            ..input()
        }
    }

    #[test]
    fn travel_rule_data_is_in_the_fingerprint_but_configured_defaults_are_not() {
        let c = CurrencyCatalog::builtin();
        let a = check(&with_sender("Friedrich"), &c).unwrap();
        let b = check(&with_sender("Fritz"), &c).unwrap();
        let none = check(&input(), &c).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), none.fingerprint());
        let defaulted = validate(
            &input(),
            &c,
            &TravelRulePolicy {
                default_sender: a.travel_rule.sender.clone(),
                ..TravelRulePolicy::default()
            },
        )
        .unwrap();
        assert_eq!(defaulted.travel_rule.sender, a.travel_rule.sender);
        assert_eq!(defaulted.fingerprint(), none.fingerprint());
    }

    #[test]
    fn travel_rule_refusals_are_validation_failures_naming_the_field() {
        let refusal = check(&with_sender(""), &CurrencyCatalog::builtin()).unwrap_err();
        assert_eq!(refusal.code(), "validation_failed");
        assert!(
            refusal.to_string().starts_with("sender_data.first_name:"),
            "{refusal}"
        );
        let required = validate(
            &input(),
            &CurrencyCatalog::builtin(),
            &TravelRulePolicy {
                required: true,
                ..TravelRulePolicy::default()
            },
        )
        .unwrap_err();
        assert!(
            required.to_string().starts_with("sender_type:"),
            "{required}"
        );
    }
}
