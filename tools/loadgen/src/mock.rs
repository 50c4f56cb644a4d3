//! A mock backend: the auth, character and world services with a fixed
//! latency added to every unary call, served by tonic on `127.0.0.1:0`
//! from a runtime of its own.
//!
//! Login always succeeds (any username, any digest) and opens a session;
//! every account has one character, so select works without creating one.
//! The world answers joins, CHANGE_MAP_REQ (with CHANGE_MAP_REPLY) and
//! NORMAL_CHAT (broadcast to every joined session, the speaker included).
//! It exists to measure the gateway in isolation from a real backend (the
//! `isolation` scenario) and to let the bots be tested without one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use packet_service::pb::auth::auth_server::{Auth, AuthServer};
use packet_service::pb::auth::{
    ChannelInfo, JoinResult, JoinServerReply, JoinServerRequest, ListServersReply,
    ListServersRequest, LoginReply, LoginRequest, LoginResult, LogoutReply, LogoutRequest,
    RefreshReply, RefreshRequest, SelectServerReply, SelectServerRequest, SelectServerResult,
    ServerInfo, Stage,
};
use packet_service::pb::character::character_server::{Character, CharacterServer};
use packet_service::pb::character::{
    CharacterSummary, CreateReply, CreateRequest, DeleteReply, DeleteRequest, ListReply,
    ListRequest, SelectReply, SelectRequest,
};
use packet_service::pb::world::world_server::{World, WorldServer};
use packet_service::pb::world::{downstream, upstream, Broadcast, Downstream, Joined, Upstream};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{
    packet_to_vec, ChangeMapReply, NormalChat, NormalChatBroadcast, Packet,
};
use packet_service::protocol::HEADER_LEN;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// What a session is doing.
#[derive(Copy, Clone)]
struct Session {
    user_id: u32,
    stage: Stage,
    char_id: u64,
}

/// State shared by the three services.
struct Shared {
    latency: Duration,
    next_id: AtomicU32,
    sessions: Mutex<HashMap<u32, Session>>,
}

impl Shared {
    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn servers() -> Vec<ServerInfo> {
    vec![ServerInfo {
        id: 1,
        name: "mock".into(),
        test: false,
        channels: vec![ChannelInfo {
            id: 1,
            name: "one".into(),
            ..Default::default()
        }],
    }]
}

struct MockAuth(Arc<Shared>);

#[tonic::async_trait]
impl Auth for MockAuth {
    async fn login(&self, _r: Request<LoginRequest>) -> Result<Response<LoginReply>, Status> {
        self.0.delay().await;
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        self.0.sessions().insert(
            id,
            Session {
                user_id: id,
                stage: Stage::LoggedIn,
                char_id: 0,
            },
        );
        Ok(Response::new(LoginReply {
            result: LoginResult::Ok as i32,
            user_id: id,
            access: 1,
            session_id: id,
            servers: servers(),
            ..Default::default()
        }))
    }

    async fn select_server(
        &self,
        r: Request<SelectServerRequest>,
    ) -> Result<Response<SelectServerReply>, Status> {
        self.0.delay().await;
        let id = r.into_inner().session_id;
        let ok = match self.0.sessions().get_mut(&id) {
            Some(s) => {
                s.stage = Stage::CharSelect;
                true
            }
            None => false,
        };
        Ok(Response::new(SelectServerReply {
            result: if ok {
                SelectServerResult::Ok
            } else {
                SelectServerResult::Failed
            } as i32,
            session_id: id,
        }))
    }

    async fn join_server(
        &self,
        r: Request<JoinServerRequest>,
    ) -> Result<Response<JoinServerReply>, Status> {
        self.0.delay().await;
        let id = r.into_inner().session_id;
        let session = self.0.sessions().get(&id).copied();
        Ok(Response::new(match session {
            Some(s) => JoinServerReply {
                result: JoinResult::Ok as i32,
                user_id: s.user_id,
                stage: s.stage as i32,
                char_id: s.char_id,
                access: 1,
                ..Default::default()
            },
            None => JoinServerReply {
                result: JoinResult::Failed as i32,
                ..Default::default()
            },
        }))
    }

    async fn refresh(&self, r: Request<RefreshRequest>) -> Result<Response<RefreshReply>, Status> {
        self.0.delay().await;
        let ok = self.0.sessions().contains_key(&r.into_inner().session_id);
        Ok(Response::new(RefreshReply { ok }))
    }

    async fn logout(&self, r: Request<LogoutRequest>) -> Result<Response<LogoutReply>, Status> {
        self.0.delay().await;
        self.0.sessions().remove(&r.into_inner().session_id);
        Ok(Response::new(LogoutReply {}))
    }

    async fn list_servers(
        &self,
        _r: Request<ListServersRequest>,
    ) -> Result<Response<ListServersReply>, Status> {
        self.0.delay().await;
        Ok(Response::new(ListServersReply { servers: servers() }))
    }
}

struct MockCharacter(Arc<Shared>);

#[tonic::async_trait]
impl Character for MockCharacter {
    async fn list(&self, r: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        self.0.delay().await;
        let user = r.into_inner().user_id;
        Ok(Response::new(ListReply {
            characters: vec![CharacterSummary {
                char_id: u64::from(user),
                name: format!("m{user}"),
                level: 1,
                equipped_items: vec![0; 8],
                ..Default::default()
            }],
        }))
    }

    async fn create(&self, _r: Request<CreateRequest>) -> Result<Response<CreateReply>, Status> {
        self.0.delay().await;
        Ok(Response::new(CreateReply::default()))
    }

    async fn delete(&self, _r: Request<DeleteRequest>) -> Result<Response<DeleteReply>, Status> {
        self.0.delay().await;
        Ok(Response::new(DeleteReply::default()))
    }

    async fn select(&self, r: Request<SelectRequest>) -> Result<Response<SelectReply>, Status> {
        self.0.delay().await;
        let r = r.into_inner();
        if let Some(s) = self.0.sessions().get_mut(&r.session_id) {
            s.stage = Stage::Map;
            s.char_id = r.char_id;
        }
        Ok(Response::new(SelectReply::default()))
    }
}

/// The world: no added latency (its stream is serial; a delay per message
/// would queue every player behind every other).
struct MockWorld;

type LinkStream = Pin<Box<dyn Stream<Item = Result<Downstream, Status>> + Send + 'static>>;

/// The body (no header) of a packet, in the world stream's numbering.
fn body<P: Packet>(p: &P) -> Option<(u32, Vec<u8>)> {
    let dialect = DialectId::Osirose.dialect();
    let id = dialect.wire_id(P::TYPE)?;
    let mut v = packet_to_vec(dialect, p).ok()?;
    v.drain(..HEADER_LEN);
    Some((u32::from(id), v))
}

fn packet(targets: Vec<u32>, (ty, payload): (u32, Vec<u8>)) -> Downstream {
    Downstream {
        kind: Some(downstream::Kind::Packet(Broadcast {
            targets,
            r#type: ty,
            payload,
            // The osIROSE layout (the mock world serves osIROSE bots).
            ..Broadcast::default()
        })),
    }
}

#[tonic::async_trait]
impl World for MockWorld {
    type LinkStream = LinkStream;

    async fn link(
        &self,
        r: Request<tonic::Streaming<Upstream>>,
    ) -> Result<Response<LinkStream>, Status> {
        let mut up = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let dialect = DialectId::Osirose.dialect();
        let chat_id = dialect
            .wire_id(PacketType::PAKCS_NORMAL_CHAT)
            .map(u32::from);
        let change_map_id = dialect
            .wire_id(PacketType::PAKCS_CHANGE_MAP_REQ)
            .map(u32::from);
        tokio::spawn(async move {
            // session → entity id; the map everyone is on.
            let mut players: HashMap<u32, u16> = HashMap::new();
            let mut next_entity: u16 = 1;
            while let Some(Ok(msg)) = up.next().await {
                let out = match msg.kind {
                    Some(upstream::Kind::Join(j)) => {
                        let entity = next_entity;
                        next_entity = next_entity.wrapping_add(1).max(1);
                        players.insert(j.session_id, entity);
                        vec![Downstream {
                            kind: Some(downstream::Kind::Joined(Joined {
                                session_id: j.session_id,
                                result: 0,
                                entity_id: u32::from(entity),
                            })),
                        }]
                    }
                    Some(upstream::Kind::Leave(l)) => {
                        players.remove(&l.session_id);
                        Vec::new()
                    }
                    Some(upstream::Kind::Packet(p)) if Some(p.r#type) == change_map_id => {
                        let entity = players.get(&p.session_id).copied().unwrap_or(0);
                        let reply = ChangeMapReply {
                            object_index: entity,
                            hp: 100,
                            mp: 100,
                            ..Default::default()
                        };
                        body(&reply)
                            .map(|b| vec![packet(vec![p.session_id], b)])
                            .unwrap_or_default()
                    }
                    Some(upstream::Kind::Packet(p)) if Some(p.r#type) == chat_id => {
                        let entity = players.get(&p.session_id).copied().unwrap_or(0);
                        match NormalChat::decode(&p.payload) {
                            Ok(chat) => {
                                let b = NormalChatBroadcast {
                                    char_id: entity,
                                    message: chat.message,
                                };
                                let targets = players.keys().copied().collect();
                                body(&b)
                                    .map(|b| vec![packet(targets, b)])
                                    .unwrap_or_default()
                            }
                            Err(_) => Vec::new(),
                        }
                    }
                    _ => Vec::new(),
                };
                for m in out {
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as LinkStream
        ))
    }
}

/// A running mock backend. Dropping it stops it.
pub struct MockBackend {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl MockBackend {
    /// Serves the three services on `127.0.0.1:0`, adding `latency` to every
    /// unary call.
    pub fn start(latency: Duration) -> std::io::Result<MockBackend> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mock-backend")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            latency,
            next_id: AtomicU32::new(1),
            sessions: Mutex::new(HashMap::new()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tonic::transport::Server::builder()
            .add_service(AuthServer::new(MockAuth(Arc::clone(&shared))))
            .add_service(CharacterServer::new(MockCharacter(Arc::clone(&shared))))
            .add_service(WorldServer::new(MockWorld))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        runtime.spawn(async move {
            let _ = server.await;
        });
        Ok(MockBackend {
            addr,
            stop: Some(stop),
            runtime: Some(runtime),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a gateway is pointed at (`--auth-url` and the others).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
