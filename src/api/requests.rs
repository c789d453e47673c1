//! The `/v1` request bodies: what the handlers deserialize (through `body::parse`) is what the
//! OpenAPI document describes, one type for both. Unknown fields are refused: a misspelt
//! optional field must not be silently dropped from a payout. No `Debug`: travel-rule data is
//! personal.

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use super::body::field;

/// `POST /v1/users/{user_id}/credits` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "EUR", "amount": "250.00", "reference": "dep-991"}))]
pub struct CreditRequest {
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "EUR")]
    pub currency: String,
    /// A decimal string; a JSON number is refused.
    #[serde(deserialize_with = "field::amount")]
    #[schema(example = "250.00")]
    pub amount: String,
    /// Unique per user: the same request again is answered 200 with the same entry.
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "dep-991")]
    pub reference: String,
}

/// `POST /v1/withdrawals` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "user_id": "u1",
    "amount": "100.00",
    "currency": "EUR",
    "convert_to": "BTC",
    "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "tag": null,
    "end_user_reference": "u1",
    "reference": "payout-2026-000123",
    "sender_type": "natural",
    "sender_data": {"first_name": "Friedrich", "last_name": "Müller", "date_of_birth": "1995-08-17", "email": "friedrich@example.com"},
    "receiver_type": "self"
}))]
pub struct WithdrawalRequest {
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "u1")]
    pub user_id: String,
    /// In `currency`, the balance that pays. A decimal string.
    #[serde(deserialize_with = "field::amount")]
    #[schema(example = "100.00")]
    pub amount: String,
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "EUR")]
    pub currency: String,
    /// The crypto the user receives, converted by CoinsPaid; absent for a plain crypto withdrawal.
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "BTC")]
    pub convert_to: Option<String>,
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")]
    pub address: String,
    /// Destination tag or memo; required for XRP.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub tag: Option<String>,
    /// A stable, non-identifying id of the user for CoinsPaid; defaults to `user_id`.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub end_user_reference: Option<String>,
    /// Your own permanent id for this payout (1 to 255 visible ASCII characters), unique and
    /// never expiring, unlike the Idempotency-Key: the same reference with the same body
    /// replays (`200`), with a different body it is `409 reference_conflict`.
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "payout-2026-000123")]
    pub reference: Option<String>,
    /// MiCA travel rule: `natural` or `legal`, with `sender_data`. When absent, the configured
    /// default stands in; required when `[travel_rule] required` is set and none is configured.
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "natural")]
    pub sender_type: Option<String>,
    #[serde(default)]
    pub sender_data: Option<TravelRuleParty>,
    /// `natural` or `legal` with `receiver_data`, or `self` (the user's own wallet, no
    /// `receiver_data`). Defaulted and required like `sender_type`.
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "self")]
    pub receiver_type: Option<String>,
    #[serde(default)]
    pub receiver_data: Option<TravelRuleParty>,
}

/// `sender_data` / `receiver_data`, passed to CoinsPaid unchanged and never shown back. A
/// natural person: `first_name`, `last_name`, `date_of_birth`; a legal entity: `legal_name`,
/// `country_of_registration`; `email` optional for both. No other key is accepted. Read as
/// the union of the two, so that a refusal names the field; the travel-rule parser checks the
/// keys against the party's type, and the document describes the two shapes
/// (`openapi::travel_rule`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelRuleParty {
    /// Natural person; 1-100 characters.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub first_name: Option<String>,
    /// Natural person; 1-100 characters.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub last_name: Option<String>,
    /// Natural person; a past date, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub date_of_birth: Option<String>,
    /// Legal entity; 1-200 characters.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub legal_name: Option<String>,
    /// Legal entity; ISO 3166-1 alpha-3.
    #[serde(default, deserialize_with = "field::opt_string")]
    pub country_of_registration: Option<String>,
    #[serde(default, deserialize_with = "field::opt_string")]
    pub email: Option<String>,
}

impl utoipa::PartialSchema for TravelRuleParty {
    fn schema() -> RefOr<Schema> {
        super::openapi::travel_rule::party_schema()
    }
}

impl ToSchema for TravelRuleParty {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend(super::openapi::travel_rule::parties());
    }
}

impl TravelRuleParty {
    /// The keys given, as the travel-rule parser reads them (it checks them against the
    /// party's type: a natural person has no `legal_name`).
    pub fn into_map(self) -> Map<String, Value> {
        [
            ("first_name", self.first_name),
            ("last_name", self.last_name),
            ("date_of_birth", self.date_of_birth),
            ("legal_name", self.legal_name),
            ("country_of_registration", self.country_of_registration),
            ("email", self.email),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), Value::String(value?))))
        .collect()
    }
}

/// `POST /v1/quotes` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "100.00", "currency": "EUR", "convert_to": "BTC"}))]
pub struct QuoteRequest {
    #[serde(deserialize_with = "field::amount")]
    #[schema(example = "100.00")]
    pub amount: String,
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "EUR")]
    pub currency: String,
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "BTC")]
    pub convert_to: String,
}

/// `PUT /v1/users/{user_id}/limits/{currency}` body: null or absent uses the configured default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_per_withdrawal": "1000.00", "max_per_day": "5000.00"}))]
pub struct LimitsRequest {
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "1000.00")]
    pub max_per_withdrawal: Option<String>,
    /// Over any rolling 24 hours, counting withdrawals not cancelled or rejected.
    #[serde(default, deserialize_with = "field::opt_string")]
    #[schema(example = "5000.00")]
    pub max_per_day: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde::de::value::Error as Captured;
    use serde::de::{Deserializer, Error as _, Visitor};
    use serde::Deserialize;
    use serde_json::{json, Value};

    use super::*;
    use crate::api::admin::views::{NoteRequest, ReasonRequest, ResolveRequest};
    use crate::api::body;

    /// The field names `T`'s derived `Deserialize` accepts, as it tells the deserializer.
    fn serde_fields<T: for<'de> Deserialize<'de>>() -> Vec<String> {
        struct Capture<'a>(&'a mut Vec<String>);
        impl<'de> Deserializer<'de> for Capture<'_> {
            type Error = Captured;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
                Err(Captured::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Captured> {
                self.0.extend(fields.iter().map(|f| f.to_string()));
                Err(Captured::custom("captured"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
                enum identifier ignored_any
            }
        }
        let mut fields = Vec::new();
        let _ = T::deserialize(Capture(&mut fields));
        fields.sort();
        fields
    }

    /// The fields parsing refuses as missing, found one at a time by giving each in turn.
    fn required_by_parsing<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let mut body = json!({});
        let mut required = Vec::new();
        while let Err(problem) = body::parse::<T>(body.to_string().as_bytes()) {
            let Some(name) = problem.detail.strip_suffix(": is required") else {
                panic!("{}", problem.detail)
            };
            body[name] = json!("1");
            required.push(name.to_owned());
        }
        required.sort();
        required
    }

    fn check<T: serde::de::DeserializeOwned>(schemas: &Value, name: &str) {
        let schema = &schemas[name];
        let mut documented: Vec<String> = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} is not in the document"))
            .keys()
            .cloned()
            .collect();
        documented.sort();
        assert_eq!(documented, serde_fields::<T>(), "{name}: properties");
        let mut documented_required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        documented_required.sort();
        assert_eq!(
            documented_required,
            required_by_parsing::<T>(),
            "{name}: required"
        );
        assert_eq!(
            schema["additionalProperties"], false,
            "{name}: unknown fields"
        );
    }

    /// `TravelRuleParty` is `oneOf` two closed shapes: serde reads the union of their keys, and
    /// the travel-rule parser accepts a shape with exactly its required keys and refuses it
    /// without any one of them.
    fn check_parties(schemas: &Value) {
        use crate::domain::travel_rule::{TravelRule, TravelRuleInput};
        let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let shapes: Vec<(&str, &Value)> = schemas["TravelRuleParty"]["oneOf"]
            .as_array()
            .expect("TravelRuleParty is oneOf")
            .iter()
            .map(|r| {
                let name = r["$ref"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("#/components/schemas/");
                (name, &schemas[name])
            })
            .collect();
        assert_eq!(
            shapes.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["NaturalPerson", "LegalEntity"]
        );
        let mut union: Vec<String> = shapes
            .iter()
            .flat_map(|(_, s)| s["properties"].as_object().unwrap().keys().cloned())
            .collect();
        union.sort();
        union.dedup();
        assert_eq!(
            union,
            serde_fields::<TravelRuleParty>(),
            "TravelRuleParty: properties"
        );
        for ((name, shape), kind) in shapes.iter().zip(["natural", "legal"]) {
            assert_eq!(
                shape["additionalProperties"], false,
                "{name}: unknown fields"
            );
            let parses = |data: &serde_json::Map<String, Value>| {
                let input = TravelRuleInput {
                    sender_type: Some(kind.to_owned()),
                    sender_data: Some(data.clone()),
                    ..TravelRuleInput::default()
                };
                TravelRule::parse(&input, today).is_ok()
            };
            let required: Vec<&str> = shape["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let minimal: serde_json::Map<String, Value> = required
                .iter()
                .map(|k| ((*k).to_owned(), shape["properties"][*k]["example"].clone()))
                .collect();
            assert!(parses(&minimal), "{name}: its required keys are enough");
            for k in &required {
                let mut without = minimal.clone();
                without.remove(*k);
                assert!(!parses(&without), "{name}: {k} is required");
            }
        }
    }

    #[test]
    fn the_document_lists_exactly_the_fields_the_handlers_accept() {
        let document = serde_json::to_value(crate::api::openapi_document()).unwrap();
        let schemas = &document["components"]["schemas"];
        check::<CreditRequest>(schemas, "CreditRequest");
        check::<WithdrawalRequest>(schemas, "WithdrawalRequest");
        check_parties(schemas);
        check::<QuoteRequest>(schemas, "QuoteRequest");
        check::<LimitsRequest>(schemas, "LimitsRequest");
        check::<NoteRequest>(schemas, "NoteRequest");
        check::<ReasonRequest>(schemas, "ReasonRequest");
        check::<ResolveRequest>(schemas, "ResolveRequest");
        // And every request body the document names is one of those.
        let mut bodies: Vec<String> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| {
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            })
            .map(|r| r.trim_start_matches("#/components/schemas/").to_owned())
            .collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(
            bodies,
            [
                "CreditRequest",
                "LimitsRequest",
                "NoteRequest",
                "QuoteRequest",
                "ReasonRequest",
                "ResolveRequest",
                "WithdrawalRequest"
            ]
        );
    }
}
