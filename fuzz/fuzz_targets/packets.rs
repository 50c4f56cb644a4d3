//! Every typed packet decoder on arbitrary bodies, the irose layouts
//! included (docs/protocol.md §10.5). The first byte picks the packet (its
//! top bit the family), the rest is its body. A body that decodes must encode again and
//! decode to an equal value; re-encoding that value gives the same bytes.
#![no_main]

use packet_service::protocol::packet_type::DialectId;
use packet_service::protocol::packets::*;
use packet_service::protocol::MAX_PACKET_SIZE;

fn round_trip<P: Packet + PartialEq + std::fmt::Debug>(body: &[u8]) {
    let Ok(value) = P::decode(body) else { return };
    let dialect = DialectId::Osirose.dialect();
    let mut buf = [0u8; MAX_PACKET_SIZE];
    let n = match write_packet(dialect, &value, &mut buf) {
        Ok(n) => n,
        Err(EncodeError::TooLarge) => {
            // Only text decoded lossily (one bad byte → three) can grow.
            assert!(std::str::from_utf8(body).is_err(), "{value:?} does not fit");
            return;
        }
        Err(e) => panic!("{} does not encode: {e}", P::TYPE),
    };
    let again = P::decode(&buf[6..n]).expect("an encoded packet decodes");
    // Floats: NaN != NaN, so compare the debug text then.
    assert!(
        again == value || format!("{again:?}") == format!("{value:?}"),
        "{value:?} became {again:?}"
    );
    let mut buf2 = [0u8; MAX_PACKET_SIZE];
    let n2 = write_packet(dialect, &again, &mut buf2).expect("encodes twice");
    assert_eq!(&buf[..n], &buf2[..n2], "{} encodes differently", P::TYPE);
}

macro_rules! dispatch {
    ($pick:expr, $body:expr, $($p:ty),* $(,)?) => {{
        let table: &[fn(&[u8])] = &[$(round_trip::<$p>),*];
        table[usize::from($pick) % table.len()]($body)
    }};
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    if pick & 0x80 == 0 {
        packet_service::with_every_packet!(dispatch, pick, body);
    } else {
        packet_service::with_every_irose_packet!(dispatch, pick & 0x7F, body);
    }
});
