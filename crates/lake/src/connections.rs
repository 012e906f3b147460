//! Serving connections: a bounded number at once, each closed when its client is slow or idle.
//!
//! `axum::serve` accepts without limit and never times a connection out, so a client that opens
//! thousands of connections, or sends a header a byte a minute, exhausts the process's file
//! descriptors. This accept loop accepts at once, but a connection gets one of the serving
//! permits only once it has sent something: a connection that sends nothing within
//! `first_request_timeout` is closed, holding no permit meanwhile, so idle connections (2,000 of
//! them, say) cannot keep valid clients waiting. At most `max_pending` such silent connections
//! are kept; past that the newest is closed at once. Served connections get HTTP/1.1 with a
//! header-read timeout that also closes idle keep-alive connections. A stop is graceful:
//! in-flight calls are answered, then connections close.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How many connections are served at once, and how long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time to send a request's headers, and the most a keep-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Time to send a request's body, once its headers arrived.
    pub body_timeout: Duration,
    /// Time a new connection has to send the first byte of its first request.
    pub first_request_timeout: Duration,
    /// Connections accepted that have sent nothing yet, at most.
    pub max_pending: usize,
    /// Bytes of request bodies held at once across all connections: a request waits (briefly)
    /// for its share before its body is read, and is throttled when none comes.
    pub body_budget: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(20),
            first_request_timeout: Duration::from_secs(2),
            max_pending: 8192,
            body_budget: 64 << 20,
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true; then answers what is in flight and returns
/// once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    loop {
        let stream = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or a connection reset before accept: go on serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Too many silent connections already: this one is closed at once.
        let Ok(waiting) = Arc::clone(&pending).try_acquire_owned() else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            // Silent connections hold no serving permit, and not for long.
            let mut first = [0u8; 1];
            let spoke = tokio::select! {
                // A real first byte (readiness alone can be spurious); EOF is not speech.
                r = tokio::time::timeout(limits.first_request_timeout, stream.peek(&mut first)) => {
                    matches!(r, Ok(Ok(n)) if n > 0)
                }
                _ = stopped(&mut stop) => false,
            };
            drop(waiting);
            if !spoke {
                return;
            }
            let permit = tokio::select! {
                p = permits.acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = stopped(&mut stop) => return,
            };
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(64 * 1024);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // Every permit back means every connection closed.
    let _all = permits.acquire_many(max as u32).await;
    Ok(())
}

/// Returns once a stop is asked for (or whoever could ask is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}
