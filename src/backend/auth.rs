//! The Auth service over the account and session stores.
//!
//! Result mapping (the numbers are those of the reply packets):
//! - `Login`: digest kind UNSPECIFIED or a digest that is not hex of the
//!   kind's length → FAILED; no such account → UNKNOWN_ACCOUNT (unless
//!   auto-create is on and the name is one a player may choose,
//!   [`super::names`]); digest mismatch → INVALID_PASSWORD; access < 1 →
//!   NO_RIGHT_TO_CONNECT; else OK with a new session (replacing any session
//!   the account had, see [`super::sessions`]).
//! - `SelectServer`: unknown/expired session or unknown server → FAILED; a
//!   channel other than 1 → INVALID_CHANNEL; else OK (stage CHAR_SELECT).
//! - `JoinServer`: unknown session or wrong digest → INVALID_PASSWORD;
//!   expired → TIME_OUT; else OK with the session's user, stage and char.
//!
//! Guessing is bounded first (docs/protocol.md §9 D17, [`super::throttle`]):
//! a login from a source or for an account that failed too often lately,
//! and a join from such a source, is answered INVALID_PASSWORD without a
//! check, with the reason in the reply's `refusal`; an account is
//! auto-created only within the per-source and global limits (else
//! UNKNOWN_ACCOUNT, refusal AUTOCREATE_LIMIT).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::accounts::{LoginCheck, PasswordDigest};
use super::sessions::{JoinError, Stage};
use super::store::memory::lock;
use super::throttle::{account_key, source_key, AuthLimits, CreateGate, Gate};
use super::{database_failed, names, Shared, CHANNEL_ID, SERVER_ID};
use crate::pb::auth::{self as pb, auth_server::Auth};
use crate::rpc::convert;

/// The Auth service.
pub(crate) struct AuthService {
    /// Stores shared with the other services.
    pub(crate) shared: Arc<Shared>,
    /// Failures and creations counted against guessing and floods; held
    /// only between awaits.
    pub(crate) limits: Mutex<AuthLimits>,
}

impl AuthService {
    fn limits(&self) -> MutexGuard<'_, AuthLimits> {
        // The tables stay consistent even if a holder panicked.
        lock(&self.limits)
    }
}

/// Parses the digest of a request; `None` for an unspecified kind or a
/// malformed digest.
fn request_digest(kind: i32, digest: &[u8]) -> Option<PasswordDigest> {
    PasswordDigest::parse(convert::digest_kind(kind)?, digest)
}

fn pb_stage(stage: Stage) -> pb::Stage {
    match stage {
        Stage::LoggedIn => pb::Stage::LoggedIn,
        Stage::CharSelect => pb::Stage::CharSelect,
        Stage::Map => pb::Stage::Map,
    }
}

fn login_reply(result: pb::LoginResult) -> pb::LoginReply {
    refused_login(result, pb::AuthRefusal::None)
}

fn refused_login(result: pb::LoginResult, refusal: pb::AuthRefusal) -> pb::LoginReply {
    pb::LoginReply {
        result: result.into(),
        refusal: refusal.into(),
        ..Default::default()
    }
}

impl AuthService {
    /// A checked login failed: counted for its source and its account.
    fn failed_login(&self, source: Option<std::net::IpAddr>, account: &[u8], now: Instant) {
        let mut limits = self.limits();
        if let Some(source) = source {
            limits.login_sources.fail(&source, now);
        }
        limits.accounts.fail(&account.into(), now);
    }

    /// A checked join failed: counted for its source.
    fn failed_join(&self, source: Option<std::net::IpAddr>, now: Instant) {
        if let Some(source) = source {
            self.limits().join_sources.fail(&source, now);
        }
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginReply>, Status> {
        let req = request.into_inner();
        let Some(digest) = request_digest(req.digest_kind, &req.digest) else {
            log::debug!("login from {}: malformed digest", req.peer);
            return Ok(Response::new(login_reply(pb::LoginResult::Failed)));
        };
        let now = Instant::now();
        let source = source_key(&req.peer);
        let account = account_key(&req.username);
        let gate = {
            let limits = self.limits();
            let source_gate = source.map_or(Gate::Open, |s| limits.login_sources.gate(&s, now));
            if source_gate == Gate::Throttled {
                Some(pb::AuthRefusal::ThrottledSource)
            } else if limits.accounts.gate(&account, now) == Gate::Throttled {
                Some(pb::AuthRefusal::ThrottledAccount)
            } else {
                None
            }
        };
        if let Some(refusal) = gate {
            log::debug!("login from {}: throttled ({refusal:?})", req.peer);
            return Ok(Response::new(refused_login(
                pb::LoginResult::InvalidPassword,
                refusal,
            )));
        }
        // Only a name a player may choose is created (docs/protocol.md §9 D16),
        // and only within the creation limits.
        let may_create = self.shared.config.auto_create
            && names::check_player_name(&req.username) == names::NameCheck::Ok;
        let creation = may_create.then(|| self.limits().creations.take(source, now));
        let auto_create = creation == Some(CreateGate::Open);
        let check = self
            .shared
            .store
            .login(&req.username, &digest, auto_create)
            .await;
        let created = matches!(check, Ok(LoginCheck::Ok { created: true, .. }));
        if auto_create && !created {
            self.limits().creations.give_back(source);
        }
        let check = check.map_err(|e| database_failed("login", e))?;
        let (user_id, access) = match check {
            LoginCheck::Ok {
                user_id,
                access,
                created,
            } => {
                if created {
                    log::debug!(
                        "auto-created account {:?} (user {user_id}) for {}",
                        req.username,
                        req.peer
                    );
                }
                self.limits().accounts.forgive(&account);
                (user_id, access)
            }
            LoginCheck::UnknownAccount => {
                log::debug!(
                    "login from {}: unknown account {:?}",
                    req.peer,
                    req.username
                );
                self.failed_login(source, &account, now);
                let refusal = if creation == Some(CreateGate::Limited) {
                    pb::AuthRefusal::AutocreateLimit
                } else {
                    pb::AuthRefusal::None
                };
                return Ok(Response::new(refused_login(
                    pb::LoginResult::UnknownAccount,
                    refusal,
                )));
            }
            LoginCheck::InvalidPassword => {
                log::debug!(
                    "login from {}: wrong password for {:?}",
                    req.peer,
                    req.username
                );
                self.failed_login(source, &account, now);
                return Ok(Response::new(login_reply(pb::LoginResult::InvalidPassword)));
            }
            LoginCheck::NoRightToConnect => {
                log::debug!(
                    "login from {}: {:?} may not connect",
                    req.peer,
                    req.username
                );
                return Ok(Response::new(login_reply(
                    pb::LoginResult::NoRightToConnect,
                )));
            }
        };
        let session_id = self
            .shared
            .sessions
            .create(user_id, access, &digest)
            .await
            .map_err(|e| database_failed("login", e))?;
        log::debug!(
            "login from {}: {:?} is user {user_id}, new session",
            req.peer,
            req.username
        );
        Ok(Response::new(pb::LoginReply {
            result: pb::LoginResult::Ok.into(),
            user_id,
            access,
            session_id,
            servers: self.shared.servers(),
            refusal: pb::AuthRefusal::None.into(),
        }))
    }

    async fn select_server(
        &self,
        request: Request<pb::SelectServerRequest>,
    ) -> Result<Response<pb::SelectServerReply>, Status> {
        let req = request.into_inner();
        let reply = |result: pb::SelectServerResult, session_id: u32| {
            Ok(Response::new(pb::SelectServerReply {
                result: result.into(),
                session_id,
            }))
        };
        let failed = |e| database_failed("server select", e);
        let sessions = &self.shared.sessions;
        let live = sessions.get(req.session_id).await.map_err(failed)?.is_ok();
        if !live || req.server_id != SERVER_ID {
            return reply(pb::SelectServerResult::Failed, 0);
        }
        if req.channel_id != CHANNEL_ID {
            return reply(pb::SelectServerResult::InvalidChannel, 0);
        }
        match sessions
            .select_server(req.session_id)
            .await
            .map_err(failed)?
        {
            Ok(()) => reply(pb::SelectServerResult::Ok, req.session_id),
            Err(_) => reply(pb::SelectServerResult::Failed, 0),
        }
    }

    async fn join_server(
        &self,
        request: Request<pb::JoinServerRequest>,
    ) -> Result<Response<pb::JoinServerReply>, Status> {
        let req = request.into_inner();
        let fail = |result: pb::JoinResult| {
            Ok(Response::new(pb::JoinServerReply {
                result: result.into(),
                ..Default::default()
            }))
        };
        let now = Instant::now();
        let source = source_key(&req.peer);
        let throttled =
            source.is_some_and(|s| self.limits().join_sources.gate(&s, now) == Gate::Throttled);
        if throttled {
            log::debug!("join from {}: throttled", req.peer);
            return Ok(Response::new(pb::JoinServerReply {
                result: pb::JoinResult::InvalidPassword.into(),
                refusal: pb::AuthRefusal::ThrottledSource.into(),
                ..Default::default()
            }));
        }
        let Some(digest) = request_digest(req.digest_kind, &req.digest) else {
            self.failed_join(source, now);
            return fail(pb::JoinResult::InvalidPassword);
        };
        let joined = self
            .shared
            .sessions
            .join(req.session_id, &digest)
            .await
            .map_err(|e| database_failed("join", e))?;
        match joined {
            Ok(info) => Ok(Response::new(pb::JoinServerReply {
                result: pb::JoinResult::Ok.into(),
                user_id: info.user_id,
                stage: pb_stage(info.stage).into(),
                char_id: info.char_id.unwrap_or(0),
                access: info.access,
                refusal: pb::AuthRefusal::None.into(),
            })),
            Err(JoinError::TimeOut) => fail(pb::JoinResult::TimeOut),
            Err(JoinError::InvalidPassword) => {
                log::debug!("join from {}: invalid session or digest", req.peer);
                self.failed_join(source, now);
                fail(pb::JoinResult::InvalidPassword)
            }
        }
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshReply>, Status> {
        let id = request.into_inner().session_id;
        let ok = self
            .shared
            .sessions
            .refresh(id)
            .await
            .map_err(|e| database_failed("session refresh", e))?;
        Ok(Response::new(pb::RefreshReply { ok }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutReply>, Status> {
        let req = request.into_inner();
        let removed = self
            .shared
            .sessions
            .remove(req.session_id)
            .await
            .map_err(|e| database_failed("logout", e))?;
        if let Some(user_id) = removed {
            log::debug!(
                "user {user_id} logged out ({:?})",
                pb::LogoutReason::try_from(req.reason).unwrap_or_default()
            );
        }
        Ok(Response::new(pb::LogoutReply {}))
    }

    async fn list_servers(
        &self,
        _request: Request<pb::ListServersRequest>,
    ) -> Result<Response<pb::ListServersReply>, Status> {
        Ok(Response::new(pb::ListServersReply {
            servers: self.shared.servers(),
        }))
    }
}
