//! The `rose` cipher on seeded tables with the irose encoder, and trial
//! decoding of a connection's first packet (docs/protocol.md §10.1, §10.6.2).
//! The tables are rose-offline's: the default set plus
//! init(0x12345678) and init(0x87654321), prepared once per process.
//!
//! Byte 0 picks the mode, byte 1 the direction and a split point:
//! - framing: the checks of `frame_common.rs` with an irose codec on one of
//!   the three table sets;
//! - trial: the rest is a connection's first bytes. Whatever trial decoding
//!   returns is what that candidate alone decodes, every earlier candidate
//!   alone fails or waits, and feeding a prefix first agrees with feeding
//!   everything (a prefix may pick a later candidate that also passes, never
//!   an earlier one, and errs only if the whole input errs);
//! - sealed: the rest becomes a first packet sealed under one candidate
//!   (command, size, atv, eav, padding from the input); trial decoding picks
//!   that candidate (or an earlier one that also passes), and no strict
//!   prefix is refused.
#![no_main]

#[path = "frame_common.rs"]
mod common;

use std::sync::OnceLock;

use packet_service::protocol::codec::{
    Candidate, Candidates, Chosen, Codec, PreparedSeeds, RoseParams, RoseTables, Seed,
};
use packet_service::protocol::{Direction, FrameError, HEADER_LEN};

const SEEDS: [u32; 2] = [0x1234_5678, 0x8765_4321];
const CONNECT: &[u16] = &[0x703];
const JOIN: &[u16] = &[0x70B];

/// The default codec, then one per prepared seed.
fn codecs() -> &'static [Codec] {
    static CODECS: OnceLock<Vec<Codec>> = OnceLock::new();
    CODECS.get_or_init(|| {
        let seeds: Vec<Seed> = SEEDS.iter().filter_map(|&s| Seed::new(s)).collect();
        let prepared = PreparedSeeds::build(&seeds).expect("two seeds");
        let mut codecs = vec![Codec::irose(RoseTables::default_tables())];
        codecs.extend(prepared.iter().map(|(_, tables)| Codec::irose(tables)));
        codecs
    })
}

/// The one-port candidate list: 0x703 under the default table, 0x70B (or a
/// stray 0x703) under each seeded table.
fn candidates() -> &'static [Candidate<'static>] {
    static LIST: OnceLock<Vec<Candidate<'static>>> = OnceLock::new();
    LIST.get_or_init(|| {
        let codecs = codecs();
        let mut list = vec![Candidate {
            codec: codecs[0],
            commands: CONNECT,
            data_len: 6..=6,
        }];
        for &codec in &codecs[1..] {
            list.push(Candidate {
                codec,
                commands: JOIN,
                data_len: 42..=42,
            });
            list.push(Candidate {
                codec,
                commands: CONNECT,
                data_len: 6..=6,
            });
        }
        list
    })
}

fn set() -> Candidates<'static> {
    Candidates::new(candidates()).expect("at most MAX_CANDIDATES")
}

/// Trial decoding with candidate `k` alone.
fn alone(k: usize, dir: Direction, input: &[u8]) -> Result<Option<Chosen>, FrameError> {
    let list = &candidates()[k..=k];
    let mut bytes = input.to_vec();
    Candidates::new(list).expect("one").decode(dir, &mut bytes)
}

fn check_trial(dir: Direction, input: &[u8], split: usize) {
    let mut whole = input.to_vec();
    let at_once = set().decode(dir, &mut whole);
    match at_once {
        Ok(Some(chosen)) => {
            let candidate = &candidates()[chosen.index];
            let h = chosen.header;
            assert!(candidate.commands.contains(&h.command));
            assert!(candidate.data_len.contains(&h.data_len));
            assert_eq!(
                usize::from(u16::from_le_bytes([whole[0], whole[1]])),
                h.data_len
            );
            assert_eq!(&whole[4..6], &[0, 0], "clean bytes 4-5");
            let mut alone_bytes = input.to_vec();
            let direct = chosen
                .codec
                .decode(dir, &mut alone_bytes)
                .expect("the chosen codec decodes it")
                .expect("whole");
            assert_eq!(direct, h);
            assert_eq!(&alone_bytes[..h.data_len], &whole[..h.data_len]);
            for k in 0..chosen.index {
                assert!(
                    !matches!(alone(k, dir, input), Ok(Some(_))),
                    "an earlier candidate passes"
                );
            }
        }
        Ok(None) => assert!(
            input.len() < HEADER_LEN
                || (0..candidates().len()).any(|k| alone(k, dir, input) == Ok(None)),
            "waits with no candidate waiting"
        ),
        Err(e) => {
            assert_eq!(e, FrameError::BadChecksum, "no candidate is BadChecksum");
            for k in 0..candidates().len() {
                assert!(alone(k, dir, input).is_err(), "candidate {k} alone decides");
            }
        }
    }
    let mut prefix = input[..split].to_vec();
    match set().decode(dir, &mut prefix) {
        Ok(None) => {}
        Err(e) => assert_eq!(at_once, Err(e), "a prefix errs, the whole does not"),
        Ok(Some(early)) => {
            let Ok(Some(chosen)) = at_once else {
                panic!("a prefix decides, the whole does not: {at_once:?}");
            };
            assert!(
                chosen.index <= early.index,
                "a prefix picks an earlier candidate"
            );
            if chosen.index == early.index {
                assert_eq!(chosen, early);
                let n = early.header.data_len;
                assert_eq!(&prefix[..n], &whole[..n]);
            }
        }
    }
}

fn check_sealed(dir: Direction, control: u8, input: &[u8]) {
    let Some((&[pick, atv_lo, atv_hi_eav, ev], body)) = input.split_first_chunk::<4>() else {
        return;
    };
    let list = candidates();
    let which = usize::from(pick) % list.len();
    let candidate = &list[which];
    let command = candidate.commands[usize::from(control) % candidate.commands.len()];
    let (low, high) = (*candidate.data_len.start(), *candidate.data_len.end());
    let data_len = low + usize::from(pick >> 3) % (high - low + 1);
    let ev = usize::from(ev & 7);
    let mut wire = vec![0u8; data_len + ev];
    wire[..2].copy_from_slice(&(data_len as u16).to_le_bytes());
    wire[2..4].copy_from_slice(&command.to_le_bytes());
    for (w, &b) in wire[HEADER_LEN..].iter_mut().zip(body) {
        *w = b;
    }
    let plain = wire[..data_len].to_vec();
    let params = RoseParams {
        atv: u16::from_le_bytes([atv_lo, atv_hi_eav]) & 0x7FF,
        eav: atv_hi_eav >> 4,
        ev: ev as u8,
    };
    candidate
        .codec
        .seal_with(dir, &mut wire, params)
        .expect("a first packet seals");
    for cut in 0..wire.len() {
        let mut part = wire[..cut].to_vec();
        match set().decode(dir, &mut part) {
            Ok(None) => {}
            Ok(Some(early)) => assert_ne!(early.index, which, "decided on a strict prefix"),
            Err(e) => panic!("a strict prefix of a sealed first packet refused: {e}"),
        }
    }
    let mut bytes = wire.clone();
    let chosen = set()
        .decode(dir, &mut bytes)
        .expect("the sealed candidate passes")
        .expect("whole");
    assert!(chosen.index <= which, "picked a later candidate");
    if chosen.index == which {
        assert_eq!(
            (chosen.header.wire_len, chosen.header.data_len),
            (wire.len(), data_len)
        );
        assert_eq!(&bytes[..data_len], &plain[..]);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[mode, control], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let dir = if control & 1 == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    match mode % 3 {
        0 => common::check(codecs()[usize::from(mode / 3) % codecs().len()], input),
        1 => check_trial(dir, input, usize::from(control >> 1) % (input.len() + 1)),
        _ => check_sealed(dir, control >> 1, input),
    }
});
