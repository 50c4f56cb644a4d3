//! The fanout scenario: M bots go all the way to the map (same map), then K
//! of them chat (open loop: sends follow the clock, not the replies), the
//! offered deliveries per second stepped up until the gateway stops keeping
//! up ([`crate::saturate`]; Redis pub/sub is measured by the same driver in
//! [`crate::pubsub`]). Every message carries its send time, so each
//! delivery to each bot on the map, the speaker included, yields one latency
//! sample.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

use crate::bots::{run_prefix, BotOpts, Bots, Goal};
use crate::net::{Net, NetEvent};
use crate::results::RunResult;
use crate::saturate::{self, Fleet, SatOpts};
use crate::stats::{Latency, Progress};

/// Options of the fanout scenario.
#[derive(Clone, Debug)]
pub struct FanoutOpts {
    /// The gateway.
    pub addr: SocketAddr,
    /// Its codec.
    pub codec: CodecKind,
    /// Its packet ids.
    pub dialect: DialectId,
    /// M: bots on the map.
    pub bots: usize,
    /// Bots joining at once during setup.
    pub concurrency: usize,
    /// K: bots that chat.
    pub chatters: usize,
    /// How the offered rate is stepped (and the server process).
    pub sat: SatOpts,
    /// Time allowed for all bots to reach the map.
    pub setup_timeout: Duration,
}

/// Runs the fanout scenario.
pub fn run(opts: &FanoutOpts) -> Result<RunResult, String> {
    let mut result = RunResult::new("fanout", "fanout", "packet-service");
    result.param("bots", opts.bots);
    result.param("chatters", opts.chatters);
    result.param("codec", opts.codec.name());
    let mut net = Net::new(opts.bots * 3).map_err(|e| format!("poll: {e}"))?;
    let mut bots = Bots::new(BotOpts {
        addr: opts.addr,
        codec: opts.codec,
        dialect: opts.dialect,
        goal: Goal::Map,
        prefix: run_prefix('f'),
        flow_timeout: opts.setup_timeout,
    });
    let mut events = Vec::new();
    let mut pump = |net: &mut Net, bots: &mut Bots, timeout: Duration| -> Result<(), String> {
        net.flush(&mut events);
        net.poll(Some(timeout), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.drain(..) {
            bots.on_event(net, ev, Instant::now());
        }
        net.flush(&mut events);
        for ev in events.drain(..) {
            bots.on_event(net, ev, Instant::now());
        }
        Ok(())
    };

    // Setup: everyone to the map.
    let mut progress = Progress::new("fanout", opts.sat.progress);
    let setup_start = Instant::now();
    let setup_deadline = setup_start + opts.setup_timeout + Duration::from_secs(1);
    let mut next_check = setup_start;
    loop {
        let now = Instant::now();
        while (bots.started() as usize) < opts.bots
            && (bots.in_flight() as usize) < opts.concurrency
        {
            bots.spawn(&mut net, now);
        }
        if bots.started() as usize >= opts.bots && bots.in_flight() == 0 {
            break;
        }
        if now >= setup_deadline {
            bots.check_timeouts(&mut net, now + opts.setup_timeout);
            break;
        }
        if now >= next_check {
            bots.check_timeouts(&mut net, now);
            next_check = now + Duration::from_millis(100);
        }
        pump(&mut net, &mut bots, Duration::from_millis(10))?;
        progress.tick(Instant::now(), || {
            format!(
                "setup: {} on the map, {} joining, {} failed",
                bots.completed,
                bots.in_flight(),
                bots.failed
            )
        });
    }
    let setup = setup_start.elapsed();
    let in_map = bots.in_map();
    result.figure("setup_s", setup.as_secs_f64());
    result.figure("bots_on_map", in_map.len() as f64);
    result.latency.insert("join".into(), bots.flow.summary());
    if in_map.is_empty() {
        result.failures = bots.failures.clone();
        bots.close_all(&mut net);
        return Err(format!(
            "no bot reached the map (failures: {:?})",
            result.failures
        ));
    }

    // Chat: K speakers, the offered rate stepped up to saturation.
    let speakers: Vec<usize> = in_map.iter().copied().take(opts.chatters).collect();
    bots.set_recording(true);
    let mut fleet = MapFleet {
        net: &mut net,
        bots: &mut bots,
        speakers,
        events: Vec::new(),
    };
    saturate::run(&mut fleet, &opts.sat, &mut result)?;
    result.figure("bots_on_map_at_end", bots.in_map().len() as f64);
    result.figure("deliveries_received", bots.delivered_total as f64);
    bots.set_recording(false);
    result.failures = bots.failures.clone();
    bots.close_all(&mut net);
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);
    Ok(result)
}

/// The gateway side of [`Fleet`]: the speakers chat, every bot on the map
/// receives.
struct MapFleet<'a> {
    net: &'a mut Net,
    bots: &'a mut Bots,
    speakers: Vec<usize>,
    events: Vec<NetEvent>,
}

impl Fleet for MapFleet<'_> {
    fn subscribers(&self) -> usize {
        self.bots.in_map().len()
    }
    fn publishers(&self) -> usize {
        self.speakers.len()
    }
    fn publish(&mut self, i: usize, now: Instant) -> bool {
        match self.speakers.get(i) {
            Some(&b) => self.bots.chat(self.net, b, now),
            None => false,
        }
    }
    fn pump(&mut self, timeout: Duration) -> Result<(), String> {
        self.net.flush(&mut self.events);
        self.net
            .poll(Some(timeout), &mut self.events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in self.events.drain(..) {
            self.bots.on_event(self.net, ev, Instant::now());
        }
        self.net.flush(&mut self.events);
        for ev in self.events.drain(..) {
            self.bots.on_event(self.net, ev, Instant::now());
        }
        Ok(())
    }
    fn delivered(&self) -> u64 {
        self.bots.delivered
    }
    fn take_latency(&mut self) -> Latency {
        std::mem::take(&mut self.bots.delivery)
    }
}
