//! The connection state machine, for a client of any dialect (irose
//! included, with its char connection told about the game), fed an
//! arbitrary sequence of inputs:
//! packets of any client type with any body, well-formed packets, answers
//! to the awaited request and completions with arbitrary request ids and
//! results, Joined / Kicked / WorldDown, and ticks after arbitrary time
//! advances. After every step the invariants of
//! `packet_service::conn::check` must hold (no panic; Closing is terminal;
//! at most one backend call pending; every wait has a deadline; the next
//! deadline is not in the past after a tick; every reply encodes and fits
//! 2047 bytes; a close from character select sends exactly one auth Logout,
//! one from the world exactly one world Leave, one from another phase
//! neither), and closing the connection says only farewells.
#![no_main]

use arbitrary::Arbitrary;
use packet_service::conn::check::{Harness, Op};
use packet_service::protocol::packet_type::DialectId;

/// One raw step; `Op::from_raw` maps every value to an input.
#[derive(Debug, Arbitrary)]
struct Step {
    choice: u8,
    a: u32,
    b: u32,
    bytes: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Script {
    rate_limited: bool,
    /// The client's dialect (an index into `DialectId::ALL`).
    dialect: u8,
    steps: Vec<Step>,
}

libfuzzer_sys::fuzz_target!(|script: Script| {
    let all = DialectId::ALL;
    let dialect = all[usize::from(script.dialect) % all.len()];
    let mut h = Harness::with_dialect(
        std::time::Instant::now(),
        if script.rate_limited { 10 } else { 0 },
        dialect,
    );
    for (i, s) in script.steps.iter().take(256).enumerate() {
        let op = Op::from_raw_in(dialect.family(), s.choice, s.a, s.b, &s.bytes);
        if let Err(e) = h.apply(&op) {
            panic!("step {i} {op:?}: {e}");
        }
    }
    if let Err(e) = h.close() {
        panic!("on_close: {e}");
    }
});
