//! Who the client of a request is, for every per-client limit: the peer address, or — when the
//! peer is a trusted proxy (`DIRSYNC_TRUSTED_PROXIES`) — the address the proxies forwarded.
//!
//! Forwarding headers are written by each proxy appending the address it received the request
//! from, so only their right end is trustworthy: everything left of the first address that is not
//! a trusted proxy was written by the client itself. IPv6 clients are counted per /64, the
//! smallest network a subscriber gets: a host picks any address in it at will, so counting single
//! addresses would give it 2^64 buckets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A block of addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a
/// block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask4(a, self.prefix) == n,
            (IpAddr::V6(n), IpAddr::V6(a)) => mask6(a, self.prefix) == n,
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an IP address or CIDR block (like 10.0.0.0/8)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let (ip, prefix) = match (ip, prefix) {
            // `::ffff:10.0.0.0/104` is written for dual-stack sockets; peers are compared as IPv4.
            (IpAddr::V6(v6), p) if v6.to_ipv4_mapped().is_some() && p.is_none_or(|p| p >= 96) => (
                IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
                p.map(|p| p - 96),
            ),
            other => other,
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        let network = match ip {
            IpAddr::V4(a) => IpAddr::V4(mask4(a, prefix)),
            IpAddr::V6(a) => IpAddr::V6(mask6(a, prefix)),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What a per-client limit counts: an IPv4 address or an IPv6 /64. Copy and hashable, so that a
/// limit can be looked up on every request without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    /// The client that `ip` belongs to.
    pub fn new(ip: IpAddr) -> ClientAddr {
        match canonical(ip) {
            IpAddr::V6(a) => ClientAddr(IpAddr::V6(mask6(a, 64))),
            v4 => ClientAddr(v4),
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The client of a request that arrived from `peer` carrying these `X-Forwarded-For` and
/// `Forwarded` header values (each in the order received).
///
/// Headers are read only when `peer` is in `trusted`; then each is walked from the right and the
/// first address that is not itself a trusted proxy is the client (when all are, the left-most).
/// An entry that names no address (`unknown`, an obfuscated name) ends the walk at the trusted
/// hop that wrote it. When both headers are present and name different clients, one of them was
/// written by the client, and which one depends on the proxy: the request is then counted
/// against the proxy's own address, a bucket that requests with consistent headers never use, so
/// a forged header buys nothing.
pub fn client_addr<'a>(
    peer: IpAddr,
    trusted: &[Cidr],
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
) -> ClientAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return ClientAddr::new(peer);
    }
    let xff = walk(
        peer,
        &is_trusted,
        forwarded_for.rev().flat_map(|v| v.rsplit(',')).map(node),
    );
    let fwd = walk(
        peer,
        &is_trusted,
        forwarded
            .rev()
            .flat_map(|v| v.rsplit(','))
            .map(|element| element.split(';').find_map(for_param).and_then(node)),
    );
    match (xff, fwd) {
        (Some(a), Some(b)) if a != b => ClientAddr::new(peer),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => ClientAddr::new(peer),
    }
}

/// Walks one header's addresses, right to left; `None` when the header names none.
fn walk(
    peer: IpAddr,
    is_trusted: &impl Fn(IpAddr) -> bool,
    entries: impl Iterator<Item = Option<IpAddr>>,
) -> Option<ClientAddr> {
    let mut last_trusted = None;
    for entry in entries {
        match entry {
            Some(ip) if !is_trusted(ip) => return Some(ClientAddr::new(ip)),
            Some(ip) => last_trusted = Some(ip),
            None => return Some(ClientAddr::new(last_trusted.unwrap_or(peer))),
        }
    }
    last_trusted.map(ClientAddr::new)
}

/// The value of a `for=` pair of a `Forwarded` element (RFC 7239; names are case-insensitive).
fn for_param(pair: &str) -> Option<&str> {
    let (name, value) = pair.trim().split_once('=')?;
    name.trim().eq_ignore_ascii_case("for").then_some(value)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, possibly quoted.
fn node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) as the IPv4 addresses they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask4(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(a);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(bits & mask)
}

fn mask6(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(a);
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(bits & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn client(peer: &str, trusted: &[&str], xff: &[&str], fwd: &[&str]) -> String {
        client_addr(
            peer.parse().unwrap(),
            &cidrs(trusted),
            xff.iter().copied(),
            fwd.iter().copied(),
        )
        .to_string()
    }

    #[test]
    fn cidr_blocks_parse_and_contain() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_ignored_unless_the_peer_is_trusted() {
        assert_eq!(client("192.0.2.1", &[], &["203.0.113.9"], &[]), "192.0.2.1");
        assert_eq!(
            client("192.0.2.1", &["10.0.0.0/8"], &["203.0.113.9"], &[]),
            "192.0.2.1"
        );
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let t = &["10.0.0.0/8"];
        // The client wrote the left part itself.
        assert_eq!(
            client("10.0.0.1", t, &["6.6.6.6, 203.0.113.9, 10.0.0.2"], &[]),
            "203.0.113.9"
        );
        // Several header lines are one list.
        assert_eq!(
            client("10.0.0.1", t, &["6.6.6.6", "203.0.113.9:4711"], &[]),
            "203.0.113.9"
        );
        // Only proxies: the farthest one.
        assert_eq!(
            client("10.0.0.1", t, &["10.0.0.3, 10.0.0.2"], &[]),
            "10.0.0.3"
        );
        // An unknown hop: counted against the trusted proxy that wrote it.
        assert_eq!(
            client("10.0.0.1", t, &["203.0.113.9, unknown"], &[]),
            "10.0.0.1"
        );
        assert_eq!(client("10.0.0.1", t, &[], &[]), "10.0.0.1");
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for() {
        let t = &["10.0.0.0/8"];
        assert_eq!(
            client(
                "10.0.0.1",
                t,
                &[],
                &["for=6.6.6.6, For=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.2"]
            ),
            "2001:db8:cafe::/64"
        );
        assert_eq!(
            client("10.0.0.1", t, &[], &["proto=https;for=203.0.113.9"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn headers_that_disagree_count_against_the_proxy() {
        let t = &["10.0.0.0/8"];
        assert_eq!(
            client("10.0.0.1", t, &["203.0.113.9"], &["for=198.51.100.1"]),
            "10.0.0.1"
        );
        assert_eq!(
            client("10.0.0.1", t, &["203.0.113.9"], &["for=203.0.113.9"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = ClientAddr::new("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr::new("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = ClientAddr::new("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::new("::ffff:192.0.2.1".parse().unwrap()).to_string(),
            "192.0.2.1"
        );
    }
}
