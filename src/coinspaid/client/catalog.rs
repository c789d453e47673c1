//! Reference data: currencies, exchange estimates, ping.

use serde::Serialize;

use super::{truncate, CoinsPaidClient, ProviderError};
use crate::coinspaid::wire::{
    CurrencyListEntry, Envelope, ExchangeCalculateRequest, ExchangeEstimate, PairList,
};

impl CoinsPaidClient {
    /// Posts `body` and decodes `{"data": T}` from a 2xx answer.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        body: &impl Serialize,
    ) -> Result<T, ProviderError> {
        let (status, bytes) = self.post(endpoint, body).await?;
        if !status.is_success() {
            return Err(ProviderError::Http {
                status: status.as_u16(),
                body: truncate(&bytes),
            });
        }
        serde_json::from_slice::<Envelope<T>>(&bytes)
            .map(|e| e.data)
            .map_err(|e| ProviderError::Decode(e.to_string()))
    }

    /// `POST /v2/currencies/list`: what the merchant account can pay out.
    pub async fn currencies_list(&self) -> Result<Vec<CurrencyListEntry>, ProviderError> {
        self.call("/v2/currencies/list", &serde_json::json!({}))
            .await
    }

    /// `POST /v2/currencies/rates` (current docs), unfiltered: every pair and its minimum.
    pub async fn currencies_rates(&self) -> Result<PairList, ProviderError> {
        self.call("/v2/currencies/rates", &serde_json::json!({}))
            .await
    }

    /// `POST /v2/currencies/pairs` (older docs): the same answer under its earlier name.
    pub async fn currencies_pairs(&self) -> Result<PairList, ProviderError> {
        self.call("/v2/currencies/pairs", &serde_json::json!({}))
            .await
    }

    /// `POST /v2/exchange/calculate`: CoinsPaid's estimate of a conversion.
    pub async fn exchange_calculate(
        &self,
        request: &ExchangeCalculateRequest,
    ) -> Result<ExchangeEstimate, ProviderError> {
        self.call("/v2/exchange/calculate", request).await
    }

    /// `POST /v2/ping`: connectivity and credentials.
    pub async fn ping(&self) -> Result<(), ProviderError> {
        let (status, body) = self.post("/v2/ping", &serde_json::json!({})).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ProviderError::Http {
                status: status.as_u16(),
                body: truncate(&body),
            })
        }
    }
}
