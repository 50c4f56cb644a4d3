//! The world link: the one bidirectional `World.Link` stream a gateway
//! keeps up, carrying world traffic both ways, reconnected with backoff
//! while joins are refused (docs/architecture.md §2).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::{Ascii, MetadataValue};

use super::transport::Transport;
use super::types::{Completion, Job};
use super::{convert, Completer, Failed, GATEWAY_METADATA, WORLD_UPSTREAM};
use crate::conn::calls::{Call, RpcError};
use crate::pb::world;
use crate::pb::world::world_client::WorldClient;

/// How long establishing the world stream may take.
const WORLD_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps one world stream up. While it is down, joins are refused at once
/// and other upstream messages are dropped (the players they belong to
/// were told the link went down and were closed).
pub(super) async fn world_link(
    channel: Transport,
    gateway: Option<MetadataValue<Ascii>>,
    mut up: mpsc::Receiver<Job>,
    done: Completer,
    failed: Failed,
) {
    let observer = Arc::clone(&failed.observer);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (link_tx, link_rx) = mpsc::channel::<world::Upstream>(WORLD_UPSTREAM);
        let started = std::time::Instant::now();
        let opening = open(&channel, gateway.as_ref(), link_rx);
        let connect = tokio::time::timeout(WORLD_CONNECT_TIMEOUT, opening).await;
        let error = match &connect {
            Ok(Ok(_)) => None,
            Ok(Err(status)) => Some(convert::status_error(status)),
            Err(_) => Some(RpcError::DeadlineExceeded),
        };
        failed.observe("world", "Link", started.elapsed().as_secs_f64(), error);
        let mut down = match (connect, error) {
            (Ok(Ok(down)), _) => down,
            (_, error) => {
                let why = error.map_or("failed", RpcError::as_str);
                debug!("world link not established: {why}");
                if !refuse_while_down(&mut up, &done, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        info!("world link up");
        observer.world_link(true);
        done.send(Completion::WorldLink(true)).await;
        backoff = Duration::from_millis(100);
        // At most one upstream message waits for room on the stream; while
        // it waits, the downstream is still read (the world service paces
        // its upstream reads on this gateway draining its downstream, so
        // blocking here on a full upstream would stall both sides).
        let mut pending: Option<world::Upstream> = None;
        loop {
            tokio::select! {
                permit = link_tx.reserve(), if pending.is_some() => {
                    let Ok(permit) = permit else { break };
                    if let Some(m) = pending.take() {
                        permit.send(m);
                    }
                }
                msg = up.recv(), if pending.is_none() => {
                    let Some(job) = msg else { return };
                    let Some(m) = convert::world_message(job) else { continue };
                    match link_tx.try_send(m) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => pending = Some(m),
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                message = down.next() => {
                    match message {
                        Some(Ok(d)) => {
                            if let Some(c) = convert::downstream(d) {
                                done.send(c).await;
                            }
                        }
                        None => { warn!("world link closed by the world service"); break; }
                        Some(Err(status)) => { warn!("world link failed: {}", status.code()); break; }
                    }
                }
            }
        }
        observer.world_link(false);
        done.send(Completion::WorldLink(false)).await;
        if done.tx.is_closed() {
            return;
        }
    }
}

/// A world link's downstream.
type Downstream = Pin<Box<dyn Stream<Item = Result<world::Downstream, tonic::Status>> + Send>>;

/// Opens the world stream reading `upstream`: handed to this process's
/// embedded world directly when it takes it so (`Local::direct_world`: no
/// codec), else the `World.Link` call, in-process or over gRPC, with the
/// gateway's name as `x-gateway` metadata.
async fn open(
    channel: &Transport,
    gateway: Option<&MetadataValue<Ascii>>,
    upstream: mpsc::Receiver<world::Upstream>,
) -> Result<Downstream, tonic::Status> {
    if let Some(world) = channel.direct_world() {
        let down = world?.link(gateway.map(MetadataValue::as_bytes), upstream)?;
        return Ok(Box::pin(ReceiverStream::new(down)));
    }
    let mut client = WorldClient::new(channel.clone());
    let mut stream = tonic::Request::new(ReceiverStream::new(upstream));
    if let Some(name) = gateway {
        stream.metadata_mut().insert(GATEWAY_METADATA, name.clone());
    }
    Ok(Box::pin(client.link(stream).await?.into_inner()))
}

/// While the link is down for `wait`: refuse joins, drop the rest.
/// Returns false when the gateway is shutting down.
async fn refuse_while_down(up: &mut mpsc::Receiver<Job>, done: &Completer, wait: Duration) -> bool {
    let until = tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            msg = up.recv() => match msg {
                None => return false,
                Some(Job { call: Call::WorldJoin { session, .. }, .. }) => {
                    done.send(Completion::Joined { session, ok: false, entity_id: 0 }).await;
                }
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(until) => return !done.tx.is_closed(),
        }
    }
}
