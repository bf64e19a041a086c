//! Binding and serving with graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api;
use crate::state::AppState;

/// A bound, not yet serving, server. Binding first lets callers learn the real port
/// (`port = 0` picks a free one) before requests arrive.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Binds `config.server.host:port`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(state: AppState) -> io::Result<Self> {
        let server = &state.config.server;
        let listener = TcpListener::bind((server.host.as_str(), server.port)).await?;
        Ok(Self { listener, state })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// When the socket cannot report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
    /// `server.shutdown_grace_secs`.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_secs);
        let addr = self.local_addr()?;
        let streams = self.state.shutdown.clone();
        let app = api::router(self.state);
        tracing::info!("listening on http://{addr}");

        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutdown requested, draining in-flight requests");
            // Open MCP streams end now rather than at the end of the grace period.
            streams.cancel();
            let _ = signalled_tx.send(());
        };
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).into_future();
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => result?,
            () = async {
                // Only start the grace timer once shutdown was requested.
                if signalled_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests outlived the grace period");
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
