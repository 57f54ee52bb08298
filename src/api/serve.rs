//! The HTTP server around the router: accepts connections (at most `--max-connections`
//! at once), gives each a deadline for its request headers (`--header-timeout`, after
//! which hyper closes it), tells the router who is connected, and shuts down
//! gracefully with a deadline. On the signal it stops accepting; idle connections close
//! at once; requests in flight (streams included) finish; once none is left, or when
//! `--shutdown-timeout` has passed, the connections still open (a client that sent half
//! a request and went quiet) are closed and [`serve`] returns.

use crate::api::state::AppState;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long connections get after the last request in flight has finished, to write it
/// out, before those still open are closed.
const FLUSH_GRACE: Duration = Duration::from_millis(500);

/// Limits of the connections themselves (server flags).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a client has to send a request's headers (None: forever).
    pub header_timeout: Option<Duration>,
    /// Connections open at once; the next wait in the kernel's backlog.
    pub max_connections: usize,
    /// Longest wait for requests in flight after the signal (None: until they finish,
    /// each bounded by its own limits).
    pub shutdown_timeout: Option<Duration>,
}

/// Serves `app` on `listener` until `signal` resolves, then shuts down as above.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    options: ServeOptions,
    signal: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    tokio::pin!(signal);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        "shutting down: no new connections; finishing the {} requests in flight",
        state.in_flight()
    );
    let open = graceful.count();
    let all_closed = graceful.shutdown();
    tokio::pin!(all_closed);
    let drained = async {
        tokio::select! {
            () = &mut all_closed => return,
            () = requests_done(&state) => {},
        }
        // The last responses are written out; what is still open then is a client that
        // sent part of a request and went quiet, and is closed.
        let _ = tokio::time::timeout(FLUSH_GRACE, &mut all_closed).await;
    };
    let finished = match options.shutdown_timeout {
        Some(limit) => tokio::time::timeout(limit, drained).await.is_ok(),
        None => {
            drained.await;
            true
        }
    };
    if !finished {
        tracing::warn!(
            "--shutdown-timeout passed with {} requests still in flight: closing them",
            state.in_flight()
        );
    }
    tracing::debug!("{open} connections were open at the signal");
}

/// Resolves once no request is in flight.
async fn requests_done(state: &AppState) {
    let started = Instant::now();
    while state.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::debug!(
        "requests in flight finished {} ms after the signal",
        started.elapsed().as_millis()
    );
}
