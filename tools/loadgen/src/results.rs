//! What a scenario run produces: a [`RunResult`] printed as a table and
//! merged into a JSON results file shared by every run of a benchmark.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::LatencySummary;

/// One scenario run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// Stable key, e.g. `echo-p16-gateway`, `idle-redis`, `login`.
    pub id: String,
    /// Scenario name (`echo`, `redis`, `login`, `idle`, `fanout`, `isolation`).
    pub scenario: String,
    /// What was measured: `packet-service` or `redis`.
    pub target: String,
    /// Parameters as given (connections, pipeline, duration, …).
    pub params: BTreeMap<String, serde_json::Value>,
    /// Figures: `replies_per_sec`, `server_cpu_s_per_million`, … (see README).
    pub figures: BTreeMap<String, f64>,
    /// Latency distributions by name (`rtt`, `flow`, `delivery`, `unloaded`, `loaded`).
    pub latency: BTreeMap<String, LatencySummary>,
    /// Failures by cause (result codes, closes, timeouts).
    pub failures: BTreeMap<String, u64>,
    /// Anything the reader should know (limits lowered, anomalies seen).
    pub notes: Vec<String>,
}

impl RunResult {
    /// An empty result.
    pub fn new(id: &str, scenario: &str, target: &str) -> RunResult {
        RunResult {
            id: id.to_owned(),
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            ..RunResult::default()
        }
    }

    /// Sets a parameter.
    pub fn param(&mut self, k: &str, v: impl Into<serde_json::Value>) {
        self.params.insert(k.to_owned(), v.into());
    }

    /// Sets a figure.
    pub fn figure(&mut self, k: &str, v: f64) {
        self.figures.insert(k.to_owned(), crate::stats::round2(v));
    }

    /// A figure, if present.
    pub fn get(&self, k: &str) -> Option<f64> {
        self.figures.get(k).copied()
    }

    /// Total failures.
    pub fn failure_count(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Prints the human-readable table on stdout.
    pub fn print(&self) {
        println!("== {} ({} → {})", self.id, self.scenario, self.target);
        if !self.params.is_empty() {
            let p: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("   params: {}", p.join(" "));
        }
        for (k, v) in &self.figures {
            println!("   {k:<34} {}", fmt_num(*v));
        }
        if !self.latency.is_empty() {
            println!(
                "   {:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "latency", "count", "p50 µs", "p90 µs", "p99 µs", "p999 µs", "max µs"
            );
            for (k, l) in &self.latency {
                println!(
                    "   {:<10} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                    k, l.count, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
                );
            }
        }
        if self.failures.is_empty() {
            println!("   failures: none");
        } else {
            let f: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("   failures: {}", f.join(" "));
        }
        for n in &self.notes {
            println!("   note: {n}");
        }
    }
}

/// Numbers with thousands separators, two decimals below 100.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.2}");
    }
    let n = v.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The machine a results file was measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// MemTotal in MiB.
    pub mem_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// /proc/loadavg when the file was started (other work on the machine).
    #[serde(default)]
    pub load_avg: String,
}

impl Machine {
    /// Reads /proc and the host name.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Machine {
            host: read_trim("/proc/sys/kernel/hostname"),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_mib: mem_kib / 1024,
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            load_avg: read_trim("/proc/loadavg"),
        }
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A results file: the machine, when, and every run (latest per id).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ResultsFile {
    /// Where it was measured.
    pub machine: Machine,
    /// UTC start date and time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// The runs, in the order first written.
    pub runs: Vec<RunResult>,
}

impl ResultsFile {
    /// Reads a results file.
    pub fn load(path: &Path) -> Result<ResultsFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Adds `run` to the file at `path` (created if missing), replacing a
    /// run with the same id.
    pub fn merge_into(path: &Path, run: &RunResult) -> Result<(), String> {
        let mut file = if path.exists() {
            ResultsFile::load(path)?
        } else {
            ResultsFile {
                machine: Machine::probe(),
                date: utc_now(),
                runs: Vec::new(),
            }
        };
        match file.runs.iter_mut().find(|r| r.id == run.id) {
            Some(slot) => *slot = run.clone(),
            None => file.runs.push(run.clone()),
        }
        let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The run with this id.
    pub fn run(&self, id: &str) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.id == id)
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (no time-zone database
/// needed: civil-from-days on the Unix clock).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(12.345), "12.35");
        assert_eq!(fmt_num(-1000.0), "-1,000");
        assert_eq!(fmt_num(999.0), "999");
    }

    #[test]
    fn merging_replaces_a_run_with_the_same_id() {
        let dir = std::env::temp_dir().join(format!("loadgen-merge-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let mut a = RunResult::new("echo-p1-gateway", "echo", "packet-service");
        a.figure("replies_per_sec", 1.0);
        ResultsFile::merge_into(&dir, &a).expect("write");
        a.figure("replies_per_sec", 2.0);
        ResultsFile::merge_into(&dir, &a).expect("write");
        let b = RunResult::new("login", "login", "packet-service");
        ResultsFile::merge_into(&dir, &b).expect("write");
        let f = ResultsFile::load(&dir).expect("read");
        let _ = std::fs::remove_file(&dir);
        assert_eq!(f.runs.len(), 2);
        assert_eq!(
            f.run("echo-p1-gateway")
                .and_then(|r| r.get("replies_per_sec")),
            Some(2.0)
        );
    }
}
