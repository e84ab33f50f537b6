//! Which IP addresses a module's request may connect to, and a DNS resolver
//! that enforces it on the addresses it hands to the connector, so what was
//! checked is what is connected to (no second lookup an attacker's DNS server
//! could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Where an address points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the internet.
    Public,
    /// Loopback, private, link-local, CGNAT, ...: the owner's own machines.
    /// Reachable only through a host approved with `allow_private`.
    Private(&'static str),
    /// A cloud instance-metadata endpoint, which hands out the machine's
    /// cloud credentials. Never reachable.
    Metadata,
}

/// What `ip` is, judging IPv4 hidden in IPv6 (mapped, NAT64, 6to4) as
/// IPv4.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        // AWS (IMDS, ECS task and EKS Pod Identity), Alibaba, Oracle Cloud.
        (169, 254, 169, 254)
        | (169, 254, 170, 2)
        | (169, 254, 170, 23)
        | (100, 100, 100, 200)
        | (192, 0, 0, 192) => Metadata,
        _ if ip.is_loopback() => Private("a loopback address"),
        _ if ip.is_unspecified() || a == 0 => Private("an unspecified address"),
        _ if ip.is_private() => Private("a private network address"),
        _ if ip.is_link_local() => Private("a link-local address"),
        (100, 64..=127, _, _) => Private("a carrier-grade NAT address"),
        (192, 0, 0, _) | (198, 18..=19, _, _) => Private("a reserved address"),
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => Private("a documentation address"),
        _ if ip.is_broadcast() || ip.is_multicast() || a >= 240 => {
            Private("a broadcast, multicast or reserved address")
        }
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    // AWS IMDS and EKS Pod Identity over IPv6.
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
    {
        return Metadata;
    }
    let segments = ip.segments();
    let v4_at = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // Addresses that embed an IPv4 address are judged by it: mapped
    // (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96),
    // 6to4 (2002::/16) and Teredo (2001::/32, the client address inverted).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return classify_v4(v4_at(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(v4_at(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return classify_v4(v4_at(segments[1], segments[2]));
    }
    if segments[..2] == [0x2001, 0] {
        return classify_v4(v4_at(!segments[6], !segments[7]));
    }
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Private("a local-use NAT64 address");
    }
    if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        return Private("a documentation address");
    }
    if segments[0] & 0xffc0 == 0xfec0 {
        return Private("a site-local address");
    }
    if ip.is_loopback() {
        Private("a loopback address")
    } else if ip.is_unspecified() {
        Private("an unspecified address")
    } else if ip.is_unique_local() {
        Private("a private network address")
    } else if ip.is_unicast_link_local() {
        Private("a link-local address")
    } else if ip.is_multicast() {
        Private("a multicast address")
    } else {
        Public
    }
}

/// Whether `ip` is one of this machine's own interface addresses: a public
/// address of the host itself reaches every service listening on all
/// interfaces, which is the owner's own network however it is routed.
fn is_own_address(ip: IpAddr) -> bool {
    if_addrs::get_if_addrs()
        .map(|interfaces| interfaces.iter().any(|i| i.ip() == ip))
        .unwrap_or(false)
}

/// Why an address may not be connected to, or `None` when it may.
pub fn refusal(ip: IpAddr, allow_private: bool) -> Option<String> {
    match classify(ip) {
        AddressClass::Public if !allow_private && is_own_address(ip) => {
            Some(format!("{ip} is an address of this machine"))
        }
        AddressClass::Public => None,
        AddressClass::Private(_) if allow_private => None,
        AddressClass::Private(what) => Some(format!("{ip} is {what}")),
        AddressClass::Metadata => Some(format!(
            "{ip} is a cloud metadata endpoint, which is never reachable from a module"
        )),
    }
}

/// The resolver's refusal, found again in reqwest's error chain.
#[derive(Debug)]
pub struct ForbiddenAddress {
    pub host: String,
    pub reason: String,
}

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to {}", self.host, self.reason)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Resolves with the system resolver, then refuses the whole answer if any
/// address is forbidden: a name that mixes public and private addresses is
/// how DNS rebinding starts.
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                if let Some(reason) = refusal(addr.ip(), allow_private) {
                    return Err(Box::new(ForbiddenAddress { host, reason }) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> AddressClass {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn private_and_metadata_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "2001:db8::1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b:1::a00:1",
            "fec0::1",
            // Teredo with client 127.0.0.1 (inverted: 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(matches!(class(ip), AddressClass::Private(_)), "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "169.254.170.23",
            "fd00:ec2::23",
            "192.0.0.192",
            "::169.254.169.254",
        ] {
            assert_eq!(class(ip), AddressClass::Metadata, "{ip}");
        }
        for ip in ["140.82.112.6", "1.1.1.1", "2606:4700::1111"] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
        assert!(refusal("169.254.169.254".parse().unwrap(), true).is_some());
        assert!(refusal("127.0.0.1".parse().unwrap(), true).is_none());
    }

    #[test]
    fn the_machines_own_addresses_are_refused_without_allow_private() {
        let own: Vec<IpAddr> = if_addrs::get_if_addrs()
            .unwrap()
            .iter()
            .map(|i| i.ip())
            .collect();
        for ip in own {
            let reason = refusal(ip, false).unwrap_or_else(|| panic!("{ip} was allowed"));
            assert!(reason.contains(&ip.to_string()), "{reason}");
            assert!(refusal(ip, true).is_none() || classify(ip) == AddressClass::Metadata);
        }
    }
}
