//! The kinds of value a setting can take: how a raw string is checked and
//! turned into its typed value, and how the kind is described in `--help`
//! ("accepted") and in the error line ("expected …").
//!
//! A rule never sees where the value came from; `parse.rs` does the
//! precedence and names the flag and the variable in the error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;

use crate::protocol::codec::{Seed, MAX_PREPARED_SEEDS};

/// What the boolean rule accepts, as the error line says it.
pub(super) const BOOL_EXPECTED: &str = "1, true, yes, on, 0, false, no or off";

/// Smallest buffer size: a buffer must hold one complete packet of the
/// largest size.
pub(super) const BUFFER_SIZE_MIN: usize = 2048;
const _: () = assert!(BUFFER_SIZE_MIN >= crate::protocol::MAX_PACKET_SIZE);

/// The rule of a connection's timeouts: from 50 ms to a day.
pub(super) const TIMEOUT: Secs = Secs {
    min: Duration::from_millis(50),
    max: Duration::from_secs(86400),
};

/// Validation of one raw value.
pub(super) trait Rule {
    type Out;
    /// The typed value, or `None` when `raw` is not accepted.
    fn parse(&self, raw: &str) -> Option<Self::Out>;
    /// Completes "expected …" in the error line.
    fn expected(&self) -> String;
    /// Short form for `--help`; empty when the hint says it all.
    fn accepted(&self) -> String {
        String::new()
    }
    /// `raw` as it may be shown in an error line.
    fn shown(&self, raw: &str) -> String {
        raw.to_owned()
    }
}

/// The untyped face of a [`Rule`], what a [`Setting`](super::Setting)
/// keeps for `--help`.
pub(super) trait Describe {
    /// See [`Rule::accepted`].
    fn accepted(&self) -> String;
}

impl<R: Rule> Describe for R {
    fn accepted(&self) -> String {
        Rule::accepted(self)
    }
}

/// An unsigned integer in `min..=max`, decimal digits only.
pub(super) struct UInt<T> {
    pub(super) min: T,
    pub(super) max: T,
}

impl<T: FromStr + PartialOrd + fmt::Display + Copy> Rule for UInt<T> {
    type Out = T;
    fn parse(&self, raw: &str) -> Option<T> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: T = raw.parse().ok()?;
        (self.min <= n && n <= self.max).then_some(n)
    }
    fn expected(&self) -> String {
        format!("an integer in {}..={}", self.min, self.max)
    }
    fn accepted(&self) -> String {
        format!("{}..={}", self.min, self.max)
    }
}

/// Decimal seconds (`30`, `0.5`; at most 9 decimals) in `min..=max`.
pub(super) struct Secs {
    pub(super) min: Duration,
    pub(super) max: Duration,
}

impl Rule for Secs {
    type Out = Duration;
    fn parse(&self, raw: &str) -> Option<Duration> {
        let d = parse_decimal_secs(raw)?;
        (self.min <= d && d <= self.max).then_some(d)
    }
    fn expected(&self) -> String {
        format!("seconds in {} (decimals allowed)", Rule::accepted(self))
    }
    fn accepted(&self) -> String {
        format!("{}..={}", fmt_secs(self.min), fmt_secs(self.max))
    }
}

/// Whole milliseconds in `min..=max`.
pub(super) struct Millis {
    pub(super) min: u64,
    pub(super) max: u64,
}

impl Rule for Millis {
    type Out = Duration;
    fn parse(&self, raw: &str) -> Option<Duration> {
        UInt {
            min: self.min,
            max: self.max,
        }
        .parse(raw)
        .map(Duration::from_millis)
    }
    fn expected(&self) -> String {
        format!("milliseconds in {}..={}", self.min, self.max)
    }
    fn accepted(&self) -> String {
        format!("{}..={}", self.min, self.max)
    }
}

/// One of a fixed list of names.
pub(super) struct Choice<T: 'static> {
    pub(super) names: &'static [&'static str],
    pub(super) from_name: fn(&str) -> Option<T>,
}

impl<T> Rule for Choice<T> {
    type Out = T;
    fn parse(&self, raw: &str) -> Option<T> {
        (self.from_name)(raw)
    }
    fn expected(&self) -> String {
        match self.names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
    fn accepted(&self) -> String {
        self.names.join("|")
    }
}

pub(super) fn level_from_name(name: &str) -> Option<LevelFilter> {
    LevelFilter::from_str(name).ok()
}

/// `1/true/yes/on` or `0/false/no/off`, any case.
pub(super) struct Bool;

impl Rule for Bool {
    type Out = bool;
    fn parse(&self, raw: &str) -> Option<bool> {
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        }
    }
    fn expected(&self) -> String {
        BOOL_EXPECTED.to_owned()
    }
}

/// An IPv4 or IPv6 address.
pub(super) struct Ip;

impl Rule for Ip {
    type Out = IpAddr;
    fn parse(&self, raw: &str) -> Option<IpAddr> {
        raw.parse().ok()
    }
    fn expected(&self) -> String {
        "an IPv4 or IPv6 address".to_owned()
    }
}

/// An IPv4 address a client can connect to (not 0.0.0.0, not broadcast).
pub(super) struct PublicIpv4;

impl Rule for PublicIpv4 {
    type Out = Ipv4Addr;
    fn parse(&self, raw: &str) -> Option<Ipv4Addr> {
        let addr: Ipv4Addr = raw.parse().ok()?;
        (!addr.is_unspecified() && !addr.is_broadcast()).then_some(addr)
    }
    fn expected(&self) -> String {
        "an IPv4 address clients can reach (not 0.0.0.0 or 255.255.255.255)".to_owned()
    }
}

/// `ADDR:PORT` (`[v6]:PORT` for IPv6).
pub(super) struct Sock;

impl Rule for Sock {
    type Out = SocketAddr;
    fn parse(&self, raw: &str) -> Option<SocketAddr> {
        raw.parse().ok()
    }
    fn expected(&self) -> String {
        "ADDR:PORT, e.g. 127.0.0.1:29100 or [::1]:29100".to_owned()
    }
}

/// A gRPC endpoint URL.
pub(super) struct Url;

impl Rule for Url {
    type Out = String;
    fn parse(&self, raw: &str) -> Option<String> {
        let lower = raw.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))?;
        let well_formed = !rest.is_empty()
            && !rest.starts_with('/')
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        well_formed.then(|| raw.to_owned())
    }
    fn expected(&self) -> String {
        "a URL starting with http:// or https://, e.g. http://127.0.0.1:50051".to_owned()
    }
}

/// The most URLs one service may be given.
pub(super) const MAX_URLS: usize = 32;

/// Comma-separated [`Url`]s: at least one, at most [`MAX_URLS`], none twice.
pub(super) struct Urls;

impl Rule for Urls {
    type Out = Vec<String>;
    fn parse(&self, raw: &str) -> Option<Vec<String>> {
        let urls: Vec<String> = raw
            .split(',')
            .map(|part| Url.parse(part.trim()))
            .collect::<Option<_>>()?;
        let distinct = urls
            .iter()
            .enumerate()
            .all(|(i, url)| !urls[..i].contains(url));
        (distinct && urls.len() <= MAX_URLS).then_some(urls)
    }
    fn expected(&self) -> String {
        format!(
            "1..={MAX_URLS} distinct URLs separated by commas, each starting with http:// or \
             https://, e.g. http://10.0.0.5:29100,http://10.0.0.6:29100"
        )
    }
}

/// `RUST_LOG` directives: `LEVEL`, `TARGET=LEVEL`, comma-separated.
pub(super) struct LogFilter;

impl Rule for LogFilter {
    type Out = String;
    fn parse(&self, raw: &str) -> Option<String> {
        crate::logging::check_filter(raw).then(|| raw.to_owned())
    }
    fn expected(&self) -> String {
        "comma-separated directives LEVEL or TARGET=LEVEL, \
         e.g. packet_service::reactor=debug,h2=info"
            .to_owned()
    }
}

/// A database URL ([`DatabaseUrl`](crate::backend::store::DatabaseUrl));
/// its password never appears in an error line.
pub(super) struct Database;

impl Rule for Database {
    type Out = crate::backend::store::DatabaseUrl;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        crate::backend::store::DatabaseUrl::parse(raw)
    }
    fn expected(&self) -> String {
        crate::backend::store::DatabaseUrl::EXPECTED.to_owned()
    }
    fn shown(&self, raw: &str) -> String {
        crate::backend::store::url::redact(raw)
    }
}

/// A file path (not checked for existence here).
pub(super) struct FilePath;

impl Rule for FilePath {
    type Out = PathBuf;
    fn parse(&self, raw: &str) -> Option<PathBuf> {
        (!raw.is_empty() && !raw.contains('\0')).then(|| PathBuf::from(raw))
    }
    fn expected(&self) -> String {
        "a file path".to_owned()
    }
}

/// Text of `1..=max_bytes` bytes without NUL.
pub(super) struct Name {
    pub(super) max_bytes: usize,
}

impl Rule for Name {
    type Out = String;
    fn parse(&self, raw: &str) -> Option<String> {
        let fits = (1..=self.max_bytes).contains(&raw.len()) && !raw.contains('\0');
        fits.then(|| raw.to_owned())
    }
    fn expected(&self) -> String {
        format!("1..={} bytes without NUL", self.max_bytes)
    }
    fn accepted(&self) -> String {
        format!("1..={} bytes", self.max_bytes)
    }
}

/// A comma-separated list of [`crate::cidr::parse`] networks, at least one.
pub(super) struct Cidrs;

impl Rule for Cidrs {
    type Out = Vec<(IpAddr, u8)>;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        raw.split(',')
            .map(|part| crate::cidr::parse(part.trim()))
            .collect()
    }
    fn expected(&self) -> String {
        "a comma-separated list of ADDR/PREFIX, e.g. 10.0.0.0/8,::1/128 \
         (prefix at most 32 for IPv4 and 128 for IPv6, no bits set after the prefix)"
            .to_owned()
    }
}

/// Comma-separated seeds of irose key tables: u32s in decimal or `0x` hex,
/// none 0, at most [`MAX_PREPARED_SEEDS`] distinct.
pub(super) struct Seeds;

impl Rule for Seeds {
    type Out = Vec<Seed>;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        let seeds: Vec<Seed> = raw
            .split(',')
            .map(|part| {
                let part = part.trim();
                let value = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                    Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        u32::from_str_radix(hex, 16).ok()
                    }
                    Some(_) => None,
                    None if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                        part.parse().ok()
                    }
                    None => None,
                };
                value.and_then(Seed::new)
            })
            .collect::<Option<_>>()?;
        let mut distinct = seeds.clone();
        distinct.sort_unstable_by_key(|s| s.get());
        distinct.dedup();
        (distinct.len() <= MAX_PREPARED_SEEDS).then_some(seeds)
    }
    fn expected(&self) -> String {
        format!(
            "a comma-separated list of non-zero u32 seeds (decimal or 0x hex), \
             at most {MAX_PREPARED_SEEDS} distinct"
        )
    }
}

/// Comma-separated `USER:PASSWORD` entries (the environment form); each
/// flag gives one [`entry`](Accounts::entry), commas included.
pub(super) struct Accounts;

impl Accounts {
    /// One `USER:PASSWORD`, as a flag gives it.
    pub(super) fn entry(&self, raw: &str) -> Option<(String, String)> {
        parse_account(raw)
    }
}

/// Longest user name a LOGIN_REQ can carry (docs/protocol.md §9 D4).
const MAX_USER_BYTES: usize = 20;

impl Rule for Accounts {
    type Out = Vec<(String, String)>;
    fn parse(&self, raw: &str) -> Option<Self::Out> {
        raw.split(',').map(parse_account).collect()
    }
    fn expected(&self) -> String {
        format!(
            "USER:PASSWORD entries separated by commas, the user 1..={MAX_USER_BYTES} bytes \
             without ':', ',' or control characters, the password not empty"
        )
    }
    fn shown(&self, raw: &str) -> String {
        raw.split(',')
            .map(|entry| match entry.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                // Without a separator the entry may well be a password.
                None => "***".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_account(entry: &str) -> Option<(String, String)> {
    let (user, password) = entry.split_once(':')?;
    let user_ok = (1..=MAX_USER_BYTES).contains(&user.len())
        && !user.chars().any(|c| c.is_control() || c == ',');
    let password_ok = !password.is_empty() && !password.contains('\0');
    (user_ok && password_ok).then(|| (user.to_owned(), password.to_owned()))
}

/// `digits[.digits]`, at most 9 decimals; no sign, no exponent.
pub(super) fn parse_decimal_secs(raw: &str) -> Option<Duration> {
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (raw, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = !raw.contains('.') || (1..=9).contains(&fraction.len());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || !fraction_ok {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut nanos = 0u32;
    for i in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(Duration::new(secs, nanos))
}

/// Seconds with only the decimals needed: `30`, `0.05`.
pub(super) fn fmt_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let fraction = format!("{:09}", d.subsec_nanos());
    format!("{}.{}", d.as_secs(), fraction.trim_end_matches('0'))
}
