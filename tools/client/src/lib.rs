//! rose-client's library: the names of the result codes the gateway answers
//! with ([`results`]), shared by the client's messages and the Wireshark
//! dissector's generator (`tools/replay`).

pub mod results;
