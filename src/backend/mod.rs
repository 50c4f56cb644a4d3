//! TEMP stub for compile checking
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
pub struct BackendConfig {
    pub accounts: Vec<(String, String)>,
    pub accounts_file: Option<PathBuf>,
    pub auto_create: bool,
    pub session_ttl: Duration,
    pub max_chars_per_account: usize,
    pub server_name: String,
}
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("x")]
    X,
}
pub struct EmbeddedBackend;
impl EmbeddedBackend {
    pub async fn start(_c: BackendConfig, _l: SocketAddr) -> Result<EmbeddedBackend, BackendError> {
        Err(BackendError::X)
    }
    pub fn addr(&self) -> SocketAddr {
        unimplemented!()
    }
    pub async fn shutdown(self) {}
}
