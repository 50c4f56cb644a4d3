//! The idle scenario: open N connections, make one round trip on each
//! (ACCEPT_REQ → ACCEPT_REPLY on the gateway, PING → +PONG on Redis), then
//! hold them and read the server's resident memory: RSS per connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use packet_service::protocol::packet_type::{DialectId, PacketType};
use packet_service::protocol::packets::AcceptReq;
use packet_service::protocol::CodecKind;

use crate::net::{raise_nofile_limit, Net, NetEvent};
use crate::results::RunResult;
use crate::stats::{ProcSample, Progress};
use crate::wire::{redis_simple_replies, Wire, REDIS_PING};

/// What the idle connections talk to.
#[derive(Copy, Clone, Debug)]
pub enum IdleTarget {
    /// The gateway in this codec.
    Gateway(CodecKind),
    /// Redis.
    Redis,
}

/// Options of the idle scenario.
#[derive(Clone, Debug)]
pub struct IdleOpts {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Gateway or Redis.
    pub target: IdleTarget,
    /// N.
    pub connections: usize,
    /// Connects in progress at once (keeps the listen backlog from overflowing).
    pub connect_window: usize,
    /// How long to hold the connections after the last reply (memory is read at the end).
    pub hold: Duration,
    /// The server process (RSS is read from it).
    pub server_pid: Option<u32>,
    /// Time allowed to open everything.
    pub setup_timeout: Duration,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Where one idle connection is.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Slot {
    Connecting,
    Waiting,
    Answered,
    Failed,
}

/// File descriptors kept free for everything else.
const FD_RESERVE: u64 = 64;

/// The soft open-files limit of another process, from /proc/PID/limits.
fn process_nofile(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs the idle scenario.
pub fn run(opts: &IdleOpts) -> Result<RunResult, String> {
    let (short, target) = match opts.target {
        IdleTarget::Gateway(_) => ("gateway", "packet-service"),
        IdleTarget::Redis => ("redis", "redis"),
    };
    let mut result = RunResult::new(&format!("idle-{short}"), "idle", target);
    let mut n = opts.connections;
    let own = raise_nofile_limit();
    if n as u64 + FD_RESERVE > own {
        let lower = own.saturating_sub(FD_RESERVE) as usize;
        result.notes.push(format!(
            "open-files limit of loadgen is {own}: {n} connections lowered to {lower}"
        ));
        n = lower;
    }
    if let Some(limit) = opts.server_pid.and_then(process_nofile) {
        if n as u64 + FD_RESERVE > limit {
            let lower = limit.saturating_sub(FD_RESERVE) as usize;
            result.notes.push(format!(
                "open-files limit of the server is {limit}: {n} connections lowered to {lower}"
            ));
            n = lower;
        }
    }
    result.param("connections_requested", opts.connections);
    result.param("connections", n);
    result.param("hold_s", opts.hold.as_secs_f64());

    let (request, wire) = match opts.target {
        IdleTarget::Gateway(codec) => {
            let wire = Wire::new(codec, DialectId::Osirose);
            result.param("codec", codec.name());
            (
                wire.frame(&AcceptReq).map_err(|e| e.to_string())?,
                Some(wire),
            )
        }
        IdleTarget::Redis => (REDIS_PING.to_vec(), None),
    };

    let before = opts.server_pid.and_then(ProcSample::read);
    let mut net = Net::new(n).map_err(|e| format!("poll: {e}"))?;
    let mut progress = Progress::new(&result.id, opts.progress);
    let mut events = Vec::new();
    let mut scratch = Vec::new();
    let mut started = 0usize;
    let mut connecting = 0usize;
    let mut answered = 0usize;
    let mut failed = 0usize;
    // Per connection (by tag): where it is.
    let mut state = vec![Slot::Connecting; n];
    let start = Instant::now();
    let deadline = start + opts.setup_timeout;
    while answered + failed < n && Instant::now() < deadline {
        while started < n && connecting < opts.connect_window {
            match net.connect(opts.addr, started) {
                Ok(_) => connecting += 1,
                Err(e) => {
                    *result
                        .failures
                        .entry(format!("connect_error: {}", e.kind()))
                        .or_default() += 1;
                    failed += 1;
                }
            }
            started += 1;
        }
        net.flush(&mut events);
        net.poll(Some(Duration::from_millis(10)), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.drain(..) {
            match ev {
                NetEvent::Connected(id) => {
                    if let Some(s) = state.get_mut(net.tag(id)) {
                        *s = Slot::Waiting;
                    }
                    connecting -= 1;
                    net.send(id, &request);
                }
                NetEvent::Input(id) => {
                    let tag = net.tag(id);
                    let got = match wire {
                        Some(w) => match w.next_packet(net.input(id), &mut scratch) {
                            Ok(Some(f)) => {
                                net.consume(id, f.wire_len);
                                f.ptype == Some(PacketType::PAKSS_ACCEPT_REPLY)
                            }
                            Ok(None) => continue,
                            Err(_) => false,
                        },
                        None => match redis_simple_replies(net.input(id)) {
                            Ok((0, _)) => continue,
                            Ok((_, used)) => {
                                net.consume(id, used);
                                true
                            }
                            Err(_) => false,
                        },
                    };
                    if state.get(tag) == Some(&Slot::Waiting) {
                        if got {
                            state[tag] = Slot::Answered;
                            answered += 1;
                        } else {
                            *result.failures.entry("bad_reply".into()).or_default() += 1;
                            state[tag] = Slot::Failed;
                            failed += 1;
                            net.close(id);
                        }
                    }
                }
                NetEvent::Closed(id, cause) => {
                    let tag = net.tag(id);
                    match state.get(tag) {
                        Some(Slot::Connecting) => connecting -= 1,
                        Some(Slot::Answered) => answered -= 1,
                        _ => {}
                    }
                    if let Some(s) = state.get_mut(tag) {
                        if *s != Slot::Failed {
                            *s = Slot::Failed;
                            failed += 1;
                        }
                    }
                    *result.failures.entry(cause.label().to_owned()).or_default() += 1;
                }
            }
        }
        progress.tick(Instant::now(), || {
            format!("{answered}/{n} answered, {connecting} connecting, {failed} failed")
        });
    }
    let setup = start.elapsed();
    // Hold: keep polling so that closes by the server are noticed.
    let hold_until = Instant::now() + opts.hold;
    while Instant::now() < hold_until {
        net.poll(Some(Duration::from_millis(50)), &mut events)
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.drain(..) {
            if let NetEvent::Closed(_, cause) = ev {
                answered = answered.saturating_sub(1);
                *result
                    .failures
                    .entry(format!("{}_while_idle", cause.label()))
                    .or_default() += 1;
            }
        }
        progress.tick(Instant::now(), || {
            format!("holding {} connections", net.len())
        });
    }
    let after = opts.server_pid.and_then(ProcSample::read);
    progress.finish();
    let held = net.len();
    for id in net.ids() {
        net.close(id);
    }
    let _ = net.poll(Some(Duration::from_millis(1)), &mut events);

    result.figure("connections_held", held as f64);
    result.figure("answered", answered as f64);
    result.figure("setup_s", setup.as_secs_f64());
    result.figure("connects_per_sec", answered as f64 / setup.as_secs_f64());
    if let (Some(b), Some(a)) = (before, after) {
        let delta_kib = a.since(&b).1;
        result.figure("server_rss_before_kib", b.rss_kib as f64);
        result.figure("server_rss_after_kib", a.rss_kib as f64);
        result.figure(
            "rss_bytes_per_conn",
            delta_kib as f64 * 1024.0 / held.max(1) as f64,
        );
    } else {
        result
            .notes
            .push("no --server-pid (or /proc unreadable): memory not measured".into());
    }
    if answered + failed < n {
        result.notes.push(format!(
            "setup timed out after {:.1}s with {} of {n} answered",
            setup.as_secs_f64(),
            answered
        ));
    }
    Ok(result)
}
