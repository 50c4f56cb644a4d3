//! packet-service: the client-facing gateway of a ROSE Online (osIROSE)
//! server stack.
//!
//! Game clients connect over TCP and speak the ROSE binary protocol; the
//! gateway frames, decrypts and validates their packets, keeps each
//! connection's state, answers what it can itself and asks the auth,
//! character and world services over gRPC for the rest.
//!
//! # Architecture in brief
//!
//! - **One reactor thread** ([`reactor`]) owns every client socket, the
//!   listener, the connection slab, the buffer pool and the timers. It is a
//!   manually scheduled `mio` loop: poll → accept with admission → read and
//!   decode (bounded per pass) → RPC completions → flush (one direct write,
//!   then writable events) → timers → reap → publish counters. It never
//!   blocks and holds no locks.
//! - **Each connection** ([`conn`]) is a socket, pooled buffers ([`buf`]) and
//!   a sans-IO state machine ([`conn::state`]) that turns packets, backend
//!   answers and timer ticks into actions.
//! - **A small tokio runtime** ([`rpc`]) runs the tonic clients, the world
//!   stream, the embedded backend ([`backend`]) and the metrics endpoint
//!   ([`metrics`]). Jobs go to it through a bounded channel (`try_send`; a
//!   full queue is answered with the protocol's failure code), completions
//!   come back through a channel and a `mio::Waker`, tagged with
//!   [`ids::ConnRef`] so that answers for closed connections are dropped.
//! - **The protocol** ([`protocol`]) has no I/O: the `rose` cipher and
//!   `plain` codec, packet names with one id table per dialect, and typed
//!   packets with paired encode/decode.
//!
//! # Modules
//!
//! | module | what it owns |
//! |---|---|
//! | [`config`] | every setting, one table row each: flag, variable, default, range, help |
//! | [`logging`] | log output |
//! | [`protocol`] | codecs, packet ids, typed packets |
//! | [`buf`] | the fixed buffer pool |
//! | [`cidr`] | IP networks as `ADDR/PREFIX`: parsing, containment, text form |
//! | [`client`] | a blocking game client for tools and tests |
//! | [`conn`] | a connection, its output queue, close reasons, the state machine |
//! | [`listener`] | the client listener: passed by systemd, or bound (with `SO_REUSEPORT` when asked) |
//! | [`reactor`] | the event loop and its timers |
//! | [`rpc`] | the bridge to the runtime, tonic clients, the world link |
//! | [`backend`] | the embedded auth, character and world services |
//! | [`metrics`] | Prometheus series, `/metrics` and `/healthz` |
//! | [`systemd`] | readiness and watchdog notifications |
//! | [`server`] | start-up and shutdown of the whole |
//! | [`ids`] | newtypes for connection, session, user and character ids |
//! | [`civil`] | calendar time from Unix seconds |
//!
//! `src/conn/LIFECYCLE.md` follows one connection from accept to close.

pub mod backend;
pub mod buf;
pub mod cidr;
pub mod civil;
pub mod client;
pub mod config;
pub mod conn;
pub mod ids;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod reactor;
pub mod rpc;
pub mod server;
pub mod systemd;

/// Generated backend contracts (`proto/`, see `proto/README.md`).
pub mod pb {
    /// `rose.auth.v1`
    pub mod auth {
        tonic::include_proto!("rose.auth.v1");
    }
    /// `rose.character.v1`
    pub mod character {
        tonic::include_proto!("rose.character.v1");
    }
    /// `rose.world.v1`
    pub mod world {
        tonic::include_proto!("rose.world.v1");
    }
}
