//! The walk scenario, run briefly against an in-process gateway: in one
//! cell every move reaches every bot; walking a large map a move reaches
//! only the bots in view, and the counts add up. Never a time.

mod common;

use std::time::Duration;

use loadgen::walk::{self, WalkOpts};
use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::CodecKind;

#[test]
fn moves_reach_everyone_in_one_cell_and_only_those_in_view_walking() {
    let gw = common::gateway(CodecKind::Plain);
    let bots = 10;
    let r = walk::run(&WalkOpts {
        addr: gw.addr(),
        codec: CodecKind::Plain,
        dialect: DialectId::Osirose,
        bots,
        concurrency: 5,
        rate: 10.0,
        map_size: 150_000.0,
        step: 300.0,
        duration: Duration::from_millis(500),
        setup_timeout: Duration::from_secs(20),
        server_pid: None,
        progress: false,
    })
    .expect("walk runs");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let n = bots as f64;
    assert_eq!(r.get("bots_on_map_at_end"), Some(n), "{r:?}");
    assert!(r.get("one_cell_moves_sent") > Some(0.0), "{r:?}");
    assert_eq!(
        r.get("one_cell_in_view"),
        Some(n),
        "in one cell every move reaches every bot"
    );
    assert!(r.get("walking_moves_sent") > Some(0.0), "{r:?}");
    let walking = r.get("walking_in_view").unwrap_or(0.0);
    assert!(
        (1.0..n).contains(&walking),
        "walking, a move reaches the mover and fewer than all: {walking}"
    );
    gw.stop().expect("gateway stops");
}
