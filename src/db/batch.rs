//! Group commit: concurrent requests gathered into one database transaction.
//!
//! A request hands its input to a [`Batcher`] and waits for its own answer. A few runner
//! tasks share one queue: a free runner takes the first waiting request and everything queued
//! behind it (up to `max_batch`), runs them as one batch, and answers each. Nothing waits on
//! a timer: under light load a batch is one request and costs what a single request did;
//! under load, requests queue while the runners are busy and the next batch takes them all,
//! so many requests share one commit (one WAL flush) and one multi-row statement.
//!
//! What a batch does, and how one request's refusal stays its own, is the batch function's
//! business (see `withdrawals::create`). The batcher guarantees only that every request gets
//! exactly one answer or, if the runner is gone, an error telling the caller to do the work
//! itself.

use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Mutex};

/// `[batching]`: group commit of the money path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// Gather concurrent creates, CoinsPaid's acceptances and its callbacks into shared
    /// transactions. Off: one transaction per request (slower, same answers; the stopgap
    /// when batches keep failing).
    pub enabled: bool,
    /// At most this many requests in one batch.
    pub max_batch: usize,
    /// Batches in flight at once (each holds one database connection while it runs).
    pub runners: usize,
}

impl BatchSettings {
    /// Problems with these settings, for the configuration check.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=1000).contains(&self.max_batch) {
            problems.push("batching.max_batch must be 1 to 1000".to_owned());
        }
        if !(1..=64).contains(&self.runners) {
            problems.push("batching.runners must be 1 to 64".to_owned());
        }
        problems
    }
}

struct Waiting<I, O> {
    input: I,
    reply: oneshot::Sender<O>,
}

/// The runner is gone (the process is shutting down, or a batch function panicked): the
/// caller should do the work on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch runner is not available")]
pub struct Unavailable;

/// A queue of requests answered in batches by `runners` tasks.
pub struct Batcher<I, O> {
    queue: mpsc::UnboundedSender<Waiting<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `runners` tasks answering batches with `run`, which must return one output per
    /// input, in the inputs' order. `name` labels the batch metrics (one of
    /// `telemetry::catalog::BATCHES`).
    pub fn spawn<F, Fut>(name: &'static str, settings: &BatchSettings, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (queue, receiver) = mpsc::unbounded_channel::<Waiting<I, O>>();
        let receiver = Arc::new(Mutex::new(receiver));
        let run = Arc::new(run);
        let max_batch = settings.max_batch.max(1);
        for _ in 0..settings.runners.max(1) {
            let receiver = receiver.clone();
            let run = run.clone();
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < max_batch {
                            match receiver.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    // Requests per batch = the ratio of the two (the average batch size).
                    metrics::counter!("payoutd_batches_total", "batch" => name).increment(1);
                    metrics::counter!("payoutd_batched_requests_total", "batch" => name)
                        .increment(batch.len() as u64);
                    let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = batch
                        .into_iter()
                        .map(|waiting| (waiting.input, waiting.reply))
                        .unzip();
                    // Its own task: a panic in one batch drops its replies (each caller
                    // then works alone) without taking the runner down.
                    let outputs = tokio::spawn((run)(inputs)).await;
                    let Ok(outputs) = outputs else {
                        tracing::error!(
                            batch = name,
                            "a batch failed as a whole; its requests run alone"
                        );
                        continue;
                    };
                    debug_assert_eq!(outputs.len(), replies.len());
                    for (reply, output) in replies.into_iter().zip(outputs) {
                        // The caller may have gone (client hung up): its outcome is stored.
                        let _ = reply.send(output);
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `input` and waits for its answer.
    pub async fn submit(&self, input: I) -> Result<O, Unavailable> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Waiting { input, reply })
            .map_err(|_| Unavailable)?;
        answer.await.map_err(|_| Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_gets_its_own_answer_and_busy_runners_gather_batches() {
        let largest = Arc::new(AtomicUsize::new(0));
        let seen = largest.clone();
        let batcher = Batcher::spawn(
            "test",
            &BatchSettings {
                enabled: true,
                max_batch: 50,
                runners: 1,
            },
            move |inputs: Vec<u32>| {
                seen.fetch_max(inputs.len(), Ordering::Relaxed);
                async move {
                    // Slow enough that requests queue behind a running batch.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    inputs.into_iter().map(|i| i * 2).collect()
                }
            },
        );
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (i, batcher.submit(i).await.unwrap()) })
            })
            .collect();
        for task in tasks {
            let (i, doubled) = task.await.unwrap();
            assert_eq!(doubled, i * 2);
        }
        let largest = largest.load(Ordering::Relaxed);
        assert!(
            (2..=50).contains(&largest),
            "batches up to max_batch: {largest}"
        );
    }

    #[tokio::test]
    async fn a_batch_that_panics_tells_its_callers_to_work_alone_and_the_runner_goes_on() {
        let batcher = Batcher::spawn(
            "test",
            &BatchSettings {
                enabled: true,
                max_batch: 1,
                runners: 1,
            },
            |inputs: Vec<u32>| async move {
                assert!(inputs[0] != 13, "unlucky");
                inputs
            },
        );
        assert_eq!(batcher.submit(13).await, Err(Unavailable));
        assert_eq!(batcher.submit(7).await, Ok(7));
    }
}
