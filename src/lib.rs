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
//! (In full: `docs/architecture.md`; the wire protocol: `docs/protocol.md`.)
//!
//! - **One reactor thread** ([`reactor`]) owns every client socket, the
//!   listener, the connection slab, the buffer pool and the timers. It is a
//!   manually scheduled `mio` loop; one pass (`Reactor::pass`, the steps of
//!   docs/architecture.md §3) is: poll with a timeout equal to the next
//!   deadline → accept with admission and mark ready sockets → RPC
//!   completions, and cleanup a full queue refused → begin a shutdown, end an
//!   accept pause, wake connections waiting for a buffer → read and decode
//!   (bounded per pass) → timers → flush (one direct write, then writable
//!   events) → drain, reap, linger → publish counters (at most every 50 ms),
//!   the limit summary, health and the watchdog. It never blocks and holds
//!   no locks. It reaches the kernel only through [`reactor::net::Net`], so
//!   the seeded simulation runs this very loop over a simulated network.
//! - **Each connection** ([`conn`]) is a socket, pooled buffers ([`buf`]) and
//!   a sans-IO state machine ([`conn::state`]) that turns packets, backend
//!   answers and timer ticks into actions; what it asks of the backends is in
//!   its own types ([`conn::calls`]).
//! - **A small tokio runtime** ([`rpc`]) runs the tonic clients, the world
//!   stream, the embedded backend ([`backend`]) and the metrics endpoint
//!   ([`metrics`]). Jobs go to it through a bounded channel (`try_send`; a
//!   full queue is answered with the protocol's failure code), completions
//!   come back through a channel and a `mio::Waker`, tagged with
//!   [`ids::ConnRef`] so that answers for closed connections are dropped.
//!   [`rpc::convert`] alone maps the connection's calls to the protobuf
//!   contracts.
//! - **The protocol** ([`protocol`]) has no I/O: the `rose` cipher and
//!   `plain` codec (with the seeded tables and trial decoding of the irose
//!   129en client), packet names with one id table per dialect, and typed
//!   packets with paired encode/decode.
//!
//! # Modules
//!
//! | module | what it owns |
//! |---|---|
//! | [`config`] | every setting, one table row each (`table.rs`), expanded by `declare.rs`; rules, parsing, help text, start-up advice, the parts handed on |
//! | [`cidr`] | IP networks as `ADDR/PREFIX`: parsing, containment, text form |
//! | [`logging`] | log lines (text or JSON), their filter, the journal |
//! | [`protocol`] | [`protocol::codec`] (`header`, `tables`, `seeds`, `rose`, `plain`, `trial`), [`protocol::packet_type`], [`protocol::packets`] |
//! | [`buf`] | the fixed buffer pool |
//! | [`client`] | a blocking game client for tools and tests |
//! | [`conn`] | a connection, its output queue, close reasons, PROXY headers, [`conn::calls`], the state machine [`conn::state`] (`phase`, `login`, `char_select`, `world`, `replies`, `bucket`) |
//! | [`listener`] | the client listener: passed by systemd, or bound (with `SO_REUSEPORT` when asked) |
//! | [`reactor`] | the event loop: `admission`, `input`, `actions`, `output`, `timers`, `close`, `limit_log`; the seam [`reactor::net`]; for tests, `reactor::probe` and `reactor::sim` |
//! | [`rpc`] | the bridge to the runtime, tonic clients, the world link, [`rpc::types`], [`rpc::convert`], rate-limited failure warnings |
//! | [`backend`] | the embedded auth, character and world services, their database (`store`: memory, SQLite, PostgreSQL), the account commands, the admin service and `packet-service admin` |
//! | [`metrics`] | Prometheus series (one table), reactor counters, RPC metrics, health, `/metrics` and `/healthz` |
//! | [`systemd`] | readiness and watchdog notifications |
//! | [`server`] | start-up and shutdown of the whole |
//! | [`healthcheck`] | the `healthcheck` subcommand: one GET of `/healthz` |
//! | [`signals`] | SIGINT/SIGTERM stop, SIGHUP asks for a reload |
//! | [`reload`] | what a reload re-reads, checks and applies |
//! | [`ids`] | newtypes for connection, session, user and character ids |
//! | [`civil`] | calendar time from Unix seconds |
//!
//! Every file and its job: the README's "Layout" section and
//! docs/architecture.md §12. `src/conn/LIFECYCLE.md` follows one connection
//! from accept to close.

pub mod backend;
pub mod buf;
pub mod cidr;
pub mod civil;
pub mod client;
pub mod config;
pub mod conn;
pub mod healthcheck;
pub mod ids;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod reactor;
pub mod reload;
pub mod rpc;
pub mod server;
pub mod signals;
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
    /// `rose.admin.v1`
    pub mod admin {
        tonic::include_proto!("rose.admin.v1");
    }
}
