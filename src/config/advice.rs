//! Settings that are valid together but probably not what was meant: the
//! warnings logged at start-up.

use super::Config;

impl Config {
    /// One line per doubtful combination of settings, for a `warn` at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.listen_addr.is_unspecified() && self.public_addr.is_loopback() {
            lines.push(format!(
                "listening on every address ({}) but advertising {} (PUBLIC_ADDR): clients on \
                 other hosts would be sent to their own loopback on a server switch; set \
                 PUBLIC_ADDR to the address clients reach",
                self.listen_addr, self.public_addr
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn every_address_with_a_loopback_public_address_is_warned_about() {
        let config = |listen: IpAddr, public: Ipv4Addr| Config {
            listen_addr: listen,
            public_addr: public,
            ..Config::defaults()
        };
        let warned = Config::defaults().warnings();
        assert_eq!(warned.len(), 1, "the defaults: 0.0.0.0 and 127.0.0.1");
        assert!(warned[0].contains("(0.0.0.0) but advertising 127.0.0.1"));
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(
            config(any6, Ipv4Addr::new(127, 0, 0, 2)).warnings().len(),
            1
        );

        let public = Ipv4Addr::new(203, 0, 113, 10);
        assert!(config(any6, public).warnings().is_empty());
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(config(loopback, Ipv4Addr::LOCALHOST).warnings().is_empty());
        assert!(Config::for_tests().warnings().is_empty());
    }
}
