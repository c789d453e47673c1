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

/// Exponential backoff with ±20% jitter, so replicas retrying a failed provider spread out.
pub fn backoff(attempts: i32, base: Duration, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let raw = base.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let jitter = rand::random_range(0.8..1.2);
    raw.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        let first = backoff(1, base, max);
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        let fourth = backoff(4, base, max);
        assert!(fourth >= Duration::from_millis(6400) && fourth <= Duration::from_millis(9600));
        assert!(backoff(30, base, max) <= max);
        assert!(backoff(0, base, max) <= Duration::from_millis(1200));
    }
}
