//! IP networks written as `ADDR/PREFIX`: parsing (with the typo checks the
//! `--proxy-trusted` setting relies on), containment of a peer address and
//! the text form used in the start-up summary.
//!
//! A network is an `(address, prefix length)` pair, the form the reactor's
//! settings carry. Also the key the per-address connection limit counts
//! under ([`client_key`]).

use std::net::IpAddr;

/// The key the per-address connection limit counts a client under: an
/// IPv4 address (IPv4-mapped IPv6 included) as itself, an IPv6 address by
/// its /64, the smallest network a single subscriber is usually given (one
/// host can draw any number of addresses from it).
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !(u128::MAX >> 64);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// Whether the network `cidr` (address, prefix length) contains `addr`.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket
/// reports IPv4 peers) is matched as the IPv4 address. An IPv4 network never
/// contains a native IPv6 address and vice versa. Prefix lengths beyond the
/// address width are treated as the full width.
pub fn contains(cidr: &(IpAddr, u8), addr: IpAddr) -> bool {
    match (cidr.0, addr.to_canonical()) {
        (IpAddr::V4(net), IpAddr::V4(addr)) => {
            let mask = prefix_mask_v4(cidr.1);
            u32::from(net) & mask == u32::from(addr) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(addr)) => {
            let mask = prefix_mask_v6(cidr.1);
            u128::from(net) & mask == u128::from(addr) & mask
        }
        _ => false,
    }
}

/// Parses one `ADDR/PREFIX` (a bare address is a host: /32 or /128).
///
/// Refuses prefix lengths beyond the address width and addresses with bits
/// set below the prefix (`10.0.0.1/8`), which usually mean a typo.
pub fn parse(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => width,
        // Digits only: `u8::from_str` would also take "+8".
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
    };
    if prefix > width {
        return None;
    }
    let host_bits_clear = match addr {
        IpAddr::V4(a) => u32::from(a) & !prefix_mask_v4(prefix) == 0,
        IpAddr::V6(a) => u128::from(a) & !prefix_mask_v6(prefix) == 0,
    };
    host_bits_clear.then_some((addr, prefix))
}

/// The networks as `ADDR/PREFIX` separated by commas, the form [`parse`]
/// reads back.
pub fn list(cidrs: &[(IpAddr, u8)]) -> String {
    cidrs
        .iter()
        .map(|(addr, prefix)| format!("{addr}/{prefix}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn prefix_mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn prefix_mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        assert_eq!(client_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(client_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn cidr_parsing() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert_eq!(parse("10.0.0.0/8"), Some((v4("10.0.0.0"), 8)));
        assert_eq!(parse("0.0.0.0/0"), Some((v4("0.0.0.0"), 0)));
        assert_eq!(parse("192.0.2.7"), Some((v4("192.0.2.7"), 32)));
        assert_eq!(parse("fd00::/8"), Some((v6("fd00::"), 8)));
        assert_eq!(parse("::1"), Some((v6("::1"), 128)));
        assert_eq!(parse("::/0"), Some((v6("::"), 0)));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "fd00::1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0/8",
            "/8",
            "",
            "host/8",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cidr_containment() {
        let net = |s: &str| parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(contains(&net("10.0.0.0/8"), ip("10.255.1.2")));
        assert!(!contains(&net("10.0.0.0/8"), ip("11.0.0.0")));
        assert!(contains(&net("192.168.1.0/24"), ip("192.168.1.255")));
        assert!(!contains(&net("192.168.1.0/24"), ip("192.168.2.0")));
        assert!(contains(&net("127.0.0.1/32"), ip("127.0.0.1")));
        assert!(!contains(&net("127.0.0.1/32"), ip("127.0.0.2")));
        assert!(contains(&net("0.0.0.0/0"), ip("203.0.113.9")));
        assert!(contains(&net("fd00::/8"), ip("fdff:1::2")));
        assert!(!contains(&net("fd00::/8"), ip("fe80::1")));
        assert!(contains(&net("::1/128"), ip("::1")));
        assert!(!contains(&net("::1/128"), ip("::2")));
        assert!(contains(&net("2001:db8::/32"), ip("2001:db8:ffff::1")));
        assert!(contains(&net("::/0"), ip("2001:db8::1")));
        // Families do not mix, except IPv4-mapped IPv6 peers.
        assert!(!contains(&net("::/0"), ip("10.0.0.1")));
        assert!(!contains(&net("0.0.0.0/0"), ip("2001:db8::1")));
        assert!(contains(&net("127.0.0.1/32"), ip("::ffff:127.0.0.1")));
        assert!(!contains(&net("127.0.0.1/32"), ip("::ffff:127.0.0.2")));
    }
}
