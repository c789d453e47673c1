//! The shape every background task shares (submission worker, reconciler, notifier,
//! currency refresh): run a step, wait, repeat, until shutdown — and never cut a step short.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs `step` at once and then every `interval` until `shutdown` turns true. A step that is
/// running when shutdown comes finishes first.
pub async fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if *shutdown.borrow() {
            break;
        }
        step().await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!(task = name, "background task stopped");
}
