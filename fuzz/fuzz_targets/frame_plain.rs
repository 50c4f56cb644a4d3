//! Framing of the `plain` codec on arbitrary input (see `frame_common.rs`).
#![no_main]

#[path = "frame_common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(packet_service::protocol::CodecKind::Plain, data);
});
