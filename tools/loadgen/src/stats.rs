//! Measurements: latency histograms (hdrhistogram, nanoseconds), a server
//! process's CPU time and resident memory from `/proc`, and the progress
//! line on stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded (larger values are clamped): one minute.
const MAX_NANOS: u64 = 60_000_000_000;

/// Percentiles kept in the results for the latency curve (and the SVG).
const CURVE: &[f64] = &[
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

/// A latency histogram in nanoseconds, three significant digits.
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // Bounds are constants that hdrhistogram accepts (low ≥ 1, high ≥ 2·low).
        let hist = match Histogram::new_with_bounds(1, MAX_NANOS, 3) {
            Ok(h) => h,
            Err(e) => unreachable!("constant histogram bounds rejected: {e}"),
        };
        Latency { hist }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos())
            .unwrap_or(MAX_NANOS)
            .clamp(1, MAX_NANOS);
        self.hist.saturating_record(ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, other: &Latency) {
        let _ = self.hist.add(&other.hist);
    }

    /// The value at a percentile, in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        self.hist.value_at_percentile(p) as f64 / 1000.0
    }

    /// Percentiles and the curve for the results file.
    pub fn summary(&self) -> LatencySummary {
        let us = |p: f64| round2(self.percentile_us(p));
        LatencySummary {
            count: self.hist.len(),
            min_us: round2(self.hist.min() as f64 / 1000.0),
            mean_us: round2(self.hist.mean() / 1000.0),
            p50_us: us(50.0),
            p90_us: us(90.0),
            p99_us: us(99.0),
            p999_us: us(99.9),
            max_us: round2(self.hist.max() as f64 / 1000.0),
            curve: CURVE.iter().map(|&p| [p, us(p)]).collect(),
        }
    }
}

/// Latency percentiles as written to the results file (microseconds).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// `[percentile, microseconds]` pairs.
    pub curve: Vec<[f64; 2]>,
}

/// Rounds to two decimals (keeps the JSON readable).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A process's CPU time and memory at one instant, from `/proc/PID/stat`
/// (utime + stime, all threads, including exited ones) and
/// `/proc/PID/status` (VmRSS).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ProcSample {
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl ProcSample {
    /// Reads the sample; `None` if the process is gone or `/proc` is not
    /// readable.
    pub fn read(pid: u32) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(ProcSample {
            cpu_secs: parse_cpu_ticks(&stat)? as f64 / clock_ticks_per_sec(),
            rss_kib: parse_vm_rss_kib(&status)?,
        })
    }

    /// The sum over several processes (gateways sharing a port); `None`
    /// when there are none or one of them cannot be read.
    pub fn read_all(pids: &[u32]) -> Option<ProcSample> {
        let mut sum: Option<ProcSample> = None;
        for &pid in pids {
            let one = ProcSample::read(pid)?;
            let total = sum.get_or_insert(ProcSample {
                cpu_secs: 0.0,
                rss_kib: 0,
            });
            total.cpu_secs += one.cpu_secs;
            total.rss_kib += one.rss_kib;
        }
        sum
    }

    /// Differences `self − before`: (CPU seconds, RSS KiB, signed).
    pub fn since(&self, before: &ProcSample) -> (f64, i64) {
        (
            self.cpu_secs - before.cpu_secs,
            self.rss_kib as i64 - before.rss_kib as i64,
        )
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command
/// name (field 2) may contain spaces and parentheses: fields are counted
/// after its last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmRSS:` line of `/proc/PID/status`, in KiB.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Scheduler statistics of one thread, from `/proc/PID/task/TID/schedstat`
/// (or `/proc/PID/schedstat` for the main thread): nanoseconds on a CPU,
/// nanoseconds runnable but waiting for a CPU, and time slices.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedStat {
    /// Time spent running.
    pub run_ns: u64,
    /// Time spent waiting on a run queue.
    pub wait_ns: u64,
    /// Time slices run.
    pub slices: u64,
}

impl SchedStat {
    /// The main thread of `pid` (the gateway's reactor runs there).
    pub fn read_main_thread(pid: u32) -> Option<SchedStat> {
        parse_schedstat(&std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?)
    }
}

/// The three numbers of a schedstat file.
pub fn parse_schedstat(text: &str) -> Option<SchedStat> {
    let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some(SchedStat {
        run_ns: f.next()??,
        wait_ns: f.next()??,
        slices: f.next()??,
    })
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt: ListenOverflows` in /proc/net/netstat; system-wide).
pub fn listen_overflows() -> Option<u64> {
    parse_listen_overflows(&std::fs::read_to_string("/proc/net/netstat").ok()?)
}

/// `ListenOverflows` from the text of /proc/net/netstat (a header line of
/// names followed by a line of values).
pub fn parse_listen_overflows(text: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// A one-line progress report on stderr, rewritten at most once a second.
pub struct Progress {
    label: String,
    start: Instant,
    next: Instant,
    enabled: bool,
    printed: bool,
}

impl Progress {
    /// Starts reporting for a scenario (`enabled = false`: silent).
    pub fn new(label: &str, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.to_owned(),
            start: now,
            next: now + Duration::from_secs(1),
            enabled,
            printed: false,
        }
    }

    /// Prints `line()` if a second has passed since the last print.
    pub fn tick(&mut self, now: Instant, line: impl FnOnce() -> String) {
        if !self.enabled || now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K[{} {:5.1}s] {}", self.label, elapsed, line());
        let _ = err.flush();
        self.printed = true;
    }

    /// Ends the line.
    pub fn finish(&mut self) {
        if self.printed {
            eprintln!();
            self.printed = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A rate as "12.3k" style text.
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_processes_are_summed() {
        let me = std::process::id();
        let one = ProcSample::read(me).expect("this process");
        let two = ProcSample::read_all(&[me, me]).expect("this process twice");
        assert!(two.cpu_secs >= 2.0 * one.cpu_secs);
        assert!(two.rss_kib >= one.rss_kib);
        assert_eq!(ProcSample::read_all(&[]), None);
        assert_eq!(
            ProcSample::read_all(&[me, u32::MAX]),
            None,
            "one unreadable"
        );
    }

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime …
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn schedstat_has_three_numbers() {
        assert_eq!(
            parse_schedstat("123 456 7\n"),
            Some(SchedStat {
                run_ns: 123,
                wait_ns: 456,
                slices: 7
            })
        );
        assert_eq!(parse_schedstat("1 2"), None);
    }

    #[test]
    fn listen_overflows_are_found_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 3 42 42\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_overflows(text), Some(42));
        assert_eq!(parse_listen_overflows("IpExt: a\nIpExt: 1\n"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    1234 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(1234));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn our_own_process_can_be_sampled() {
        let s = ProcSample::read(std::process::id()).expect("/proc readable");
        assert!(s.rss_kib > 0);
        assert!(s.cpu_secs >= 0.0);
    }

    #[test]
    fn percentiles_come_out_in_microseconds() {
        let mut l = Latency::new();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(s.curve.len(), CURVE.len());
    }
}
