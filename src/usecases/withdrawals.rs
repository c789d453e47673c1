//! The website's withdrawals: request one, read it, list them, cancel one awaiting approval.

use std::sync::Arc;

use sqlx::PgPool;
use tracing::Instrument;
use uuid::Uuid;

use super::Page;
use crate::currencies::Currencies;
use crate::domain::travel_rule::TravelRulePolicy;
use crate::domain::IdempotencyKey;
use crate::operators::{ActionError, Operators};
use crate::withdrawals::create::request::{self, CreateError, CreateOutcome, WithdrawalInput};
use crate::withdrawals::create::Creates;
use crate::withdrawals::store::{self, ListFilter};
use crate::withdrawals::submit::first_attempt::FirstAttempts;
use crate::withdrawals::Withdrawal;

#[derive(Clone)]
pub struct Withdrawals {
    pool: PgPool,
    currencies: Arc<Currencies>,
    travel_rule: Arc<TravelRulePolicy>,
    creates: Creates,
    first_attempts: FirstAttempts,
    operators: Operators,
}

/// What a request for a withdrawal did.
#[derive(Debug)]
pub enum Requested {
    /// Held and stored now: sent or being sent, or held for approval or a pause.
    New(Withdrawal),
    /// The same key and request again: the withdrawal the first one made; nothing new done.
    Replayed(Withdrawal),
}

impl Withdrawals {
    pub fn new(
        pool: PgPool,
        currencies: Arc<Currencies>,
        travel_rule: Arc<TravelRulePolicy>,
        creates: Creates,
        first_attempts: FirstAttempts,
        operators: Operators,
    ) -> Self {
        Self {
            pool,
            currencies,
            travel_rule,
            creates,
            first_attempts,
            operators,
        }
    }

    /// Validates the request against the catalogue and the travel-rule policy, holds the
    /// amount and stores the withdrawal (one transaction, idempotent on `key`), then makes the
    /// first submission attempt and waits for it up to `worker.first_attempt_wait_ms`: the
    /// withdrawal is returned as it stands then, usually `processing` already.
    pub async fn create(
        &self,
        key: IdempotencyKey,
        input: WithdrawalInput,
    ) -> Result<Requested, CreateError> {
        let valid = request::validate(&input, &self.currencies.catalog(), &self.travel_rule)?;
        let has_travel_rule = !valid.travel_rule.is_empty();
        // The ids exist once the withdrawal is stored: recorded then, so the span (exported
        // with them when traces are) and every line after name the withdrawal.
        let span = tracing::info_span!(
            "withdrawal.create",
            user_id = %valid.user_id,
            withdrawal_id = tracing::field::Empty,
            foreign_id = tracing::field::Empty,
        );
        let created = async move {
            let outcome = self.creates.create(key, valid).await?;
            let (CreateOutcome::Replayed(w)
            | CreateOutcome::Held(w)
            | CreateOutcome::Created { withdrawal: w, .. }) = &outcome;
            let span = tracing::Span::current();
            span.record("withdrawal_id", tracing::field::display(w.id));
            span.record("foreign_id", w.foreign_id.as_str());
            Ok(match outcome {
                CreateOutcome::Replayed(withdrawal) => Requested::Replayed(withdrawal),
                // Awaiting approval, or its currency is paused: held and queued, nothing sent.
                CreateOutcome::Held(withdrawal) => Requested::New(withdrawal),
                CreateOutcome::Created { withdrawal, lease } => Requested::New(
                    self.first_attempts
                        .run(lease, withdrawal, has_travel_rule)
                        .await?,
                ),
            })
        };
        created.instrument(span).await
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Withdrawal>, sqlx::Error> {
        store::get(&self.pool, id).await
    }

    /// Newest first: up to `limit` after `filter.before`.
    pub async fn list(
        &self,
        filter: &ListFilter,
        limit: i64,
    ) -> Result<Page<Withdrawal>, sqlx::Error> {
        let rows = store::list(&self.pool, filter, limit + 1).await?;
        Ok(Page::of(rows, limit, |w| w.id))
    }

    /// Cancels a withdrawal awaiting approval and releases its hold (one transaction; a second
    /// cancel finds it cancelled and changes nothing). Audited as the website's decision.
    pub async fn cancel(&self, id: Uuid, reason: Option<&str>) -> Result<Withdrawal, ActionError> {
        self.operators.cancel(id, reason).await
    }
}
