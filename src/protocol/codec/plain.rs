//! Framing of the `plain` codec (docs/protocol.md §9 D2): the header in
//! clear, byte 4 zero, byte 5 = CRC-8 over bytes 0..4 and the body.

use super::{checksum, write_plain_header, FrameError, FrameHeader, HEADER_LEN, MAX_PACKET_SIZE};

/// Reads and checks a `plain` header.
pub(super) fn peek(head: &[u8; HEADER_LEN]) -> Result<FrameHeader, FrameError> {
    let size = usize::from(u16::from_le_bytes([head[0], head[1]]));
    if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&size) {
        return Err(FrameError::BadSize(size));
    }
    if head[4] != 0 {
        return Err(FrameError::BadHeader);
    }
    Ok(FrameHeader {
        wire_len: size,
        data_len: size,
        command: u16::from_le_bytes([head[2], head[3]]),
        checksum: head[5],
        logical: [head[0], head[1], head[2], head[3], 0],
        atv: 0,
        eav: 0,
    })
}

/// Seals a plaintext packet whose size the caller has checked.
pub(super) fn seal(packet: &mut [u8], command: u16) -> Result<(), FrameError> {
    write_plain_header(packet, packet.len(), command);
    packet[5] = checksum(&packet[..5], &packet[HEADER_LEN..]);
    Ok(())
}
