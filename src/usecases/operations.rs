//! What operators do and read: the actions on a withdrawal (decided by `operators::Operators`
//! under the row lock, audited), the stuck queue, a withdrawal's page, the pause switch,
//! review flags and the audit trail. The website's review flags come here too.

use sqlx::PgPool;
use uuid::Uuid;

use super::Page;
use crate::domain::UserId;
use crate::ledger::LedgerEntry;
use crate::operators::actions::LookupReport;
use crate::operators::audit::{self, AuditEntry};
use crate::operators::pause::{self, Pause};
use crate::operators::policy::Outcome;
use crate::operators::stuck::{self, CallbackRow, StuckItem};
use crate::operators::{ActionError, Operators};
use crate::withdrawals::Withdrawal;

#[derive(Clone)]
pub struct Operations {
    pool: PgPool,
    operators: Operators,
}

/// A withdrawal's page: why it needs a person (if it does), its money, callbacks and audit.
#[derive(Debug)]
pub struct Detail {
    pub item: StuckItem,
    pub ledger: Vec<LedgerEntry>,
    pub callbacks: Vec<CallbackRow>,
    pub audit: Vec<AuditEntry>,
}

impl Operations {
    pub fn new(pool: PgPool, operators: Operators) -> Self {
        Self { pool, operators }
    }

    /// Everything that needs a person, oldest first: up to `limit` after `after`.
    pub async fn stuck(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<StuckItem>, sqlx::Error> {
        let rows = stuck::list(&self.pool, after, limit + 1).await?;
        Ok(Page::of(rows, limit, |i| i.withdrawal.id))
    }

    /// How many withdrawals need a person, by kind.
    pub async fn stuck_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        stuck::counts(&self.pool).await
    }

    pub async fn detail(&self, id: Uuid) -> Result<Detail, ActionError> {
        let item = stuck::get(&self.pool, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        Ok(Detail {
            ledger: stuck::ledger(&self.pool, id).await?,
            callbacks: stuck::callbacks(&self.pool, item.withdrawal.foreign_id.as_str()).await?,
            audit: audit::list(&self.pool, Some(id), None, 200).await?,
            item,
        })
    }

    pub async fn approve(
        &self,
        id: Uuid,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Withdrawal, ActionError> {
        self.operators.approve(id, by, reason).await
    }

    pub async fn reject(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
    ) -> Result<Withdrawal, ActionError> {
        self.operators.reject(id, by, reason).await
    }

    pub async fn retry_now(
        &self,
        id: Uuid,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Withdrawal, ActionError> {
        self.operators.retry_now(id, by, reason).await
    }

    pub async fn look_up(
        &self,
        id: Uuid,
        by: &str,
    ) -> Result<(Withdrawal, LookupReport), ActionError> {
        self.operators.look_up(id, by).await
    }

    pub async fn resolve(
        &self,
        id: Uuid,
        by: &str,
        outcome: Outcome,
        reason: &str,
        override_lookup: bool,
    ) -> Result<(Withdrawal, LookupReport), ActionError> {
        self.operators
            .resolve(id, by, outcome, reason, override_lookup)
            .await
    }

    pub async fn acknowledge(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
    ) -> Result<Withdrawal, ActionError> {
        self.operators.acknowledge(id, by, reason).await
    }

    /// Flags (`Some(reason)`) or unflags a user; `by` is an operator or the website.
    pub async fn set_review_flag(
        &self,
        user_id: &UserId,
        reason: Option<&str>,
        by: &str,
    ) -> Result<(), ActionError> {
        self.operators.set_review_flag(user_id, reason, by).await
    }

    /// The pauses in force.
    pub async fn pauses(&self) -> Result<Vec<Pause>, sqlx::Error> {
        pause::list(&self.pool).await
    }

    /// Stops submissions for `scope` (`*` or a currency code); returns the pauses in force.
    pub async fn pause(
        &self,
        scope: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Pause>, sqlx::Error> {
        pause::pause(&self.pool, scope, reason, by).await?;
        self.pauses().await
    }

    /// Resumes `scope`; returns the pauses still in force.
    pub async fn resume(
        &self,
        scope: &str,
        reason: Option<&str>,
        by: &str,
    ) -> Result<Vec<Pause>, sqlx::Error> {
        pause::resume(&self.pool, scope, reason, by).await?;
        self.pauses().await
    }

    /// The audit trail, newest first: up to `limit` before `before`, of one withdrawal if given.
    pub async fn audit(
        &self,
        withdrawal_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<AuditEntry>, sqlx::Error> {
        let rows = audit::list(&self.pool, withdrawal_id, before, limit + 1).await?;
        Ok(Page::of(rows, limit, |e| e.id))
    }
}
