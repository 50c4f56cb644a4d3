//! The World gRPC service: one `Link` stream per gateway, whose upstream
//! messages are handled in order by the shared [`WorldState`] (a Join's
//! reads off the loop: `link.rs`) and whose downstream is the link's
//! bounded queue. This process's own gateway opens its link in-process,
//! handing over the messages unencoded (`DirectWorld`,
//! `src/rpc/transport.rs`): the same `WorldService::open` serves both.
//!
//! A link reads its gateway's next message only once its own queue is at
//! most half full (waiting at most [`PACE_WAIT`]): what one gateway's
//! players cause — a crowd arriving in one spot sends each newcomer a spawn
//! per player in view — is paced by how fast that gateway takes it, instead
//! of overflowing the queue. Broadcasts from other links never wait.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::super::store::memory::lock;
use super::link::Loading;
use super::{WorldState, LINK_QUEUE_LEN};
use crate::pb::world::{self as pb, world_server::World};

/// Free room a link's queue must have before the link reads on.
const PACE_FREE: usize = LINK_QUEUE_LEN / 2;
/// Longest wait for that room; past it the link reads on, and what does
/// not fit is dropped and counted.
pub const PACE_WAIT: Duration = Duration::from_secs(1);

/// What a link's loop was woken by.
enum Next<L, M> {
    /// A join's reads are done.
    Loaded(L),
    /// The gateway's next message (or the stream's end).
    Message(M),
}

/// The World gRPC service over a [`WorldState`].
pub(crate) struct WorldService {
    /// The world all links share.
    pub(crate) state: Arc<WorldState>,
}

#[tonic::async_trait]
impl World for WorldService {
    type LinkStream = ReceiverStream<Result<pb::Downstream, Status>>;

    async fn link(
        &self,
        request: Request<Streaming<pb::Upstream>>,
    ) -> Result<Response<Self::LinkStream>, Status> {
        let gateway = super::admin::gateway_name(
            request
                .metadata()
                .get(crate::rpc::GATEWAY_METADATA)
                .map(|v| v.as_bytes()),
        );
        self.open(gateway, request.into_inner()).map(Response::new)
    }
}

impl crate::rpc::transport::DirectWorld for WorldService {
    fn link(
        &self,
        gateway: Option<&[u8]>,
        upstream: mpsc::Receiver<pb::Upstream>,
    ) -> Result<crate::rpc::transport::Downstream, Status> {
        let upstream = ReceiverStream::new(upstream).map(Ok);
        self.open(super::admin::gateway_name(gateway), upstream)
            .map(ReceiverStream::into_inner)
    }
}

impl WorldService {
    /// Opens a link for the gateway named `gateway` (from its `x-gateway`
    /// metadata) whose messages come from `upstream`: over gRPC, or handed
    /// over in-process by this process's gateway (`DirectWorld`). Returns
    /// the link's downstream queue, which the gateway reads.
    fn open<S>(
        &self,
        gateway: Option<String>,
        upstream: S,
    ) -> Result<ReceiverStream<Result<pb::Downstream, Status>>, Status>
    where
        S: Stream<Item = Result<pb::Upstream, Status>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(LINK_QUEUE_LEN);
        let state = self.state.clone();
        let mut closing = state.closing.subscribe();
        if *closing.borrow() {
            return Err(Status::unavailable("backend shutting down"));
        }
        let link = state.next_link.fetch_add(1, Ordering::Relaxed);
        // Weak: the link's queue closes when the world drops it.
        let pace = tx.downgrade();
        let mut inner = lock(&state.inner);
        inner.links.insert(link, tx);
        if let Some(name) = &gateway {
            inner.gateways.insert(link, name.clone());
        }
        drop(inner);
        log::info!(
            "world: link {link} opened by {}",
            gateway.as_deref().unwrap_or("an unnamed gateway")
        );
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            let state = task_state;
            let mut upstream = std::pin::pin!(upstream);
            let mut loading = Loading::new(link);
            loop {
                let next = tokio::select! {
                    _ = closing.wait_for(|&c| c) => break,
                    done = loading.next(), if loading.is_busy() => Next::Loaded(done),
                    msg = upstream.next(), if !loading.is_full() => Next::Message(msg),
                };
                match next {
                    Next::Loaded(done) => state.loaded(&mut loading, done).await,
                    Next::Message(Some(Ok(msg))) => state.dispatch(&mut loading, msg).await,
                    Next::Message(None) => break,
                    Next::Message(Some(Err(status))) => {
                        log::debug!("world: link {link} failed: {status}");
                        break;
                    }
                }
                // Paced after a loaded join too: its Joined, its burst and
                // a spawn per player in view are as much as any message.
                if let Some(tx) = pace.upgrade().filter(|tx| tx.capacity() < PACE_FREE) {
                    let room = tokio::time::timeout(PACE_WAIT, tx.reserve_many(PACE_FREE));
                    tokio::select! {
                        waited = room => if waited.is_err() {
                            log::debug!("world: link {link} still full after {PACE_WAIT:?}");
                        },
                        _ = closing.wait_for(|&c| c) => break,
                    }
                }
            }
            // Joins still loading are dropped with the link (their tasks
            // are aborted): their gateway is gone.
            drop(loading);
            state.drop_link(link).await;
        });
        let mut tasks = lock(&state.link_tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        drop(tasks);
        Ok(ReceiverStream::new(rx))
    }
}
