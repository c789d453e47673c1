//! Turning a verified callback body into what the withdrawal service needs.
//! Verification itself is [`super::Signer::verify`]: it always runs first, on the raw bytes.

use super::wire::{Callback, CurrencyAmount, Fee, TransactionInfo};

/// What a provider report says about a withdrawal, beyond its status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderDetails {
    pub provider_id: Option<i64>,
    /// CoinsPaid's own word, kept verbatim for operators.
    pub provider_status: String,
    pub sent: Option<CurrencyAmount>,
    pub received: Option<CurrencyAmount>,
    pub fees: Vec<Fee>,
    pub txids: Vec<String>,
    /// Non-empty error text from the provider.
    pub error: Option<String>,
}

impl From<TransactionInfo> for ProviderDetails {
    /// What a `/v2/transactions/info` lookup says, in the same terms as a callback.
    fn from(info: TransactionInfo) -> Self {
        Self {
            provider_id: Some(info.id),
            provider_status: info.status,
            sent: info.currency_sent,
            received: info.currency_received,
            txids: info
                .transactions
                .into_iter()
                .filter_map(|t| t.txid)
                .filter(|t| !t.is_empty())
                .collect(),
            fees: info.fees,
            error: None,
        }
    }
}

/// A verified callback, sorted into what we act on and what we only acknowledge.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedCallback {
    Withdrawal {
        foreign_id: String,
        details: ProviderDetails,
    },
    /// Deposits, exchanges, invoices, or a withdrawal without a foreign id: acknowledged, ignored.
    Ignored { kind: String, reason: &'static str },
}

/// Parses a body whose signature has already been verified.
pub fn parse(body: &[u8]) -> Result<ParsedCallback, serde_json::Error> {
    let callback: Callback = serde_json::from_slice(body)?;
    if !callback.is_withdrawal() {
        return Ok(ParsedCallback::Ignored {
            kind: callback.kind,
            reason: "not a withdrawal",
        });
    }
    let Some(foreign_id) = callback.foreign_id.clone().filter(|f| !f.is_empty()) else {
        return Ok(ParsedCallback::Ignored {
            kind: callback.kind,
            reason: "withdrawal callback without foreign_id",
        });
    };
    Ok(ParsedCallback::Withdrawal {
        foreign_id,
        details: details_of(callback),
    })
}

fn details_of(callback: Callback) -> ProviderDetails {
    let txids = callback
        .transactions
        .iter()
        .filter_map(|t| t.txid.clone())
        .filter(|t| !t.is_empty())
        .collect();
    ProviderDetails {
        provider_id: Some(callback.id),
        provider_status: callback.status,
        sent: callback.currency_sent,
        received: callback.currency_received,
        fees: callback.fees,
        txids,
        error: callback.error.filter(|e| !e.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_callbacks_carry_foreign_id_and_details() {
        let body =
            br#"{"id":7,"type":"withdrawal_exchange","foreign_id":"pd-1","status":"confirmed",
            "currency_sent":{"currency":"EUR","amount":"100.00"},
            "currency_received":{"currency":"BTC","amount":"0.0015"},
            "transactions":[{"txid":"abc"},{"txid":""}],"fees":[],"error":""}"#;
        let ParsedCallback::Withdrawal {
            foreign_id,
            details,
        } = parse(body).unwrap()
        else {
            panic!("expected a withdrawal");
        };
        assert_eq!(foreign_id, "pd-1");
        assert_eq!(details.provider_id, Some(7));
        assert_eq!(details.txids, vec!["abc".to_string()]);
        assert_eq!(details.error, None);
        assert_eq!(details.received.unwrap().currency, "BTC");
    }

    #[test]
    fn deposits_and_foreign_id_less_callbacks_are_ignored() {
        let deposit = br#"{"id":1,"type":"deposit","status":"confirmed","crypto_address":{"currency":"BTC","address":"x","foreign_id":"u"}}"#;
        assert!(matches!(
            parse(deposit).unwrap(),
            ParsedCallback::Ignored { .. }
        ));
        let no_id = br#"{"id":1,"type":"withdrawal","status":"confirmed"}"#;
        assert!(matches!(
            parse(no_id).unwrap(),
            ParsedCallback::Ignored { .. }
        ));
        assert!(parse(b"not json").is_err());
    }
}
