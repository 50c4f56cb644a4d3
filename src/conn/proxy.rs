//! The PROXY protocol header (HAProxy, versions 1 and 2), without I/O.
//!
//! Behind a TCP load balancer the socket's peer is the balancer; with
//! `--proxy-protocol` the balancer sends the real client address first. The
//! header is only accepted from trusted sources (checked at accept), must
//! come before anything else, and is never guessed: a connection that does
//! not start with one is closed (spec: "MUST NOT try to guess").

use std::net::SocketAddr;

use ppp::v1;
use ppp::v2;

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The version 1 prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// Longest version 1 header, CRLF included (spec).
const V1_MAX: usize = 107;
/// Longest version 2 header accepted (16-byte fixed part + addresses and
/// TLVs); balancers send far less, and it must fit one input buffer.
const V2_MAX: usize = 1024;

/// What the start of a connection's input says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not all of the header is here yet.
    Incomplete,
    /// A whole header of `len` bytes; `source` is the client (None for a
    /// LOCAL command or an UNKNOWN / unix address: keep the socket's peer).
    Parsed {
        /// Bytes to consume.
        len: usize,
        /// The real client address.
        source: Option<SocketAddr>,
    },
    /// Not a valid header.
    Invalid,
}

/// Parses a header at the start of `buf`.
pub fn parse(buf: &[u8]) -> ProxyHeader {
    let n = buf.len().min(V2_SIGNATURE.len());
    if n > 0 && buf[..n] == V2_SIGNATURE[..n] {
        return parse_v2(buf);
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return ProxyHeader::Invalid;
    }
    // Buffer to the CRLF before parsing: partial version 1 lines can be
    // misreported as invalid by the parser.
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            ProxyHeader::Invalid
        } else {
            ProxyHeader::Incomplete
        };
    };
    let line = &buf[..cr + 2];
    match v1::Header::try_from(line) {
        Ok(h) => ProxyHeader::Parsed {
            len: line.len(),
            source: match h.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            },
        },
        Err(_) => ProxyHeader::Invalid,
    }
}

fn parse_v2(buf: &[u8]) -> ProxyHeader {
    if buf.len() < 16 {
        return ProxyHeader::Incomplete;
    }
    let declared = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if declared > V2_MAX {
        return ProxyHeader::Invalid;
    }
    if buf.len() < declared {
        return ProxyHeader::Incomplete;
    }
    match v2::Header::try_from(&buf[..declared]) {
        Ok(h) => ProxyHeader::Parsed {
            len: h.len(),
            source: match (h.command, h.addresses) {
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                _ => None,
            },
        },
        Err(_) => ProxyHeader::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (src, dst),
        )
        .build()
        .expect("builds")
    }

    #[test]
    fn version_1_at_every_split_point() {
        let line = b"PROXY TCP4 203.0.113.7 127.0.0.1 48200 29000\r\n";
        let mut input = line.to_vec();
        input.extend_from_slice(&[0x06, 0x00, 0x04, 0x05, 0x00, 0x00]);
        for cut in 0..line.len() {
            assert_eq!(parse(&input[..cut]), ProxyHeader::Incomplete, "cut {cut}");
        }
        assert_eq!(
            parse(&input),
            ProxyHeader::Parsed {
                len: line.len(),
                source: Some("203.0.113.7:48200".parse().expect("addr"))
            }
        );
        assert_eq!(
            parse(b"PROXY TCP6 2001:db8::1 ::1 5000 29000\r\n"),
            ProxyHeader::Parsed {
                len: 39,
                source: Some("[2001:db8::1]:5000".parse().expect("addr"))
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Parsed {
                len: 15,
                source: None
            }
        );
    }

    #[test]
    fn version_2_at_every_split_point() {
        let src: SocketAddr = "198.51.100.9:40000".parse().expect("addr");
        let header = v2_header(src, "127.0.0.1:29000".parse().expect("addr"));
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), ProxyHeader::Incomplete, "cut {cut}");
        }
        let mut input = header.clone();
        input.extend_from_slice(b"rest");
        assert_eq!(
            parse(&input),
            ProxyHeader::Parsed {
                len: header.len(),
                source: Some(src)
            }
        );
    }

    #[test]
    fn anything_else_is_invalid() {
        // A game packet where the header should be.
        assert_eq!(
            parse(&[0x06, 0x00, 0x04, 0x05, 0x00, 0x00]),
            ProxyHeader::Invalid
        );
        assert_eq!(parse(b"PROXY TCP4 garbage\r\n"), ProxyHeader::Invalid);
        assert_eq!(parse(&[b'P'; 200]), ProxyHeader::Invalid);
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend_from_slice(&[b'1'; 120]);
        assert_eq!(
            parse(&long),
            ProxyHeader::Invalid,
            "no CRLF within 107 bytes"
        );
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
        assert_eq!(
            parse(&huge),
            ProxyHeader::Invalid,
            "declared length too large"
        );
    }
}
