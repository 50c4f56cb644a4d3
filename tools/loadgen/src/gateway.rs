//! A gateway started by the loadgen itself (the `isolation` scenario): the
//! release binary as a child process, or the library on a thread when no
//! binary is given. Loopback only.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use packet_service::config::Config;
use packet_service::protocol::CodecKind;
use packet_service::server::{Server, ServerHandle};

/// The settings of an in-process gateway for load: loopback, ephemeral
/// ports, no metrics, and no packet-rate, per-address or chat limit (the
/// load comes from one address, faster than players).
pub fn unlimited(codec: CodecKind) -> Config {
    let mut config = Config::for_tests();
    config.codec = codec;
    config.max_packets_per_sec = 0;
    config.max_connections_per_ip = 0;
    config.chat_per_sec = 0;
    config.metrics_enabled = false;
    config
}

/// Backend URLs for `--auth-url`, `--character-url` and `--world-url`.
#[derive(Clone, Debug)]
pub struct BackendUrls {
    /// One URL for the three services.
    pub url: String,
}

/// A running gateway; stopped when dropped.
pub enum Gateway {
    /// A child process running the binary.
    Process {
        /// The child.
        child: Child,
        /// Its client port.
        addr: SocketAddr,
    },
    /// The library on a thread of this process.
    InProcess(ServerHandle),
}

impl Gateway {
    /// Starts the binary at `bin` on a free loopback port, plain codec, no
    /// packet-rate limit, backends at `urls`, and waits until it accepts.
    /// `extra` is appended to the command line (e.g. `--rpc-threads 1`).
    pub fn spawn_process(
        bin: &Path,
        urls: &BackendUrls,
        extra: &[String],
    ) -> Result<Gateway, String> {
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["--listen", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args([
                "--codec",
                "plain",
                "--max-packets-per-sec",
                "0",
                // Every bot is on loopback and chatters talk faster than
                // players may.
                "--max-connections-per-ip",
                "0",
                "--chat-per-sec",
                "0",
                "--no-metrics",
            ])
            .args(["--auth-url", &urls.url])
            .args(["--character-url", &urls.url])
            .args(["--world-url", &urls.url])
            .args(["--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut gw = Gateway::Process { child, addr };
        gw.wait_ready()?;
        Ok(gw)
    }

    /// Starts the gateway library on a thread, same settings.
    pub fn spawn_in_process(urls: &BackendUrls) -> Result<Gateway, String> {
        let mut config = unlimited(CodecKind::Plain);
        config.auth_url = Some(vec![urls.url.clone()]);
        config.character_url = Some(vec![urls.url.clone()]);
        config.world_url = Some(urls.url.clone());
        let server = Server::build(config).map_err(|e| format!("gateway: {e}"))?;
        Ok(Gateway::InProcess(server.spawn()))
    }

    /// The client port.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Gateway::Process { addr, .. } => *addr,
            Gateway::InProcess(h) => h.addr(),
        }
    }

    /// The process id whose CPU and memory belong to the gateway.
    pub fn pid(&self) -> u32 {
        match self {
            Gateway::Process { child, .. } => child.id(),
            Gateway::InProcess(_) => std::process::id(),
        }
    }

    /// Waits (at most 15 s) until the port accepts a connection.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = self.addr();
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Gateway::Process { child, .. } = self {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("gateway exited at start-up: {status}"));
                }
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!("gateway did not accept on {addr} within 15 s"));
            }
            // Pacing of the retries (the condition is the connect above).
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Gateway::Process { child, .. } = self {
            // SIGTERM, then wait a bounded time, then SIGKILL.
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signalling our own child by its pid.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let until = Instant::now() + Duration::from_secs(8);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) if Instant::now() >= until => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("bind: {e}"))
}
