//! How the gateway's clients reach a backend service: over gRPC on a
//! tonic [`Channel`], or — when this process's embedded backend serves it
//! — in-process ([`Local`]).
//!
//! In-process, the client's `http::Request` is handed straight to the
//! backend's tonic [`Routes`] (the generated `AuthServer`,
//! `CharacterServer` and `WorldServer`, and health): no socket, no HTTP/2
//! framing, no hyper task or TCP wakeup on either side. The messages are
//! still encoded and decoded by tonic's codecs, so the services see the
//! same requests and the clients the same responses, statuses and streams
//! as over the wire. The world link is the exception: it carries every
//! world packet (a broadcast is one message per map event, its target list
//! a thousand ids long), so the embedded world service is handed the link's
//! messages themselves ([`DirectWorld`]), with the gateway's name as its
//! `x-gateway` metadata would carry it.
//!
//! A unary call's handler runs in the caller's task: when the call's
//! deadline passes and the caller drops it, the handler is dropped with
//! it, as a server drops a handler whose stream was reset.
//! Streams (the world link) are polled on demand in both directions, so
//! backpressure is that of the bounded channels behind them.
//!
//! Once the embedded backend is stopping, in-process calls are answered
//! UNAVAILABLE, as its listener refuses new connections then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::service::Routes;
use tonic::transport::Channel;

/// The way to one backend service.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Over gRPC: a lazily connected or balancing channel.
    Remote(Channel),
    /// This process's embedded backend, called in-process.
    Local(Local),
}

/// The embedded backend's services, to be called in-process.
#[derive(Clone)]
pub struct Local {
    url: String,
    routes: Routes,
    world: Option<Arc<dyn DirectWorld>>,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("url", &self.url)
            .field("direct_world", &self.world.is_some())
            .finish_non_exhaustive()
    }
}

/// A world link's downstream as the world queues it.
pub type Downstream = mpsc::Receiver<Result<crate::pb::world::Downstream, tonic::Status>>;

/// A world service that takes a link's messages in-process, unencoded.
pub trait DirectWorld: Send + Sync {
    /// Opens a link for the gateway named `gateway` (the bytes its
    /// `x-gateway` metadata would carry) reading `upstream`; the link's
    /// downstream, closed when the world ends the link. Refused as
    /// `World.Link` is.
    #[allow(clippy::result_large_err)] // tonic's Status, as in the generated traits
    fn link(
        &self,
        gateway: Option<&[u8]>,
        upstream: mpsc::Receiver<crate::pb::world::Upstream>,
    ) -> Result<Downstream, tonic::Status>;
}

/// What an in-process call is answered once the embedded backend stops.
fn stopped() -> tonic::Status {
    tonic::Status::unavailable("embedded backend stopped")
}

/// The URL of the embedded backend at `addr`, as `Config::endpoints`
/// configures the services it serves: the one form [`Local::serves`]
/// recognises.
pub fn embedded_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

impl Local {
    /// The services in `routes`, which the backend also serves over gRPC
    /// on `addr`; calls are refused once `stopped` says true.
    pub fn new(addr: SocketAddr, routes: Routes, stopped: watch::Receiver<bool>) -> Local {
        Local {
            url: embedded_url(addr),
            routes,
            world: None,
            stopped,
        }
    }

    /// The same, with the world link handed to `world` directly
    /// ([`DirectWorld`]) instead of through the routes' codecs.
    pub fn with_world(mut self, world: Arc<dyn DirectWorld>) -> Local {
        self.world = Some(world);
        self
    }

    /// The world the link is handed to directly ([`DirectWorld`]), if
    /// this backend's world takes it so (`None`: through the routes);
    /// refused UNAVAILABLE once the backend is stopping.
    #[allow(clippy::result_large_err)]
    pub fn direct_world(&self) -> Option<Result<&dyn DirectWorld, tonic::Status>> {
        let world = self.world.as_deref()?;
        Some(if *self.stopped.borrow() {
            Err(stopped())
        } else {
            Ok(world)
        })
    }

    /// The URL a service is configured with when this backend serves it
    /// ([`embedded_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a service at `urls` is this backend's: one URL, its own.
    pub fn serves(&self, urls: &[String]) -> bool {
        matches!(urls, [one] if *one == self.url)
    }
}

impl Transport {
    /// This process's world, when the world link is handed to it directly
    /// ([`Local::direct_world`]).
    #[allow(clippy::result_large_err)]
    pub fn direct_world(&self) -> Option<Result<&dyn DirectWorld, tonic::Status>> {
        match self {
            Transport::Local(local) => local.direct_world(),
            Transport::Remote(_) => None,
        }
    }

    /// The transport for a service at `urls`: in-process when `local`
    /// (the embedded backend, if it runs) serves it, else `remote()`.
    pub fn to(
        local: Option<&Local>,
        urls: &[String],
        remote: impl FnOnce() -> Result<Channel, tonic::transport::Error>,
    ) -> Result<Transport, tonic::transport::Error> {
        match local {
            Some(local) if local.serves(urls) => Ok(Transport::Local(local.clone())),
            _ => remote().map(Transport::Remote),
        }
    }
}

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Transport::Remote(channel) => channel.poll_ready(cx),
            Transport::Local(local) => {
                Service::<http::Request<Body>>::poll_ready(&mut local.routes, cx)
                    .map_err(|never| match never {})
            }
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Transport::Remote(channel) => Box::pin(channel.call(request)),
            Transport::Local(local) if *local.stopped.borrow() => {
                let status = stopped();
                let (parts, ()) = status.into_http::<()>().into_parts();
                Box::pin(std::future::ready(Ok(http::Response::from_parts(
                    parts,
                    Body::empty(),
                ))))
            }
            Transport::Local(local) => {
                let response = local.routes.call(request);
                Box::pin(async move {
                    match response.await {
                        Ok(response) => Ok(response),
                        Err(never) => match never {},
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::pb::world as pb;

    /// A world that records the names it was given and answers every link
    /// with one empty message.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Option<Vec<u8>>>>);

    impl DirectWorld for Recorder {
        fn link(
            &self,
            gateway: Option<&[u8]>,
            _upstream: mpsc::Receiver<pb::Upstream>,
        ) -> Result<Downstream, tonic::Status> {
            self.0
                .lock()
                .expect("the recorder's list")
                .push(gateway.map(<[u8]>::to_vec));
            let (tx, rx) = mpsc::channel(1);
            tx.try_send(Ok(pb::Downstream::default()))
                .expect("room for one");
            Ok(rx)
        }
    }

    fn upstream() -> mpsc::Receiver<pb::Upstream> {
        mpsc::channel(1).1
    }

    #[test]
    fn the_world_link_is_handed_over_until_the_backend_stops() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let (stop, stopped) = watch::channel(false);
        let world = Arc::new(Recorder::default());
        let local = Local::new(addr, Routes::default(), stopped)
            .with_world(Arc::clone(&world) as Arc<dyn DirectWorld>);
        let link = |gateway: Option<&[u8]>| match local.direct_world() {
            Some(Ok(world)) => world
                .link(gateway, upstream())
                .map(|_| ())
                .map_err(|s| s.code()),
            Some(Err(refused)) => Err(refused.code()),
            None => panic!("a direct world"),
        };

        let mut down = match local.direct_world() {
            Some(Ok(world)) => world.link(Some(b"gw1"), upstream()).expect("opened"),
            _ => panic!("a direct world"),
        };
        assert!(matches!(down.try_recv(), Ok(Ok(_))), "the world's queue");
        assert!(link(None).is_ok());

        stop.send_replace(true);
        assert_eq!(link(Some(b"gw1")), Err(tonic::Code::Unavailable));
        let seen = world.0.lock().expect("the recorder's list").clone();
        assert_eq!(
            seen,
            [Some(b"gw1".to_vec()), None],
            "not reached once stopped"
        );
    }

    #[test]
    fn without_a_direct_world_the_link_goes_through_the_routes() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let local = Local::new(addr, Routes::default(), watch::channel(false).1);
        assert!(local.direct_world().is_none());
    }
}
