//! One test gateway's World link: a bidirectional stream to a backend's
//! World service, with typed sends and deadline-bound receives.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;

use packet_service::pb::world::{self as world, downstream, upstream, world_client::WorldClient};
use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::{packet_to_vec, Packet};

use super::DEADLINE;

/// One gateway's World link.
pub struct Link {
    pub up: mpsc::Sender<world::Upstream>,
    pub down: Streaming<world::Downstream>,
}

impl Link {
    pub async fn open(ch: &Channel) -> Link {
        let (up, rx) = mpsc::channel(64);
        let down = WorldClient::new(ch.clone())
            .link(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Link { up, down }
    }

    pub async fn send(&self, kind: upstream::Kind) {
        self.up
            .send(world::Upstream { kind: Some(kind) })
            .await
            .unwrap();
    }

    pub async fn packet<P: Packet>(&self, session_id: u32, p: &P) {
        let dialect = DialectId::Osirose.dialect();
        let bytes = packet_to_vec(dialect, p).unwrap();
        self.raw(session_id, P::TYPE, bytes[6..].to_vec()).await;
    }

    pub async fn raw(&self, session_id: u32, t: PacketType, payload: Vec<u8>) {
        let r#type = DialectId::Osirose.dialect().wire_id(t).unwrap().into();
        self.send(upstream::Kind::Packet(world::Packet {
            session_id,
            r#type,
            payload,
        }))
        .await;
    }

    pub async fn next(&mut self) -> downstream::Kind {
        let msg = tokio::time::timeout(DEADLINE, self.down.message())
            .await
            .expect("no downstream message before the deadline")
            .expect("link failed")
            .expect("link closed");
        msg.kind.expect("empty downstream message")
    }
}
