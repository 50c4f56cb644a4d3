//! `replay`: list a capture of ROSE client sessions (`--dump`) or replay its
//! client side against a live packet-service and compare the replies; or
//! write the Wireshark dissector (`--wireshark-lua`).
//!
//! Exit status: 0 everything matched (or the dump was written), 1 some
//! connection differs, 2 usage or capture errors.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use getopts::Options as Getopts;
use packet_service::conn::wire::PacketIds;
use packet_service::protocol::CodecKind;
use packet_service_replay::capture::read_file;
use packet_service_replay::dump::dump;
use packet_service_replay::live::{replay, Options, Pacing, Progress};
use packet_service_replay::reassembly::reassemble;

const USAGE_ERROR: u8 = 2;

fn options() -> Getopts {
    let mut o = Getopts::new();
    o.optflag("h", "help", "print this help");
    o.optflag("V", "version", "print the version");
    o.optflag(
        "",
        "wireshark-lua",
        "write the Wireshark dissector (tools/wireshark/rose.lua) on stdout",
    );
    o.optflag(
        "",
        "dump",
        "list the connections and packets of CAPTURE; no server needed",
    );
    o.optopt(
        "",
        "target",
        "replay against this server (e.g. 127.0.0.1:29000)",
        "ADDR",
    );
    o.optopt(
        "",
        "port",
        "service port of the captured connections (default 29000)",
        "PORT",
    );
    o.optopt("", "codec", "rose or plain (default rose)", "CODEC");
    o.optopt(
        "",
        "packet-ids",
        "osirose, osirose-2021, irose or auto (default osirose), as the gateway's",
        "IDS",
    );
    o.optflag("t", "topspeed", "replay as fast as the replies allow");
    o.optopt(
        "x",
        "speed",
        "replay at X times the captured pace (default 1)",
        "X",
    );
    o.optopt("", "multiplier", "same as --speed (tcpreplay's name)", "X");
    o.optopt("", "connections", "at most N connections open at once", "N");
    o.optopt(
        "L",
        "limit",
        "replay only the first N connections of the capture",
        "N",
    );
    o.optopt(
        "",
        "timeout",
        "seconds to wait for connects and replies (default 5)",
        "SECS",
    );
    o
}

fn usage(o: &Getopts) -> String {
    o.usage(
        "Usage: replay --dump CAPTURE [options]\n       \
         replay CAPTURE --target ADDR [--speed X | --topspeed] [options]\n       \
         replay --wireshark-lua > tools/wireshark/rose.lua\n\n\
         Reads pcap/pcapng captures (tcpdump, tshark) of connections to the service port.",
    )
}

fn parse<T: std::str::FromStr>(m: &getopts::Matches, name: &str) -> Result<Option<T>, String> {
    match m.opt_str(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid value for --{name}: {v:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = options();
    let m = match o.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("replay: {e}\n{}", o.short_usage("replay"));
            return ExitCode::from(USAGE_ERROR);
        }
    };
    if m.opt_present("help") {
        print!("{}", usage(&o));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("version") {
        println!("replay {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("wireshark-lua") {
        return match packet_service_replay::wireshark::dissector_lua() {
            Ok(lua) => {
                let mut out = std::io::stdout().lock();
                match out.write_all(lua.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("replay: writing the dissector: {e}");
                        ExitCode::from(USAGE_ERROR)
                    }
                }
            }
            Err(e) => {
                eprintln!("replay: generating the dissector: {e}");
                ExitCode::from(USAGE_ERROR)
            }
        };
    }
    match run(&m) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn run(m: &getopts::Matches) -> Result<ExitCode, String> {
    let [capture] = m.free.as_slice() else {
        return Err("expected exactly one CAPTURE file (see --help)".into());
    };
    let port: u16 = parse(m, "port")?.unwrap_or(29000);
    let codec = match m.opt_str("codec") {
        None => CodecKind::Rose,
        Some(n) => CodecKind::from_name(&n).ok_or(format!("unknown codec {n:?} (rose, plain)"))?,
    };
    let ids = match m.opt_str("packet-ids") {
        None => PacketIds::One(packet_service::protocol::DialectId::Osirose),
        Some(n) => PacketIds::from_name(&n).ok_or(format!(
            "unknown packet ids {n:?} (osirose, osirose-2021, irose, auto)"
        ))?,
    };
    let speed: Option<f64> = match parse(m, "speed")? {
        Some(s) => Some(s),
        None => parse(m, "multiplier")?,
    };
    if speed.is_some() && m.opt_present("topspeed") {
        return Err("--speed and --topspeed exclude each other".into());
    }
    let pacing = match speed {
        _ if m.opt_present("topspeed") => Pacing::TopSpeed,
        Some(x) if x > 0.0 && x.is_finite() => Pacing::Speed(x),
        Some(x) => return Err(format!("--speed must be a positive number, not {x}")),
        None => Pacing::Speed(1.0),
    };
    let max_open: Option<usize> = parse(m, "connections")?;
    if max_open == Some(0) {
        return Err("--connections must be at least 1".into());
    }
    let limit: Option<usize> = parse(m, "limit")?;
    let timeout: f64 = parse(m, "timeout")?.unwrap_or(5.0);
    if !(timeout > 0.0 && timeout < 86_400.0) {
        return Err("--timeout must be between 0 and 86400 seconds".into());
    }

    let cap = read_file(Path::new(capture)).map_err(|e| e.to_string())?;
    let s = &cap.stats;
    let skipped = s.not_tcp + s.fragments + s.malformed + s.unsupported_link;
    if skipped > 0 {
        eprintln!(
            "replay: {} frames, {} TCP; skipped {} not TCP, {} fragments, {} malformed, {} on unsupported link types",
            s.frames, s.tcp, s.not_tcp, s.fragments, s.malformed, s.unsupported_link
        );
    }
    let mut conns = reassemble(&cap.segments, port);
    if let Some(n) = limit {
        conns.truncate(n);
    }
    if m.opt_present("dump") {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let wires = packet_service_replay::wires::guess(&conns, ids, codec);
        dump(&mut out, &conns, &wires)
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing the dump: {e}"))?;
        if conns.is_empty() {
            eprintln!("replay: no TCP connections to port {port} in {capture}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let target = m
        .opt_str("target")
        .ok_or("nothing to do: give --dump or --target ADDR (see --help)")?;
    let target: SocketAddr = target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(format!("cannot resolve --target {target:?}"))?;
    if conns.is_empty() {
        return Err(format!("no TCP connections to port {port} in {capture}"));
    }
    let opts = Options {
        target,
        codec,
        ids,
        pacing,
        max_open,
        timeout: Duration::from_secs_f64(timeout),
    };
    let mut progress = |p: &Progress| {
        eprintln!(
            "replay: {}/{} connections done, {} packets",
            p.done, p.total, p.packets
        );
    };
    let report = replay(&conns, &opts, &mut progress);
    for (n, c) in report.connections.iter().enumerate() {
        let status = if c.is_match() {
            "OK".to_string()
        } else if c.verdict.is_match() {
            "FAILED".to_string()
        } else {
            format!("DIFFER {}", c.verdict)
        };
        println!(
            "connection {} {}: {status} (sent {}, rewritten {}, received {}/{})",
            n + 1,
            c.client,
            c.sent,
            c.rewritten,
            c.received,
            c.expected
        );
        for note in &c.notes {
            println!("  note: {note}");
        }
    }
    println!("{}", report.summary());
    Ok(if report.differ() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
