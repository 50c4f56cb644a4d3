//! The World gRPC service: one `Link` stream per gateway, whose upstream
//! messages are handled by the shared [`WorldState`] and whose downstream
//! is the link's bounded queue.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::super::lock;
use super::{WorldState, LINK_QUEUE_LEN};
use crate::pb::world::{self as pb, world_server::World};

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
        let mut upstream = request.into_inner();
        let (tx, rx) = mpsc::channel(LINK_QUEUE_LEN);
        let state = self.state.clone();
        let mut closing = state.closing.subscribe();
        if *closing.borrow() {
            return Err(Status::unavailable("backend shutting down"));
        }
        let link = state.next_link.fetch_add(1, Ordering::Relaxed);
        lock(&state.inner).links.insert(link, tx);
        log::info!("world: link {link} opened");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = upstream.message() => match msg {
                        Ok(Some(msg)) => state.handle(link, msg),
                        Ok(None) => break,
                        Err(status) => {
                            log::debug!("world: link {link} failed: {status}");
                            break;
                        }
                    },
                    _ = closing.wait_for(|&c| c) => break,
                }
            }
            state.drop_link(link);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
