//! Framing of the `plain` codec on arbitrary input (see `frame_common.rs`).
#![no_main]

#[path = "frame_common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use packet_service::protocol::{Codec, CodecKind};
    common::check(Codec::new(CodecKind::Plain), data);
});
