//! The fan-out baseline: Redis pub/sub with M SUBSCRIBE clients on one
//! channel and K PUBLISH clients (RESP by hand), stepped to saturation by
//! [`crate::saturate`] exactly like the gateway's bots on one map. Each
//! message carries its send time, the same text a bot's chat line carries.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::net::{Net, NetEvent};
use crate::results::RunResult;
use crate::saturate::{self, Fleet, SatOpts};
use crate::stats::{Latency, Progress};

/// The channel every client uses.
const CHANNEL: &str = "lg";

/// Options of the pubsub scenario.
#[derive(Clone, Debug)]
pub struct PubsubOpts {
    /// redis-server.
    pub addr: SocketAddr,
    /// M: subscribers.
    pub subscribers: usize,
    /// K: publishers.
    pub publishers: usize,
    /// Time allowed to connect and subscribe.
    pub setup_timeout: Duration,
    /// The steps.
    pub sat: SatOpts,
}

/// A complete reply: bytes used and the payload of a "message" push.
pub type Push<'a> = (usize, Option<&'a [u8]>);

/// One message of a subscriber's input: `Some((bytes used, payload of a
/// "message" push))`, `Some((bytes used, None))` for any other complete
/// reply, `None` if incomplete. `Err` for input that is not RESP.
pub fn next_push(buf: &[u8]) -> Result<Option<Push<'_>>, String> {
    let Some((line, mut at)) = resp_line(buf, 0) else {
        return Ok(None);
    };
    match line.first() {
        Some(b'*') => {
            let n: usize = parse_num(&line[1..])?;
            let mut parts: [&[u8]; 3] = [&[]; 3];
            for i in 0..n {
                // Only the first three elements matter; the rest are skipped.
                let Some((head, next)) = resp_line(buf, at) else {
                    return Ok(None);
                };
                at = next;
                let part: &[u8] = match head.first() {
                    Some(b'$') => {
                        let len: usize = parse_num(&head[1..])?;
                        if buf.len() < at + len + 2 {
                            return Ok(None);
                        }
                        let p = &buf[at..at + len];
                        at += len + 2;
                        p
                    }
                    Some(b':') => &head[1..],
                    _ => return Err(format!("unexpected RESP element {head:?}")),
                };
                if let Some(slot) = parts.get_mut(i) {
                    *slot = part;
                }
            }
            let push = (n == 3 && parts[0] == b"message").then_some(parts[2]);
            Ok(Some((at, push)))
        }
        Some(b'+' | b':') => Ok(Some((at, None))),
        _ => Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(line)
        )),
    }
}

/// The line at `from` without its CRLF, and where the next one starts.
fn resp_line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], from + end + 2))
}

fn parse_num(text: &[u8]) -> Result<usize, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("bad RESP length {text:?}"))
}

/// `PUBLISH lg <text>` as a RESP array.
pub fn publish_cmd(text: &str) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{CHANNEL}\r\n${}\r\n{text}\r\n",
        CHANNEL.len(),
        text.len()
    )
    .into_bytes()
}

/// The Redis side of [`Fleet`].
struct RedisFleet {
    net: Net,
    events: Vec<NetEvent>,
    /// Subscriber connections, by tag; whether their SUBSCRIBE was confirmed.
    subscribed: Vec<bool>,
    open_subs: usize,
    publishers: Vec<usize>,
    delivered: u64,
    latency: Latency,
    epoch: Instant,
    errors: u64,
}

/// Tags: subscribers are `0..M`, publishers `PUB | i`.
const PUB: usize = 1 << 40;

impl RedisFleet {
    fn on_events(&mut self) {
        let now = Instant::now();
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            match *ev {
                NetEvent::Connected(id) => {
                    if self.net.tag(id) & PUB == 0 {
                        let cmd = format!("*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\n{CHANNEL}\r\n");
                        self.net.send(id, cmd.as_bytes());
                    }
                }
                NetEvent::Input(id) => self.on_input(id, now),
                NetEvent::Closed(id, _) => {
                    let tag = self.net.tag(id);
                    if tag & PUB == 0 && self.subscribed.get(tag).copied() == Some(true) {
                        self.subscribed[tag] = false;
                        self.open_subs -= 1;
                    }
                }
            }
        }
        self.events = events;
        self.events.clear();
    }

    fn on_input(&mut self, id: usize, now: Instant) {
        let tag = self.net.tag(id);
        loop {
            let step = match next_push(self.net.input(id)) {
                Ok(Some((used, push))) => {
                    let sent = push
                        .and_then(|p| std::str::from_utf8(p).ok())
                        .and_then(|t| t.strip_prefix("lg "))
                        .and_then(|t| t.parse::<u64>().ok());
                    (used, sent)
                }
                Ok(None) => break,
                Err(_) => {
                    self.errors += 1;
                    self.net.close(id);
                    return;
                }
            };
            self.net.consume(id, step.0);
            if tag & PUB != 0 {
                continue;
            }
            if let Some(sent) = step.1 {
                self.delivered += 1;
                let at = self.epoch + Duration::from_nanos(sent);
                self.latency.record(now.saturating_duration_since(at));
            } else if !self.subscribed[tag] {
                self.subscribed[tag] = true;
                self.open_subs += 1;
            }
        }
    }
}

impl Fleet for RedisFleet {
    fn subscribers(&self) -> usize {
        self.open_subs
    }
    fn publishers(&self) -> usize {
        self.publishers.len()
    }
    fn publish(&mut self, i: usize, now: Instant) -> bool {
        let Some(&id) = self.publishers.get(i) else {
            return false;
        };
        if !self.net.is_live(id) {
            return false;
        }
        let nanos = now.duration_since(self.epoch).as_nanos();
        self.net.send(id, &publish_cmd(&format!("lg {nanos}")));
        true
    }
    fn pump(&mut self, timeout: Duration) -> Result<(), String> {
        self.net.flush(&mut self.events);
        self.on_events();
        self.net
            .poll(Some(timeout), &mut self.events)
            .map_err(|e| format!("poll: {e}"))?;
        self.on_events();
        self.net.flush(&mut self.events);
        self.on_events();
        Ok(())
    }
    fn delivered(&self) -> u64 {
        self.delivered
    }
    fn take_latency(&mut self) -> Latency {
        std::mem::take(&mut self.latency)
    }
}

/// Runs the pubsub scenario.
pub fn run(opts: &PubsubOpts) -> Result<RunResult, String> {
    let mut result = RunResult::new("fanout-redis", "pubsub", "redis");
    result.param("subscribers", opts.subscribers);
    result.param("publishers", opts.publishers);
    let mut fleet = RedisFleet {
        net: Net::new(opts.subscribers + opts.publishers).map_err(|e| format!("poll: {e}"))?,
        events: Vec::new(),
        subscribed: vec![false; opts.subscribers],
        open_subs: 0,
        publishers: Vec::new(),
        delivered: 0,
        latency: Latency::new(),
        epoch: Instant::now(),
        errors: 0,
    };
    let mut progress = Progress::new("pubsub", opts.sat.progress);
    let start = Instant::now();
    for i in 0..opts.subscribers {
        fleet
            .net
            .connect(opts.addr, i)
            .map_err(|e| format!("connect: {e}"))?;
    }
    for i in 0..opts.publishers {
        let id = fleet
            .net
            .connect(opts.addr, PUB | i)
            .map_err(|e| format!("connect: {e}"))?;
        fleet.publishers.push(id);
    }
    while fleet.open_subs < opts.subscribers {
        if start.elapsed() > opts.setup_timeout {
            return Err(format!(
                "{} of {} subscribers confirmed within {:?}",
                fleet.open_subs, opts.subscribers, opts.setup_timeout
            ));
        }
        fleet.pump(Duration::from_millis(10))?;
        progress.tick(Instant::now(), || {
            format!("setup: {} subscribed", fleet.open_subs)
        });
    }
    progress.finish();
    result.figure("setup_s", start.elapsed().as_secs_f64());
    result.figure("subscribers", fleet.open_subs as f64);
    saturate::run(&mut fleet, &opts.sat, &mut result)?;
    result.figure("deliveries_received", fleet.delivered as f64);
    if fleet.errors > 0 {
        result.failures.insert("bad_reply".into(), fleet.errors);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_parsed_whole_or_not_at_all() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nlg\r\n$4\r\nlg 7\r\n";
        assert_eq!(next_push(msg), Ok(Some((msg.len(), Some(&b"lg 7"[..])))));
        for cut in 0..msg.len() {
            assert_eq!(next_push(&msg[..cut]), Ok(None), "cut at {cut}");
        }
        let sub = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nlg\r\n:1\r\n";
        assert_eq!(next_push(sub), Ok(Some((sub.len(), None))));
        assert_eq!(next_push(b":1000\r\n"), Ok(Some((7, None))));
        assert!(next_push(b"-ERR no\r\n").is_err());
    }

    #[test]
    fn publish_is_a_resp_array() {
        assert_eq!(
            publish_cmd("lg 5"),
            b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nlg\r\n$4\r\nlg 5\r\n".to_vec()
        );
    }
}
