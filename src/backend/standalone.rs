//! `packet-service backend`: the auth, character and world services alone
//! on `--backend-listen`, with no client listener, for deployments whose
//! gateways run elsewhere (each pointed at it with `AUTH_URL`,
//! `CHARACTER_URL` and `WORLD_URL`). Several may share one PostgreSQL
//! database; each serves every session. SIGHUP re-reads the accounts
//! file ([`super::reload`]).

use std::net::SocketAddr;
use std::sync::mpsc;

use super::reload::AccountsReload;
use super::{BackendError, EmbeddedBackend};
use crate::config::Config;

/// Why the standalone backend could not run.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// No address to serve on.
    #[error("packet-service backend needs --backend-listen / BACKEND_LISTEN (e.g. 0.0.0.0:29100)")]
    NoListen,
    /// The runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The backend failed to start.
    #[error("embedded backend: {0}")]
    Backend(#[from] BackendError),
}

/// A standalone backend that serves.
pub struct Running {
    runtime: tokio::runtime::Runtime,
    backend: EmbeddedBackend,
    grace: std::time::Duration,
}

/// Starts the backend on `--backend-listen`.
pub fn start(config: &Config) -> Result<Running, StandaloneError> {
    let listen = config.backend_listen.ok_or(StandaloneError::NoListen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.rpc_threads)
        .thread_name("backend")
        .enable_all()
        .build()
        .map_err(StandaloneError::Runtime)?;
    let backend = runtime.block_on(EmbeddedBackend::start(config.backend_config(), listen))?;
    log::info!(
        "backend serving auth, character and world on {}",
        backend.addr()
    );
    Ok(Running {
        runtime,
        backend,
        grace: config.shutdown_grace,
    })
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.backend.addr()
    }

    /// Where a reload asks for the accounts file to be read again.
    pub fn accounts_reload(&self) -> AccountsReload {
        self.backend.accounts_reload()
    }

    /// Serves until `stop` receives (or its sender is dropped), then shuts
    /// the backend down (saving the characters in play) within the grace
    /// period.
    pub fn serve(self, stop: mpsc::Receiver<()>) {
        let Running {
            runtime,
            backend,
            grace,
        } = self;
        let _ = stop.recv();
        log::info!("backend stopping");
        if runtime
            .block_on(async { tokio::time::timeout(grace, backend.shutdown()).await })
            .is_err()
        {
            log::warn!("backend did not stop within {grace:?}");
        }
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    }
}

/// [`start`], then [`Running::serve`]; `ready` is told the bound address
/// once it serves.
pub fn run(
    config: &Config,
    stop: mpsc::Receiver<()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), StandaloneError> {
    let running = start(config)?;
    ready(running.addr());
    running.serve(stop);
    Ok(())
}
