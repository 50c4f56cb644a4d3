//! `packet-service admin …`: one call of a running backend's admin service
//! (`proto/admin.proto`, served by `src/backend/admin.rs`) through the
//! generated client, its answer as text, and the exit statuses: 0 done,
//! 1 refused (nobody by that name, bad text), 3 the service could not be
//! reached or failed, 4 the token was refused or could not be read (usage
//! errors, 2, are the command line's).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tonic::transport::Endpoint;
use tonic::{Code, Request, Status};

use super::admin::read_token_file;
use crate::civil::Civil;
use crate::config::{AdminAction, AdminCommand};
use crate::pb::admin::{self as pb, admin_client::AdminClient};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminCliError {
    /// The service refused the request: nobody by that name, bad text.
    #[error("refused: {0}")]
    Refused(String),
    /// The service could not be reached, or failed.
    #[error("{0}")]
    Failed(String),
    /// The token was refused, or its file could not be read.
    #[error("{0}")]
    Token(String),
}

impl AdminCliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminCliError::Refused(_) => 1,
            AdminCliError::Failed(_) => 3,
            AdminCliError::Token(_) => 4,
        }
    }

    fn of(status: Status, addr: SocketAddr) -> AdminCliError {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound | Code::InvalidArgument | Code::FailedPrecondition => {
                AdminCliError::Refused(message)
            }
            Code::Unauthenticated => AdminCliError::Token(format!(
                "the admin service at {addr} refused the token ({message}): give the right \
                 --admin-token-file / ADMIN_TOKEN_FILE"
            )),
            code => AdminCliError::Failed(format!(
                "the admin service at {addr} failed: {code:?}: {message}"
            )),
        }
    }
}

/// [`run`] on a runtime of its own (the binary has none).
pub fn run_blocking(cmd: &AdminCommand) -> Result<String, AdminCliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminCliError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(cmd))
}

/// Where to reach a service that listens on `addr`: an unspecified address
/// is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Runs `cmd`; what to print on success.
pub async fn run(cmd: &AdminCommand) -> Result<String, AdminCliError> {
    let addr = reachable(cmd.addr);
    let token = match &cmd.token_file {
        None => None,
        Some(path) => Some(read_token_file(path).map_err(|reason| {
            AdminCliError::Token(format!("admin token file {}: {reason}", path.display()))
        })?),
    };
    let unreachable = |e: &dyn std::error::Error| {
        // The error and its causes, each said once.
        let mut parts = vec![e.to_string()];
        let mut source = e.source();
        while let Some(inner) = source {
            let part = inner.to_string();
            if parts.last() != Some(&part) {
                parts.push(part);
            }
            source = inner.source();
        }
        let why = parts.join(": ");
        AdminCliError::Failed(format!("cannot reach the admin service at {addr}: {why}"))
    };
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| unreachable(&e))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| unreachable(&e))?;
    let mut client = AdminClient::new(channel);
    let token = token.as_deref();
    let failed = |status| AdminCliError::of(status, addr);
    match &cmd.action {
        AdminAction::Players => {
            let reply = client
                .list_players(with_token(pb::ListPlayersRequest {}, token))
                .await
                .map_err(failed)?;
            Ok(players_table(&reply.into_inner().players))
        }
        AdminAction::Kick { name, reason } => {
            let reply = client
                .kick(with_token(
                    pb::KickRequest {
                        name: name.clone(),
                        reason: reason.clone(),
                    },
                    token,
                ))
                .await
                .map_err(failed)?;
            Ok(format!("kicked {}\n", reply.into_inner().kicked.join(", ")))
        }
        AdminAction::Announce { text, map } => {
            let reply = client
                .announce(with_token(
                    pb::AnnounceRequest {
                        text: text.clone(),
                        map: map.map_or(0, u32::from),
                        from: String::new(),
                    },
                    token,
                ))
                .await
                .map_err(failed)?;
            Ok(format!(
                "announced to {} players\n",
                reply.into_inner().reached
            ))
        }
        AdminAction::Ban { account } => {
            let reply = client
                .ban(with_token(
                    pb::BanRequest {
                        account: account.clone(),
                    },
                    token,
                ))
                .await
                .map_err(failed)?;
            let kicked = reply.into_inner().kicked;
            Ok(if kicked.is_empty() {
                format!("banned {account:?} (not in the world)\n")
            } else {
                format!("banned {account:?}, kicked {}\n", kicked.join(", "))
            })
        }
    }
}

/// A request carrying `token` as `authorization: Bearer <token>` metadata
/// (none without a token, or when the token is not valid metadata).
pub fn with_token<T>(body: T, token: Option<&[u8]>) -> Request<T> {
    let mut request = Request::new(body);
    if let Some(token) = token {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_slice()) {
            request.metadata_mut().insert("authorization", value);
        }
    }
    request
}

/// The list as a table: one line per player.
fn players_table(players: &[pb::PlayerInfo]) -> String {
    let mut out = format!(
        "{:<20}  {:<20}  {:>5}  {:>17}  {:<32}  {}\n",
        "account", "character", "map", "position", "gateway", "connected since (UTC)"
    );
    for p in players {
        let t = Civil::from_unix(p.joined_at);
        let _ = writeln!(
            out,
            "{:<20}  {:<20}  {:>5}  {:>17}  {:<32}  {:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            p.account,
            p.character,
            p.map,
            format!("{:.0},{:.0}", p.x, p.y),
            p.gateway,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second
        );
    }
    let _ = writeln!(out, "{} players", players.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:29200".parse().expect("addr");
        assert_eq!(reachable(any), "127.0.0.1:29200".parse().expect("addr"));
        let v6: SocketAddr = "[::]:1".parse().expect("addr");
        assert_eq!(reachable(v6), "[::1]:1".parse().expect("addr"));
        let given: SocketAddr = "10.0.0.1:5".parse().expect("addr");
        assert_eq!(reachable(given), given);
    }

    #[test]
    fn statuses_give_exit_codes() {
        let addr = "127.0.0.1:1".parse().expect("addr");
        let code = |s| AdminCliError::of(s, addr).exit_code();
        assert_eq!(code(Status::not_found("x")), 1);
        assert_eq!(code(Status::unauthenticated("x")), 4);
        assert_eq!(code(Status::unavailable("x")), 3);
    }

    #[test]
    fn the_table_has_a_line_per_player() {
        let p = pb::PlayerInfo {
            account: "bob".into(),
            character: "Bobby".into(),
            map: 1,
            x: 5200.4,
            y: 5300.0,
            gateway: "127.0.0.1:29000 h/1".into(),
            joined_at: 1_700_000_000,
            ..Default::default()
        };
        let table = players_table(&[p]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("Bobby"));
        assert!(lines[1].contains("5200,5300"));
        assert!(lines[1].ends_with("2023-11-14 22:13:20"));
        assert_eq!(lines[2], "1 players");
    }
}
