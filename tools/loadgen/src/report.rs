//! The benchmark summary: each figure of a results file next to the
//! baseline measured in the same run, the ratio and the target; and the
//! latency chart (SVG) drawn from the same file.

use std::fmt::Write as _;

use crate::results::{fmt_num, ResultsFile, RunResult};
use crate::stats::LatencySummary;

/// What a figure must reach.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Target {
    /// value / baseline ≥ x.
    RatioAtLeast(f64),
    /// value / baseline ≤ x.
    RatioAtMost(f64),
    /// value ≥ x.
    AtLeast(f64),
    /// value ≤ x.
    AtMost(f64),
    /// value < x.
    Below(f64),
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::RatioAtLeast(x) => format!("≥ {x}× baseline"),
            Target::RatioAtMost(x) => format!("≤ {x}× baseline"),
            Target::AtLeast(x) => format!("≥ {}", fmt_num(x)),
            Target::AtMost(x) => format!("≤ {}", fmt_num(x)),
            Target::Below(x) => format!("< {}", fmt_num(x)),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> Option<bool> {
        Some(match self {
            Target::RatioAtLeast(x) => ratio? >= x,
            Target::RatioAtMost(x) => ratio? <= x,
            Target::AtLeast(x) => value >= x,
            Target::AtMost(x) => value <= x,
            Target::Below(x) => value < x,
        })
    }
}

/// One line of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// What is measured.
    pub what: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// Baseline (Redis, or the unloaded phase) and its ratio, if any.
    pub baseline: Option<f64>,
    /// value / baseline.
    pub ratio: Option<f64>,
    /// The target.
    pub target: Target,
    /// Whether it is met (`None`: not measurable).
    pub met: Option<bool>,
}

fn fig(file: &ResultsFile, id: &str, key: &str) -> Option<f64> {
    file.run(id).and_then(|r| r.get(key))
}

fn lat(file: &ResultsFile, id: &str, name: &str) -> Option<LatencySummary> {
    file.run(id).and_then(|r| r.latency.get(name).cloned())
}

fn line(
    what: &str,
    value: Option<f64>,
    unit: &'static str,
    baseline: Option<f64>,
    target: Target,
) -> Option<Line> {
    let value = value?;
    let ratio = baseline.filter(|b| *b > 0.0).map(|b| value / b);
    Some(Line {
        what: what.to_owned(),
        value,
        unit,
        baseline,
        ratio,
        target,
        met: target.met(value, ratio),
    })
}

/// Throughput and server CPU per reply of the echo run `run`, named
/// `names`, each against the same figure of `baseline`.
fn echo_lines(
    file: &ResultsFile,
    run: &str,
    baseline: &str,
    names: [String; 2],
    cpu_target: Target,
) -> impl Iterator<Item = Line> {
    let [throughput, cpu] = names;
    [
        line(
            &throughput,
            fig(file, run, "replies_per_sec"),
            "replies/s",
            fig(file, baseline, "replies_per_sec"),
            Target::RatioAtLeast(1.0),
        ),
        line(
            &cpu,
            fig(file, run, "server_cpu_s_per_million"),
            "CPU s",
            fig(file, baseline, "server_cpu_s_per_million"),
            cpu_target,
        ),
    ]
    .into_iter()
    .flatten()
}

/// The summary lines for every figure present in `file`.
pub fn lines(file: &ResultsFile) -> Vec<Line> {
    let mut out = Vec::new();
    for p in [1u32, 16] {
        let gw = format!("echo-p{p}-gateway");
        let rd = format!("echo-p{p}-redis");
        out.extend(echo_lines(
            file,
            &gw,
            &rd,
            [
                format!("echo P={p} throughput"),
                format!("echo P={p} server CPU per 1M replies"),
            ],
            Target::RatioAtMost(if p == 1 { 0.9 } else { 0.6 }),
        ));
        out.extend(line(
            &format!("echo P={p} p99 latency"),
            lat(file, &gw, "rtt").map(|l| l.p99_us),
            "µs",
            lat(file, &rd, "rtt").map(|l| l.p99_us),
            Target::RatioAtMost(f64::INFINITY),
        ));
    }
    // Two gateway processes sharing the port, against one: more processes
    // must not cost throughput, nor much CPU per reply.
    for p in [1u32, 16] {
        out.extend(echo_lines(
            file,
            &format!("echo-p{p}-gateway-x2"),
            &format!("echo-p{p}-gateway"),
            [
                format!("echo P={p}, 2 reuse-port gateways"),
                format!("echo P={p}, 2 gateways: CPU per 1M"),
            ],
            Target::RatioAtMost(1.1),
        ));
    }
    out.extend(line(
        "idle RSS per connection",
        fig(file, "idle-gateway", "rss_bytes_per_conn"),
        "bytes",
        fig(file, "idle-redis", "rss_bytes_per_conn"),
        Target::AtMost(1024.0),
    ));
    out.extend(line(
        "login rate",
        fig(file, "login", "logins_per_sec"),
        "logins/s",
        None,
        Target::AtLeast(5000.0),
    ));
    out.extend(line(
        "login flow p99",
        lat(file, "login", "flow").map(|l| l.p99_us / 1000.0),
        "ms",
        None,
        Target::Below(20.0),
    ));
    // The login scenario against each persistent engine, with the memory
    // run of the same file (`login`) as the baseline.
    for engine in ["sqlite", "postgres"] {
        let id = format!("login-{engine}");
        out.extend(line(
            &format!("login rate ({engine})"),
            fig(file, &id, "logins_per_sec"),
            "logins/s",
            fig(file, "login", "logins_per_sec"),
            Target::RatioAtLeast(0.0),
        ));
        out.extend(line(
            &format!("login flow p99 ({engine})"),
            lat(file, &id, "flow").map(|l| l.p99_us / 1000.0),
            "ms",
            lat(file, "login", "flow").map(|l| l.p99_us / 1000.0),
            Target::RatioAtMost(f64::INFINITY),
        ));
    }
    out.extend(fanout_lines(file));
    out.extend(storm_lines(file));
    // Walking a large map against the same bots all in one cell.
    out.extend(line(
        "walk CPU per move, walking vs one cell",
        fig(file, "walk", "walking_server_cpu_us_per_move"),
        "µs",
        fig(file, "walk", "one_cell_server_cpu_us_per_move"),
        Target::RatioAtMost(1.0),
    ));
    out.extend(line(
        "walk CPU per delivery, walking vs one cell",
        fig(file, "walk", "walking_server_cpu_us_per_delivery"),
        "µs",
        fig(file, "walk", "one_cell_server_cpu_us_per_delivery"),
        Target::RatioAtMost(f64::INFINITY),
    ));
    out.extend(line(
        "walk players in view, walking vs one cell",
        fig(file, "walk", "walking_in_view"),
        "players",
        fig(file, "walk", "one_cell_in_view"),
        Target::RatioAtMost(f64::INFINITY),
    ));
    out.extend(line(
        "walk deliveries, walking vs one cell",
        fig(file, "walk", "walking_deliveries_per_sec"),
        "deliveries/s",
        fig(file, "walk", "one_cell_deliveries_per_sec"),
        Target::RatioAtMost(f64::INFINITY),
    ));
    out.extend(line(
        "isolation echo p99 loaded vs unloaded",
        fig(file, "isolation", "echo_p99_loaded_us"),
        "µs",
        fig(file, "isolation", "echo_p99_unloaded_us"),
        Target::RatioAtMost(2.0),
    ));
    out
}

/// Fan-out at saturation, the gateway (`fanout`) against Redis pub/sub
/// (`fanout-redis`) with the same subscribers, publishers and steps.
fn fanout_lines(file: &ResultsFile) -> impl Iterator<Item = Line> {
    let p99 = |id| lat(file, id, "delivery").map(|l| l.p99_us / 1000.0);
    [
        line(
            "fanout: sustained deliveries/s",
            fig(file, "fanout", "deliveries_per_sec"),
            "deliveries/s",
            fig(file, "fanout-redis", "deliveries_per_sec"),
            Target::RatioAtLeast(1.5),
        ),
        line(
            "fanout: server CPU per 1M deliveries",
            fig(file, "fanout", "server_cpu_s_per_million"),
            "CPU s",
            fig(file, "fanout-redis", "server_cpu_s_per_million"),
            Target::RatioAtMost(0.5),
        ),
        line(
            "fanout: delivery p99 at that rate",
            p99("fanout"),
            "ms",
            p99("fanout-redis"),
            Target::RatioAtMost(f64::INFINITY),
        ),
    ]
    .into_iter()
    .flatten()
}

/// The reconnect storm on each engine: all players in the world, the time
/// until the last got there (only when every one did; SQLite has a
/// target), the flow's p99 and the server CPU per login.
fn storm_lines(file: &ResultsFile) -> Vec<Line> {
    let mut out = Vec::new();
    for engine in ["memory", "sqlite", "postgres"] {
        let id = format!("storm-{engine}");
        let Some(run) = file.run(&id) else { continue };
        let players = run.params.get("players").and_then(|v| v.as_f64());
        out.extend(line(
            &format!("storm ({engine}): players in the world"),
            run.get("in_world"),
            "players",
            players,
            Target::RatioAtLeast(1.0),
        ));
        let target = if engine == "sqlite" {
            Target::AtMost(5.0)
        } else {
            Target::AtLeast(0.0)
        };
        out.extend(line(
            &format!("storm ({engine}): time to all in world"),
            run.get("seconds_to_all_in_world"),
            "s",
            None,
            target,
        ));
        out.extend(line(
            &format!("storm ({engine}): flow p99"),
            run.latency.get("flow").map(|l| l.p99_us / 1000.0),
            "ms",
            None,
            Target::AtLeast(0.0),
        ));
        out.extend(line(
            &format!("storm ({engine}): server CPU per login"),
            run.get("server_cpu_ms_per_login"),
            "ms",
            None,
            Target::AtLeast(0.0),
        ));
    }
    out
}

/// The summary as a text table.
pub fn table(file: &ResultsFile) -> String {
    let mut s = String::new();
    let m = &file.machine;
    let _ = writeln!(
        s,
        "machine: {} — {} × {} — {} MiB — Linux {} — load average at start {}\ndate: {}\n",
        m.host, m.cpus, m.cpu, m.mem_mib, m.kernel, m.load_avg, file.date
    );
    let _ = writeln!(
        s,
        "{:<40} {:>14} {:<13} {:>14} {:>8}  {:<18} met",
        "figure", "value", "unit", "baseline", "ratio", "target"
    );
    for l in lines(file) {
        let informative = matches!(l.target, Target::RatioAtMost(x) if x.is_infinite())
            || l.target == Target::AtLeast(0.0)
            || l.target == Target::RatioAtLeast(0.0);
        let _ = writeln!(
            s,
            "{:<40} {:>14} {:<13} {:>14} {:>8}  {:<18} {}",
            l.what,
            fmt_num(l.value),
            l.unit,
            l.baseline.map(fmt_num).unwrap_or_else(|| "—".into()),
            l.ratio
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "—".into()),
            if informative {
                "(informative)".to_owned()
            } else {
                l.target.text()
            },
            match (informative, l.met) {
                (true, _) => "",
                (false, Some(true)) => "yes",
                (false, Some(false)) => "NO",
                (false, None) => "?",
            }
        );
    }
    let failing: Vec<&RunResult> = file.runs.iter().filter(|r| r.failure_count() > 0).collect();
    for r in failing {
        let f: Vec<String> = r.failures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "failures in {}: {}", r.id, f.join(" "));
    }
    s
}

/// Colours of the series, in order.
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Position on the "nines" axis: 0 at p0, 1 at p90, 2 at p99, … capped at 5.
fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        5.0
    } else {
        (-(1.0 - p / 100.0).log10()).clamp(0.0, 5.0)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A latency-percentile chart: one panel per run that has latencies, one
/// line per distribution, log-scale latency against the nines of the
/// percentile.
pub fn svg(file: &ResultsFile) -> String {
    let panels: Vec<&RunResult> = file.runs.iter().filter(|r| !r.latency.is_empty()).collect();
    let (pw, ph) = (480.0, 280.0);
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (pw * cols as f64, ph * rows as f64 + 40.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="14">packet-service loadgen latency — {} — {}</text>"#,
        esc(&file.machine.host),
        esc(&file.date)
    );
    for (i, run) in panels.iter().enumerate() {
        let ox = (i % cols) as f64 * pw;
        let oy = 40.0 + (i / cols) as f64 * ph;
        let (l, r, t, b) = (ox + 60.0, ox + pw - 20.0, oy + 24.0, oy + ph - 40.0);
        // Latency range over the panel's curves (log10 µs), whole decades.
        let values = run
            .latency
            .values()
            .flat_map(|c| c.curve.iter().map(|p| p[1]))
            .filter(|v| *v > 0.0);
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for v in values {
            lo = lo.min(v.log10());
            hi = hi.max(v.log10());
        }
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
        let x = |p: f64| l + (r - l) * nines(p) / 5.0;
        let y = |us: f64| b - (b - t) * ((us.max(1e-3).log10() - lo) / (hi - lo));
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
            l,
            oy + 16.0,
            esc(&format!("{} ({})", run.id, run.target))
        );
        let _ = writeln!(
            s,
            r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            r - l,
            b - t
        );
        let mut d = lo as i32;
        while d as f64 <= hi {
            let yy = y(10f64.powi(d));
            let label = match d {
                ..=2 => format!("{} µs", 10f64.powi(d)),
                3..=5 => format!("{} ms", 10f64.powi(d - 3)),
                _ => format!("{} s", 10f64.powi(d - 6)),
            };
            let _ = writeln!(
                s,
                r##"<line x1="{l}" y1="{yy:.1}" x2="{r}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                l - 4.0,
                yy + 4.0,
                label
            );
            d += 1;
        }
        for (p, label) in [
            (0.0, "0"),
            (90.0, "90"),
            (99.0, "99"),
            (99.9, "99.9"),
            (99.99, "99.99"),
            (100.0, "max"),
        ] {
            let xx = x(p);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{t}" x2="{xx:.1}" y2="{b}" stroke="#eee"/><text x="{xx:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                b + 14.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
            (l + r) / 2.0,
            b + 28.0
        );
        for (j, (name, c)) in run.latency.iter().enumerate() {
            let colour = COLOURS[j % COLOURS.len()];
            let pts: Vec<String> = c
                .curve
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p[0]), y(p[1])))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" fill="{colour}">{} p50 {} / p99 {} µs</text>"#,
                l + 6.0,
                t + 14.0 + 13.0 * j as f64,
                esc(name),
                fmt_num(c.p50_us),
                fmt_num(c.p99_us)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Latency;
    use std::time::Duration;

    fn run(id: &str, figures: &[(&str, f64)]) -> RunResult {
        let mut r = RunResult::new(id, "echo", "x");
        for (k, v) in figures {
            r.figure(k, *v);
        }
        r
    }

    #[test]
    fn ratios_and_targets() {
        let mut f = ResultsFile::default();
        f.runs.push(run(
            "echo-p1-gateway",
            &[
                ("replies_per_sec", 200.0),
                ("server_cpu_s_per_million", 3.0),
            ],
        ));
        f.runs.push(run(
            "echo-p1-redis",
            &[
                ("replies_per_sec", 100.0),
                ("server_cpu_s_per_million", 2.0),
            ],
        ));
        f.runs.push(run("login", &[("logins_per_sec", 4000.0)]));
        let ls = lines(&f);
        let tp = ls
            .iter()
            .find(|l| l.what == "echo P=1 throughput")
            .expect("line");
        assert_eq!((tp.ratio, tp.met), (Some(2.0), Some(true)));
        let cpu = ls
            .iter()
            .find(|l| l.what.contains("P=1 server CPU"))
            .expect("line");
        assert_eq!((cpu.ratio, cpu.met), (Some(1.5), Some(false)));
        let login = ls.iter().find(|l| l.what == "login rate").expect("line");
        assert_eq!(login.met, Some(false));
        assert!(
            !ls.iter().any(|l| l.what.contains("P=16")),
            "absent runs give no line"
        );
        assert!(table(&f).contains("NO"));
    }

    #[test]
    fn two_gateways_are_measured_against_one() {
        let mut f = ResultsFile::default();
        let figures = |rate, cpu| [("replies_per_sec", rate), ("server_cpu_s_per_million", cpu)];
        f.runs.push(run("echo-p16-gateway", &figures(100.0, 2.0)));
        f.runs
            .push(run("echo-p16-gateway-x2", &figures(150.0, 2.4)));
        let ls = lines(&f);
        let find = |what: &str| ls.iter().find(|l| l.what == what).expect(what);
        let tp = find("echo P=16, 2 reuse-port gateways");
        assert_eq!(
            (tp.baseline, tp.ratio, tp.met),
            (Some(100.0), Some(1.5), Some(true))
        );
        let cpu = find("echo P=16, 2 gateways: CPU per 1M");
        assert_eq!(cpu.met, Some(false), "1.2× the CPU of one process");
        assert!(!ls.iter().any(|l| l.what.starts_with("echo P=1,")));
    }

    #[test]
    fn fanout_and_storm_are_judged_against_their_targets() {
        let mut f = ResultsFile::default();
        let figures = |rate, cpu| {
            [
                ("deliveries_per_sec", rate),
                ("server_cpu_s_per_million", cpu),
            ]
        };
        f.runs.push(run("fanout", &figures(900.0, 1.0)));
        f.runs.push(run("fanout-redis", &figures(500.0, 1.5)));
        let mut storm = run(
            "storm-sqlite",
            &[("in_world", 90.0), ("seconds_to_all_in_world", 4.0)],
        );
        storm.param("players", 100);
        f.runs.push(storm);
        let ls = lines(&f);
        let find = |what: &str| ls.iter().find(|l| l.what == what).expect(what);
        let rate = find("fanout: sustained deliveries/s");
        assert_eq!((rate.ratio, rate.met), (Some(1.8), Some(true)));
        let cpu = find("fanout: server CPU per 1M deliveries");
        assert_eq!(cpu.met, Some(false), "0.67× Redis's CPU, not ≤ 0.5×");
        let all = find("storm (sqlite): players in the world");
        assert_eq!((all.ratio, all.met), (Some(0.9), Some(false)));
        assert_eq!(find("storm (sqlite): time to all in world").met, Some(true));
        assert!(!ls.iter().any(|l| l.what.starts_with("storm (memory)")));
    }

    #[test]
    fn the_svg_has_one_line_per_distribution() {
        let mut f = ResultsFile::default();
        let mut r = run("isolation", &[]);
        let mut l = Latency::new();
        for us in [10, 20, 30, 4000] {
            l.record(Duration::from_micros(us));
        }
        r.latency.insert("unloaded".into(), l.summary());
        r.latency.insert("loaded".into(), l.summary());
        f.runs.push(r);
        let svg = svg(&f);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
