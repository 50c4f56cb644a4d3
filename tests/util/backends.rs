//! Test backends: the generated service traits implemented with
//! controllable latency and failures, served (with the health service) by
//! real tonic servers on loopback from a runtime the test owns, or as
//! [`routes`] for a gateway to call in-process.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use packet_service::pb::auth::auth_server::{Auth, AuthServer};
use packet_service::pb::auth::*;
use packet_service::pb::character::character_server::{Character, CharacterServer};
use packet_service::pb::character::{
    CreateReply, CreateRequest, DeleteReply, DeleteRequest, ListReply, ListRequest, SelectReply,
    SelectRequest,
};
use packet_service::pb::world::world_server::{World, WorldServer};
use packet_service::pb::world::{downstream, upstream, Downstream, Joined, Upstream};
use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

/// What the test can turn while the backend runs.
#[derive(Default)]
pub struct Knobs {
    /// Added to every call.
    pub latency_ms: AtomicU64,
    /// Answer every call with UNAVAILABLE.
    pub fail: AtomicBool,
    /// Calls received.
    pub calls: AtomicU64,
    /// Login calls received.
    pub logins: AtomicU64,
    /// Joins land in the MAP stage (the world is joined) instead of CHAR_SELECT.
    pub map_stage: AtomicBool,
    /// The world reads nothing of a link (and sends nothing) while true.
    pub world_hold: tokio::sync::watch::Sender<bool>,
    /// Once released, the world sends this many downstream messages
    /// before it reads any upstream one (it reads upstream only once its
    /// downstream is being read).
    pub world_burst: AtomicU64,
    /// Upstream messages the world read.
    pub upstream: AtomicU64,
    next_session: AtomicU32,
}

impl Knobs {
    async fn enter(&self) -> Result<(), Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ms = self.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(Status::unavailable("test backend failing"));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct TestAuth(Arc<Knobs>);

fn servers() -> Vec<ServerInfo> {
    vec![ServerInfo {
        id: 1,
        name: "test".into(),
        test: false,
        channels: vec![ChannelInfo {
            id: 1,
            name: "one".into(),
            ..Default::default()
        }],
    }]
}

#[tonic::async_trait]
impl Auth for TestAuth {
    async fn login(&self, _r: Request<LoginRequest>) -> Result<Response<LoginReply>, Status> {
        self.0.logins.fetch_add(1, Ordering::SeqCst);
        self.0.enter().await?;
        let session = self.0.next_session.fetch_add(1, Ordering::SeqCst) + 1000;
        Ok(Response::new(LoginReply {
            result: LoginResult::Ok as i32,
            user_id: session,
            access: 1,
            session_id: session,
            servers: servers(),
            ..Default::default()
        }))
    }
    async fn select_server(
        &self,
        r: Request<SelectServerRequest>,
    ) -> Result<Response<SelectServerReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(SelectServerReply {
            result: SelectServerResult::Ok as i32,
            session_id: r.into_inner().session_id,
        }))
    }
    async fn join_server(
        &self,
        r: Request<JoinServerRequest>,
    ) -> Result<Response<JoinServerReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(JoinServerReply {
            result: JoinResult::Ok as i32,
            user_id: r.into_inner().session_id,
            stage: if self.0.map_stage.load(Ordering::SeqCst) {
                Stage::Map as i32
            } else {
                Stage::CharSelect as i32
            },
            char_id: 1,
            access: 1,
            ..Default::default()
        }))
    }
    async fn refresh(&self, _r: Request<RefreshRequest>) -> Result<Response<RefreshReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(RefreshReply { ok: true }))
    }
    async fn logout(&self, _r: Request<LogoutRequest>) -> Result<Response<LogoutReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(LogoutReply {}))
    }
    async fn list_servers(
        &self,
        _r: Request<ListServersRequest>,
    ) -> Result<Response<ListServersReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(ListServersReply { servers: servers() }))
    }
}

#[derive(Clone)]
struct TestCharacter(Arc<Knobs>);

#[tonic::async_trait]
impl Character for TestCharacter {
    async fn list(&self, _r: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(ListReply::default()))
    }
    async fn create(&self, _r: Request<CreateRequest>) -> Result<Response<CreateReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(CreateReply::default()))
    }
    async fn delete(&self, _r: Request<DeleteRequest>) -> Result<Response<DeleteReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(DeleteReply::default()))
    }
    async fn select(&self, _r: Request<SelectRequest>) -> Result<Response<SelectReply>, Status> {
        self.0.enter().await?;
        Ok(Response::new(SelectReply::default()))
    }
}

/// A world that accepts every join and otherwise stays silent.
#[derive(Clone)]
struct TestWorld(Arc<Knobs>);

type LinkStream = Pin<Box<dyn Stream<Item = Result<Downstream, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl World for TestWorld {
    type LinkStream = LinkStream;
    async fn link(
        &self,
        r: Request<tonic::Streaming<Upstream>>,
    ) -> Result<Response<LinkStream>, Status> {
        self.0.enter().await?;
        let mut up = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let knobs = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut hold = knobs.world_hold.subscribe();
            if hold.wait_for(|held| !held).await.is_err() {
                return;
            }
            for _ in 0..knobs.world_burst.load(Ordering::SeqCst) {
                let joined = Downstream {
                    kind: Some(downstream::Kind::Joined(Joined {
                        session_id: 0,
                        result: 0,
                        entity_id: 1,
                    })),
                };
                if tx.send(Ok(joined)).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(msg)) = up.next().await {
                knobs.upstream.fetch_add(1, Ordering::SeqCst);
                if let Some(upstream::Kind::Join(j)) = msg.kind {
                    let joined = Downstream {
                        kind: Some(downstream::Kind::Joined(Joined {
                            session_id: j.session_id,
                            result: 0,
                            entity_id: 1,
                        })),
                    };
                    if tx.send(Ok(joined)).await.is_err() {
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

/// The three test services on `knobs` (without health), to be served or
/// called in-process.
pub fn routes(knobs: &Arc<Knobs>) -> tonic::service::Routes {
    tonic::service::Routes::new(AuthServer::new(TestAuth(Arc::clone(knobs))))
        .add_service(CharacterServer::new(TestCharacter(Arc::clone(knobs))))
        .add_service(WorldServer::new(TestWorld(Arc::clone(knobs))))
}

/// A running test backend.
pub struct TestBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its knobs.
    pub knobs: Arc<Knobs>,
    /// The backend's own runtime: shutting it down kills every connection
    /// and stream at once, as a crashed process would.
    rt: Option<tokio::runtime::Runtime>,
}

impl TestBackend {
    /// Serves the three test services on `addr` (port 0 for any).
    #[track_caller]
    pub fn start(addr: SocketAddr, knobs: Arc<Knobs>) -> TestBackend {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("backend runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind test backend");
        let addr = listener.local_addr().expect("addr");
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        // Health as the embedded backend serves it: the reporter's default
        // entry ("") says SERVING, and so does every service name asked.
        let (health, health_service) = tonic_health::server::health_reporter();
        rt.block_on(async {
            for name in [
                packet_service::pb::auth::auth_server::SERVICE_NAME,
                packet_service::pb::character::character_server::SERVICE_NAME,
                packet_service::pb::world::world_server::SERVICE_NAME,
            ] {
                health
                    .set_service_status(name, tonic_health::ServingStatus::Serving)
                    .await;
            }
        });
        let server = tonic::transport::Server::builder()
            .add_routes(routes(&knobs).add_service(health_service))
            .serve_with_incoming(incoming);
        rt.spawn(async move {
            let _ = server.await;
        });
        TestBackend {
            addr,
            knobs,
            rt: Some(rt),
        }
    }

    /// The URL the gateway is pointed at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving (and closes open streams).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}
