//! The admin service (`proto/admin.proto`): what an operator asks of a
//! running backend — the players online, a kick, an announcement, a ban —
//! served on its own listener (`--admin-listen`, loopback by default) next
//! to the embedded backend's services, in the gateway's process and in
//! `packet-service backend` alike.
//!
//! With a token file (`--admin-token-file`) every call must carry
//! `authorization: Bearer <token>`; the token is compared in constant time
//! and a call without it, or with another, fails with UNAUTHENTICATED. An
//! address off loopback without a token file refuses to start. Every call is
//! counted by kind and result (`admin_actions_total`) when the process has a
//! metrics registry.
//!
//! A ban sets the account's access level to 0 (docs/database.md: the
//! next login is refused with NO_RIGHT_TO_CONNECT), kicks its players and
//! ends the account's session, whatever its stage: a gateway holding a
//! connection of it at character select closes that connection at its next
//! session refresh (answered expired): its first ALIVE at least a minute
//! after its last refresh (docs/protocol.md §9 D6).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::names::MAX_NAME_LEN;
use super::world::admin::{Online, Target};
use super::world::WorldState;
use super::{database_failed, BackendConfig, BackendError, Shared};
use crate::pb::admin::{self as pb, admin_server::Admin};

/// Longest announcement, in bytes.
pub const MAX_ANNOUNCE_BYTES: usize = 200;
/// Longest sender name of an announcement, in bytes.
pub const MAX_FROM_BYTES: usize = 32;
/// Longest token read from a token file, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// The sender of an announcement that names none.
const DEFAULT_FROM: &str = "server";
/// The reason of a kick that gives none.
const DEFAULT_REASON: &str = "kicked by an operator";

/// What a call asked for: the `kind` label of `admin_actions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Kick,
    Announce,
    Ban,
}

impl Kind {
    /// Every kind.
    const ALL: [Kind; 4] = [Kind::List, Kind::Kick, Kind::Announce, Kind::Ban];

    fn label(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Kick => "kick",
            Kind::Announce => "announce",
            Kind::Ban => "ban",
        }
    }
}

/// Every `result` label of `admin_actions_total`.
const RESULTS: [&str; 5] = ["done", "not_found", "invalid", "unauthenticated", "failed"];

/// Creates every `(kind, result)` series of `counter` at 0, so that rates
/// and alerts work before the first call.
pub(crate) fn every_label(counter: &prometheus::IntCounterVec) {
    for kind in Kind::ALL {
        for result in RESULTS {
            counter.with_label_values(&[kind.label(), result]);
        }
    }
}

/// How a call ended: the `result` label of `admin_actions_total`, from its
/// status.
fn result_label(status: Option<&Status>) -> &'static str {
    match status.map(Status::code) {
        None => "done",
        Some(tonic::Code::NotFound) => "not_found",
        Some(tonic::Code::InvalidArgument) => "invalid",
        Some(tonic::Code::Unauthenticated) => "unauthenticated",
        Some(_) => "failed",
    }
}

/// Reads a token file: its first line without surrounding whitespace,
/// non-empty and at most [`MAX_TOKEN_BYTES`]. The error says why, never the
/// token.
pub fn read_token_file(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let token = line.trim_ascii();
    if token.is_empty() {
        return Err("the first line is empty".into());
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("the token is longer than {MAX_TOKEN_BYTES} bytes"));
    }
    Ok(token.to_vec())
}

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The admin gRPC service over the world and the store.
pub(crate) struct AdminService {
    world: Arc<WorldState>,
    shared: Arc<Shared>,
    /// The token calls must present; `None`: any call is let in.
    token: Option<Vec<u8>>,
    /// Where actions are counted, once the process has given it.
    counter: Arc<OnceLock<prometheus::IntCounterVec>>,
}

impl AdminService {
    /// Lets the call in if it carries the token.
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        match given {
            Some(given) if constant_time_eq(given, token) => Ok(()),
            _ => Err(Status::unauthenticated("admin token missing or wrong")),
        }
    }

    /// Counts and logs how a call ended.
    fn done<T>(&self, kind: Kind, result: Result<T, Status>) -> Result<T, Status> {
        let label = result_label(result.as_ref().err());
        if let Some(counter) = self.counter.get() {
            counter.with_label_values(&[kind.label(), label]).inc();
        }
        match &result {
            Ok(_) => log::info!("admin: {} done", kind.label()),
            Err(s) => log::warn!("admin: {} refused ({label}): {}", kind.label(), s.message()),
        }
        result
    }

    /// The account named `name` (either case): its id and stored name.
    async fn account(&self, name: &str) -> Result<Option<(u32, String)>, Status> {
        let account = self
            .shared
            .store
            .account_by_name(name)
            .await
            .map_err(|e| database_failed("admin: account", e))?;
        Ok(account.map(|a| (a.user_id, a.username)))
    }

    async fn list(&self) -> Result<pb::ListPlayersReply, Status> {
        let online = self.world.online();
        let ids: Vec<u32> = online.iter().map(|p| p.user_id).collect();
        let names: HashMap<u32, String> = self
            .shared
            .store
            .account_names(&ids)
            .await
            .map_err(|e| database_failed("admin: account names", e))?
            .into_iter()
            .collect();
        let account = |user_id: u32| {
            names
                .get(&user_id)
                .map_or_else(|| format!("user {user_id}"), Clone::clone)
        };
        let players = online
            .into_iter()
            .map(|p| pb::PlayerInfo {
                account: account(p.user_id),
                user_id: p.user_id,
                character: p.name,
                map: p.map.into(),
                x: p.x,
                y: p.y,
                gateway: p.gateway,
                joined_at: p
                    .joined
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                entity_id: p.entity_id.into(),
                session_id: p.session_id,
            })
            .collect();
        Ok(pb::ListPlayersReply { players })
    }

    async fn kick(&self, req: pb::KickRequest) -> Result<pb::KickReply, Status> {
        let name = checked_name(&req.name)?;
        let reason = match req.reason.trim() {
            "" => DEFAULT_REASON,
            r if r.len() <= MAX_ANNOUNCE_BYTES && printable(r) => r,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "a reason is at most {MAX_ANNOUNCE_BYTES} bytes without control characters"
                )))
            }
        };
        let mut kicked = self.world.kick(Target::Character(name), reason).await;
        // A kick of an account also refuses its join still loading, if one
        // is: said rather than only that nobody was found.
        let mut loading = "";
        if kicked.is_empty() {
            if let Some((user_id, _)) = self.account(name).await? {
                loading = "; any join of the account still loading will be refused";
                kicked = self.world.kick(Target::User(user_id), reason).await;
            }
        }
        if kicked.is_empty() {
            return Err(Status::not_found(format!(
                "nobody named {name:?} is in the world{loading}"
            )));
        }
        Ok(pb::KickReply {
            kicked: names(kicked),
        })
    }

    fn announce(&self, req: pb::AnnounceRequest) -> Result<pb::AnnounceReply, Status> {
        let text = req.text.trim();
        if text.is_empty() || text.len() > MAX_ANNOUNCE_BYTES || !printable(text) {
            return Err(Status::invalid_argument(format!(
                "an announcement is 1..={MAX_ANNOUNCE_BYTES} bytes without control characters"
            )));
        }
        let from = match req.from.trim() {
            "" => DEFAULT_FROM,
            f if f.len() <= MAX_FROM_BYTES && printable(f) => f,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "the sender is at most {MAX_FROM_BYTES} bytes without control characters"
                )))
            }
        };
        let map = match req.map {
            0 => None,
            m => Some(u16::try_from(m).map_err(|_| Status::invalid_argument("no such map"))?),
        };
        let reached = self.world.announce(text, from, map);
        Ok(pb::AnnounceReply {
            reached: u32::try_from(reached).unwrap_or(u32::MAX),
        })
    }

    async fn ban(&self, req: pb::BanRequest) -> Result<pb::BanReply, Status> {
        let name = checked_name(&req.account)?;
        let Some((user_id, username)) = self.account(name).await? else {
            return Err(Status::not_found(format!("no account named {name:?}")));
        };
        let banned = self
            .shared
            .store
            .set_access(&username, 0)
            .await
            .map_err(|e| database_failed("admin: ban", e))?;
        if !banned {
            return Err(Status::not_found(format!("no account named {name:?}")));
        }
        log::info!("admin: account {username:?} (user {user_id}) banned");
        // The account's one session goes first, whatever its stage: a join
        // that starts after this finds none, one already loading is refused
        // by the kick that follows, and a connection at character select
        // (no world player to kick) is closed by its gateway at its next
        // refresh, answered expired.
        if let Err(e) = self.shared.sessions.remove_account(user_id).await {
            log::error!("admin: session of banned user {user_id} not removed: {e}");
        }
        let kicked = self.world.kick(Target::User(user_id), "banned").await;
        Ok(pb::BanReply {
            kicked: names(kicked),
        })
    }
}

/// Whether `s` has no control characters.
fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A name to look up: trimmed, 1..=[`MAX_NAME_LEN`] bytes (account and
/// character names share that bound), without control characters.
fn checked_name(raw: &str) -> Result<&str, Status> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || !printable(name) {
        return Err(Status::invalid_argument(format!(
            "a name is 1..={MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(name)
}

/// The character names of kicked players.
fn names(kicked: Vec<Online>) -> Vec<String> {
    kicked.into_iter().map(|p| p.name).collect()
}

impl AdminService {
    /// Lets `request` in if it carries the token, runs `call` on its body
    /// and counts how it ended.
    async fn serve_call<T, R, F>(
        &self,
        kind: Kind,
        request: Request<T>,
        call: impl FnOnce(T) -> F,
    ) -> Result<Response<R>, Status>
    where
        F: std::future::Future<Output = Result<R, Status>>,
    {
        let result = match self.check(&request) {
            Ok(()) => call(request.into_inner()).await,
            Err(s) => Err(s),
        };
        self.done(kind, result).map(Response::new)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_players(
        &self,
        request: Request<pb::ListPlayersRequest>,
    ) -> Result<Response<pb::ListPlayersReply>, Status> {
        self.serve_call(Kind::List, request, |_| self.list()).await
    }

    async fn kick(
        &self,
        request: Request<pb::KickRequest>,
    ) -> Result<Response<pb::KickReply>, Status> {
        self.serve_call(Kind::Kick, request, |r| AdminService::kick(self, r))
            .await
    }

    async fn announce(
        &self,
        request: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceReply>, Status> {
        let call = |r| std::future::ready(AdminService::announce(self, r));
        self.serve_call(Kind::Announce, request, call).await
    }

    async fn ban(
        &self,
        request: Request<pb::BanRequest>,
    ) -> Result<Response<pb::BanReply>, Status> {
        self.serve_call(Kind::Ban, request, |r| AdminService::ban(self, r))
            .await
    }
}

/// The admin service, serving.
pub(crate) struct AdminServer {
    /// The bound address.
    pub(crate) addr: SocketAddr,
    /// The server task, ending once `stopped` says so.
    pub(crate) task: JoinHandle<()>,
    /// Where actions are counted.
    pub(crate) counter: Arc<OnceLock<prometheus::IntCounterVec>>,
}

/// The token the configuration asks for, checked against the address:
/// off loopback a token file is required.
pub(crate) fn token_of(config: &BackendConfig) -> Result<Option<Vec<u8>>, BackendError> {
    let addr = config.admin_listen;
    match &config.admin_token_file {
        None if addr.ip().is_loopback() => Ok(None),
        None => Err(BackendError::AdminExposed { addr }),
        Some(path) => read_token_file(path)
            .map(Some)
            .map_err(|reason| BackendError::AdminToken {
                path: PathBuf::from(path),
                reason,
            }),
    }
}

/// Binds `listen` and serves the admin service, letting in the calls that
/// carry `token` (any call without one: [`token_of`] allows that on
/// loopback only), until `stopped` turns true.
pub(crate) async fn serve(
    listen: SocketAddr,
    token: Option<Vec<u8>>,
    world: Arc<WorldState>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> Result<AdminServer, BackendError> {
    let bind_failed = |source| BackendError::Bind {
        addr: listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(bind_failed)?;
    let addr = listener.local_addr().map_err(bind_failed)?;
    let counter = Arc::new(OnceLock::new());
    let service = AdminService {
        world,
        shared,
        token,
        counter: Arc::clone(&counter),
    };
    let tokened = if service.token.is_some() {
        "token required"
    } else {
        "no token"
    };
    let router = tonic::transport::Server::builder()
        .add_service(pb::admin_server::AdminServer::new(service));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.wait_for(|&s| s).await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
            log::error!("admin service failed: {e}");
        }
    });
    log::info!("admin service on {addr} ({tokened})");
    Ok(AdminServer {
        addr,
        task,
        counter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn token_files_give_their_first_line() {
        let dir = std::env::temp_dir().join(format!("ps-admin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "  s3cret \nignored\n").expect("write");
        assert_eq!(read_token_file(&file).as_deref(), Ok(&b"s3cret"[..]));
        std::fs::write(&file, "\nlater").expect("write");
        assert!(read_token_file(&file).is_err());
        assert!(read_token_file(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn off_loopback_needs_a_token_file() {
        let mut config = BackendConfig {
            admin_listen: "0.0.0.0:29200".parse().expect("addr"),
            ..BackendConfig::default()
        };
        assert!(matches!(
            token_of(&config),
            Err(BackendError::AdminExposed { .. })
        ));
        config.admin_listen = "127.0.0.1:0".parse().expect("addr");
        assert!(matches!(token_of(&config), Ok(None)));
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(checked_name(" Bob ").ok(), Some("Bob"));
        for bad in ["", "  ", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn results_are_labelled_by_status() {
        for status in [
            Status::not_found("x"),
            Status::invalid_argument("x"),
            Status::unauthenticated("x"),
            Status::internal("x"),
        ] {
            assert!(RESULTS.contains(&result_label(Some(&status))));
        }
        assert_eq!(result_label(None), "done");
        assert_eq!(result_label(Some(&Status::not_found("x"))), "not_found");
        assert_eq!(
            result_label(Some(&Status::unauthenticated("x"))),
            "unauthenticated"
        );
        assert_eq!(result_label(Some(&Status::internal("x"))), "failed");
    }
}
