//! Reading provider numbers that may come as JSON numbers or strings.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

pub(crate) fn lenient_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let text = match StringOrNumber::deserialize(d)? {
        StringOrNumber::String(s) => s,
        StringOrNumber::Number(n) => n.to_string(),
    };
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(serde::de::Error::custom)
}

pub(crate) fn lenient_decimal_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "lenient_decimal")] Decimal);
    Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
}

pub(crate) fn decimal_as_string<S: serde::Serializer>(
    v: &Decimal,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn parses_the_documented_withdrawal_callback() {
        let body = r#"{"id": 1, "foreign_id": "our-foreign-id", "end_user_reference": "12345",
 "type": "withdrawal",
 "crypto_address": {"id": 1, "currency": "BTC", "address": "115Mn1", "tag": null},
 "currency_sent": {"currency": "BTC", "amount": "0.02000000"},
 "currency_received": {"currency": "BTC", "amount": "0.02000000"},
 "transactions": [{"id": 1, "currency": "BTC", "transaction_type": "blockchain",
   "type": "withdrawal", "address": "115Mn1", "tag": null, "amount": "0.02",
   "txid": "bb04", "confirmations": 3}],
 "fees": [{"type": "mining", "currency": "BTC", "amount": "0.00007402"},
          {"type": "withdrawal", "currency": "BTC", "amount": 0.00002}],
 "error": "", "status": "confirmed"}"#;
        let cb: Callback = serde_json::from_str(body).unwrap();
        assert!(cb.is_withdrawal());
        assert_eq!(cb.foreign_id.as_deref(), Some("our-foreign-id"));
        assert_eq!(cb.fees[1].amount.to_string(), "0.00002");
        assert_eq!(cb.transactions[0].txid.as_deref(), Some("bb04"));
    }

    #[test]
    fn optional_request_fields_are_omitted_not_null() {
        let req = WithdrawalRequest {
            foreign_id: "f".into(),
            amount: "1.00".into(),
            currency: "BTC".into(),
            convert_to: None,
            address: "a".into(),
            tag: None,
            end_user_reference: Some("u1".into()),
            ..WithdrawalRequest::default()
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(
            !json.contains("convert_to") && !json.contains("tag") && !json.contains("sender"),
            "{json}"
        );
        assert!(json.contains(r#""amount":"1.00""#));
    }

    #[test]
    fn foreign_id_refusals_are_recognised() {
        let e: ErrorBody =
            serde_json::from_str(r#"{"errors":{"foreign_id":"already taken"}}"#).unwrap();
        assert!(e.mentions_foreign_id());
        let e: ErrorBody = serde_json::from_str(r#"{"errors":{"address":"bad"}}"#).unwrap();
        assert!(!e.mentions_foreign_id());
        assert_eq!(e.summary(), "address: bad");
    }
}
