//! packet-service-replay: reads tcpdump/tshark captures of ROSE client
//! sessions and either lists them (`--dump`) or replays their client side
//! against a live packet-service and compares what comes back.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`capture`]: pcap (µs/ns) and pcapng files, link layers (Ethernet,
//!    Linux cooked v1/v2, BSD NULL/LOOP, raw IP), IPv4/IPv6 → TCP segments.
//! 2. [`reassembly`]: TCP segments → per-connection in-order byte streams of
//!    both directions, with the timestamp and capture index of each delivery.
//! 3. [`decode`]: byte streams → frames, decrypted with the project's codec;
//!    [`wires`]: which codec and dialect each connection speaks (irose:
//!    the tables of the seeds the capture announced).
//! 4. [`dump`]: the `--dump` listing.
//! 5. [`live`]: replay of every connection's client side against a live
//!    server on one merged timeline, with session ids mapped captured → live.
//! 6. [`compare`]: session-dependent fields, masked comparison of replies.
//!
//! [`synth`] builds synthetic captures for tests; [`wireshark`] writes the
//! Wireshark dissector `tools/wireshark/rose.lua` from the project's tables.

pub mod capture;
pub mod compare;
pub mod decode;
pub mod dump;
pub mod live;
pub mod reassembly;
pub mod synth;
pub mod wires;
pub mod wireshark;
