//! The HTTP server loop: axum's `serve` with two things it does not do. A connection that has
//! not sent a whole request head within `server.header_read_timeout_secs` (a slow client, or
//! an idle keep-alive connection) is closed by hyper's own header-read timer; and at most
//! `server.max_connections` connections are open at once: past that, new ones wait in the
//! listen backlog until one closes, so a flood of silent connections can neither exhaust file
//! descriptors nor keep the accept loop from serving `/healthz` and real clients.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// File descriptors kept for everything but client connections: the database pool, the
/// CoinsPaid and notification clients, logs.
const RESERVED_DESCRIPTORS: usize = 256;

/// How the server treats connections (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head (the first, or the next on a kept-alive connection) must arrive within this.
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// open connection finish its in-flight request (idle ones close at once) and returns.
/// Each request carries `ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info`
/// would give it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = effective_max_connections(limits.max_connections, open_files_limit());
    let permits = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // A permit before accepting: over the cap, connections wait in the kernel's backlog
        // (their handshake done, nothing read) instead of holding a descriptor here.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    if !is_connection_error(&err) {
                        // Out of descriptors or memory: wait a moment rather than spin.
                        tracing::error!(error = %err, "accepting a connection failed");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                // Timed-out heads and peers gone mid-request end here; nothing to act on.
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors about one connection (the peer went away during the handshake): accept the next.
fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The configured cap, lowered to fit the process's open-files limit with room for everything
/// else: a cap above it would let the accept loop run out of descriptors first.
fn effective_max_connections(configured: usize, open_files: Option<usize>) -> usize {
    let Some(limit) = open_files else {
        return configured;
    };
    let fits = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    if configured > fits {
        tracing::warn!(
            configured,
            open_files_limit = limit,
            using = fits,
            "server.max_connections exceeds what the open-files limit (ulimit -n) leaves; using less"
        );
        fits
    } else {
        configured
    }
}

/// The soft `RLIMIT_NOFILE`, as Linux reports it in `/proc/self/limits`; `None` elsewhere or
/// when unlimited.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(effective_max_connections(4096, None), 4096);
        assert_eq!(effective_max_connections(4096, Some(1 << 20)), 4096);
        assert_eq!(effective_max_connections(4096, Some(1024)), 768);
        assert_eq!(effective_max_connections(100, Some(1024)), 100);
        assert_eq!(effective_max_connections(100, Some(10)), 1);
    }

    #[test]
    fn the_open_files_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
