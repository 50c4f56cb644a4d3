//! Admission: accepting connections, the limits checked before anything is
//! allocated for them (shutdown, max connections, per-IP counts) and the
//! PROXY protocol header from trusted balancers.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use log::{debug, trace, warn};
use mio::Token;

use super::input::hex_prefix;
use super::net::{Listener as _, Net, Stream as _};
use super::probe::Probe;
use super::{Env, Reactor, ACCEPT_BACKOFF, FIRST_CONN};
use crate::conn::proxy::ProxyHeader;
use crate::conn::reason::{CloseReason, ProtocolError, RejectReason};
use crate::conn::state::Session;
use crate::conn::{Conn, Prefix};
use crate::ids::ConnRef;

impl<N: Net, P: Probe> Reactor<N, P> {
    /// Accepts until `WouldBlock` (or a pause after running out of
    /// descriptors).
    pub(super) fn accept(&mut self, now: Instant) {
        if self.env.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE / ENFILE / ENOBUFS: the backlog keeps the
                    // connection; try again shortly instead of spinning.
                    // The first failure of an interval is logged, the rest
                    // are counted in the limit summary.
                    if self.env.limits.accept_errors == 0 {
                        warn!("accept failed: {e}; pausing accept for {ACCEPT_BACKOFF:?}");
                    } else {
                        debug!("accept failed: {e}; pausing accept for {ACCEPT_BACKOFF:?}");
                    }
                    self.env.limits.accept_errors += 1;
                    self.env.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// Admission before allocation: a refused socket is dropped at once.
    fn admit(&mut self, mut socket: N::Stream, peer: SocketAddr, now: Instant) {
        let env = &mut self.env;
        let proxied = env.cfg.proxy_protocol;
        let reject = if env.draining.is_some() {
            Some(RejectReason::ShuttingDown)
        } else if self.conns.len() >= env.cfg.max_connections {
            Some(RejectReason::MaxConnections)
        } else if proxied
            && !env
                .cfg
                .proxy_trusted
                .iter()
                .any(|net| crate::cidr::contains(net, peer.ip()))
        {
            Some(RejectReason::ProxyProtocol)
        } else if !proxied && env.over_ip_limit(peer.ip()) {
            // Behind a balancer the limit applies to the real client, once
            // its PROXY header is read.
            Some(RejectReason::PerIpLimit)
        } else {
            None
        };
        if let Some(reason) = reject {
            env.reject(reason);
            debug!("[{peer}] rejected: {}", reason.as_str());
            return; // dropping the socket closes it
        }
        let entry = self.conns.vacant_entry();
        let idx = entry.key();
        let Ok(index) = u32::try_from(idx) else {
            env.reject(RejectReason::MaxConnections);
            return;
        };
        if let Err(e) = self.net.register(&mut socket, Token(idx + FIRST_CONN)) {
            warn!("[{peer}] register failed: {e}");
            env.reject(RejectReason::RegisterFailed);
            return;
        }
        let _ = socket.set_nodelay();
        env.next_generation = env.next_generation.wrapping_add(1);
        let conn_ref = ConnRef {
            index,
            generation: env.next_generation,
        };
        let mut session = Session::new(peer, now, env.cfg.packet_burst);
        let wire = env.first.fixed();
        if let Some(wire) = wire {
            // One dialect for every connection: known from the start.
            session.set_dialect(wire.dialect);
            env.counters.dialect(wire.dialect);
        }
        let conn = entry.insert(Conn::new(socket, conn_ref, session, now));
        conn.wire = wire;
        conn.awaiting_proxy = proxied;
        if !proxied {
            env.count_ip(conn, peer.ip());
        }
        env.counters.accepted += 1;
        env.schedule(idx, conn);
        trace!("{} accepted", Prefix(conn));
    }

    /// Accepts again once the pause after running out of descriptors ends.
    pub(super) fn resume_accept(&mut self, now: Instant) {
        if let Some(until) = self.env.accept_paused_until {
            if now >= until {
                self.env.accept_paused_until = None;
                self.accept(now);
            }
        }
    }
}

impl<P: Probe> Env<P> {
    /// Counts a refused connection where every refusal is counted: its
    /// metric and the minute summary (`limit_log.rs`).
    fn reject(&mut self, reason: RejectReason) {
        self.counters.reject(reason.index());
        self.limits.rejected[reason.index()] += 1;
    }

    /// The client's key (its address, an IPv6 address by its /64) holds
    /// its share of connections already.
    fn over_ip_limit(&self, ip: IpAddr) -> bool {
        let key = crate::cidr::client_key(ip);
        self.cfg.max_connections_per_ip > 0
            && self.per_ip.get(&key).copied().unwrap_or(0) as usize
                >= self.cfg.max_connections_per_ip
    }

    fn count_ip<S>(&mut self, conn: &mut Conn<S>, ip: IpAddr) {
        let key = crate::cidr::client_key(ip);
        *self.per_ip.entry(key).or_insert(0) += 1;
        conn.counted_ip = Some(key);
    }

    /// Reads the PROXY header at the start of the input. Returns false if
    /// the connection cannot go on (yet).
    pub(super) fn proxy_header<S>(&mut self, idx: usize, conn: &mut Conn<S>, now: Instant) -> bool {
        let Some(buf) = conn.input.as_mut() else {
            return false;
        };
        match crate::conn::proxy::parse(buf.filled()) {
            ProxyHeader::Incomplete => {
                // The header is bound by the frame timeout too.
                self.frame_started(idx, conn, now);
                false
            }
            ProxyHeader::Invalid => {
                if log::log_enabled!(log::Level::Debug) {
                    let dump = hex_prefix(buf.filled());
                    debug!("{} no valid PROXY header: {dump}", Prefix(conn));
                }
                self.counters
                    .protocol_error(ProtocolError::BadProxyHeader.index());
                self.close(
                    idx,
                    conn,
                    CloseReason::Protocol(ProtocolError::BadProxyHeader),
                );
                false
            }
            ProxyHeader::Parsed { len, source } => {
                buf.consume(len);
                conn.awaiting_proxy = false;
                conn.partial_since = None;
                let real = source.unwrap_or(conn.session.peer());
                conn.session.set_peer(real);
                if self.over_ip_limit(real.ip()) {
                    self.reject(RejectReason::PerIpLimit);
                    self.close(idx, conn, CloseReason::PerIpLimit);
                    return false;
                }
                self.count_ip(conn, real.ip());
                trace!("{} PROXY header: client {real}", Prefix(conn));
                true
            }
        }
    }

    /// Gives back the connection's place in the per-IP table.
    pub(super) fn uncount_ip<S>(&mut self, conn: &Conn<S>) {
        if let Some(ip) = conn.counted_ip {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use mio::Token;

    use crate::conn::reason::RejectReason;
    use crate::conn::state::UtcTime;
    use crate::metrics::{Health, Metrics, ReactorCounters};
    use crate::reactor::net::{Clock, EventList, Net};
    use crate::reactor::probe::NoProbe;
    use crate::reactor::sim::{self, Faults, Network, SimEvents, SimListener, SimNet, SimStream};
    use crate::reactor::{Parts, Reactor, ReactorConfig};
    use crate::rpc::{Bridge, RuntimeEnds};

    /// The simulated net, with registrations that fail while `refuse` is
    /// above 0 (as epoll_ctl does when the kernel is out of memory).
    struct Refusing {
        sim: SimNet,
        refuse: Cell<u32>,
    }

    impl Clock for Refusing {
        fn now(&self) -> Instant {
            self.sim.now()
        }
        fn utc(&self) -> UtcTime {
            self.sim.utc()
        }
    }

    impl Net for Refusing {
        type Stream = SimStream;
        type Listener = SimListener;
        type Events = SimEvents;
        fn poll(&mut self, events: &mut SimEvents, timeout: Option<Duration>) -> io::Result<()> {
            self.sim.poll(events, timeout)
        }
        fn register_listener(&self, listener: &mut SimListener, token: Token) -> io::Result<()> {
            self.sim.register_listener(listener, token)
        }
        fn deregister_listener(&self, listener: &mut SimListener) -> io::Result<()> {
            self.sim.deregister_listener(listener)
        }
        fn register(&self, stream: &mut SimStream, token: Token) -> io::Result<()> {
            match self.refuse.get() {
                0 => self.sim.register(stream, token),
                n => {
                    self.refuse.set(n - 1);
                    Err(io::Error::from(io::ErrorKind::OutOfMemory))
                }
            }
        }
        fn deregister(&self, stream: &mut SimStream) -> io::Result<()> {
            self.sim.deregister(stream)
        }
    }

    /// A reactor over [`Refusing`] with room for `max_connections`.
    fn reactor(max_connections: usize) -> (Reactor<Refusing, NoProbe>, Network, RuntimeEnds) {
        let (sim, listener, network) = sim::network(7, Faults::default());
        let net = Refusing {
            sim,
            refuse: Cell::new(0),
        };
        let cfg = ReactorConfig {
            max_connections,
            ..ReactorConfig::defaults().clone()
        };
        let metrics = Metrics::new().expect("metrics");
        let counters = ReactorCounters::for_reasons(&metrics);
        let (bridge, ends) = Bridge::with_capacity(8, 8, 64);
        let parts = Parts {
            cfg,
            pool: (16, 2048),
            bridge,
            counters,
            shutdown: Arc::new(AtomicBool::new(false)),
            health: Arc::new(Health::new(Duration::from_secs(10))),
        };
        let reactor = Reactor::with_net(net, listener, parts, NoProbe).expect("reactor");
        (reactor, network, ends)
    }

    /// Connections refused at the limit and refused because their socket
    /// could not be registered: both in the summary, not only the metric.
    #[test]
    fn every_refusal_shows_in_the_minute_summary() {
        let (mut reactor, network, _ends) = reactor(1);
        let mut events = SimEvents::with_capacity(64);
        let peer = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let first = network.connect(peer(1000)).expect("backlog");
        reactor.pass(&mut events).expect("pass");
        assert_eq!(network.far(first), sim::Far::Open);
        network.connect(peer(1001)).expect("backlog");
        reactor.pass(&mut events).expect("pass");
        let full = RejectReason::MaxConnections.index();
        assert_eq!(reactor.env.limits.rejected[full], 1, "over the limit");
        assert_eq!(reactor.env.limits.line(), " refused:max_connections=1");

        let (mut reactor, network, _ends) = reactor_refusing_one();
        let refused = network.connect(peer(1002)).expect("backlog");
        reactor.pass(&mut events).expect("pass");
        assert_ne!(
            network.far(refused),
            sim::Far::Open,
            "the socket is dropped"
        );
        let failed = RejectReason::RegisterFailed.index();
        assert_eq!(reactor.env.limits.rejected[failed], 1, "register failed");
        assert_eq!(reactor.env.limits.rejected[full], 0, "not the limit");
        assert_eq!(reactor.env.limits.line(), " refused:register_failed=1");
        let next = network.connect(peer(1003)).expect("backlog");
        reactor.pass(&mut events).expect("pass");
        assert_eq!(network.far(next), sim::Far::Open, "the next one is served");
        assert_eq!(reactor.env.limits.rejected[failed], 1);
    }

    /// A reactor with room to spare whose next registration fails.
    fn reactor_refusing_one() -> (Reactor<Refusing, NoProbe>, Network, RuntimeEnds) {
        let (reactor, network, ends) = reactor(16);
        reactor.net.refuse.set(1);
        (reactor, network, ends)
    }
}
