//! The outbound address policy: which IP addresses a webhook may reach. By default only
//! public unicast addresses; loopback, private, link-local, CGNAT, multicast, unspecified,
//! broadcast, reserved, documentation and cloud-metadata addresses are refused, IPv4 and
//! IPv6, including IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64, 6to4), which
//! are judged by the address they embed. An operator lists CIDRs to allow (tests allow
//! loopback); an allowed CIDR wins over every refusal.
//!
//! This is server-side request forgery protection: an endpoint URL is chosen by a workspace
//! user, and without it `http://169.254.169.254/` would read the host's cloud credentials.
//! The policy is a pure function of an address; [`crate::client`] applies it to the address
//! actually connected to, after DNS, so a name that resolves to a public address when the
//! endpoint is saved and to a private one when the request is made (DNS rebinding) is still
//! refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Which addresses outbound requests may reach. `Default` refuses every special range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

/// The kind of special range an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    Unspecified,
    ThisNetwork,
    Loopback,
    Private,
    Cgnat,
    LinkLocal,
    CloudMetadata,
    IetfProtocol,
    Documentation,
    SixToFourRelay,
    Benchmarking,
    Multicast,
    Broadcast,
    Reserved,
    Ipv4Compatible,
    Ipv4Translated,
    LocalNat64,
    DiscardOnly,
    Teredo,
    UniqueLocal,
    SiteLocal,
    NotGlobalUnicast,
}

impl fmt::Display for RangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeKind::Unspecified => "unspecified",
            RangeKind::ThisNetwork => "\"this network\"",
            RangeKind::Loopback => "loopback",
            RangeKind::Private => "private",
            RangeKind::Cgnat => "carrier-grade NAT",
            RangeKind::LinkLocal => "link-local",
            RangeKind::CloudMetadata => "a cloud metadata service",
            RangeKind::IetfProtocol => "reserved for IETF protocols",
            RangeKind::Documentation => "reserved for documentation",
            RangeKind::SixToFourRelay => "the 6to4 relay anycast",
            RangeKind::Benchmarking => "reserved for benchmarking",
            RangeKind::Multicast => "multicast",
            RangeKind::Broadcast => "broadcast",
            RangeKind::Reserved => "reserved",
            RangeKind::Ipv4Compatible => "IPv4-compatible (deprecated)",
            RangeKind::Ipv4Translated => "IPv4-translated",
            RangeKind::LocalNat64 => "local-use NAT64",
            RangeKind::DiscardOnly => "discard-only",
            RangeKind::Teredo => "Teredo",
            RangeKind::UniqueLocal => "unique local",
            RangeKind::SiteLocal => "site-local (deprecated)",
            RangeKind::NotGlobalUnicast => "outside global unicast",
        })
    }
}

/// Why an address was refused: the range it is in, and the IPv4 address it embeds when that
/// is what was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub ip: IpAddr,
    pub kind: RangeKind,
    pub range: IpNet,
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => write!(f, "address {} is {} ({})", self.ip, self.kind, self.range),
            Some(v4) => write!(f, "address {} embeds {v4}, which is {} ({})", self.ip, self.kind, self.range),
        }
    }
}

/// An allow-list entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8")]
pub struct AllowListError {
    pub entry: String,
}

impl AddressPolicy {
    /// The default policy plus these networks, which are allowed whatever else they are.
    pub fn allowing(nets: impl IntoIterator<Item = IpNet>) -> AddressPolicy {
        AddressPolicy { allowed: nets.into_iter().map(|net| net.trunc()).collect() }
    }

    /// Parses an operator's allow list: CIDRs or single addresses separated by commas or
    /// white space (`"127.0.0.0/8, ::1"`). An empty list is the default policy.
    pub fn from_allow_list(list: &str) -> Result<AddressPolicy, AllowListError> {
        let nets = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| AllowListError { entry: entry.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AddressPolicy::allowing(nets))
    }

    /// The networks allowed beyond the default.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a request may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        match ip {
            IpAddr::V4(v4) => match special_v4(v4) {
                Some((kind, range)) => Err(Refusal { ip, kind, range: range.into(), embedded: None }),
                None => Ok(()),
            },
            IpAddr::V6(v6) => {
                if let Some(v4) = embedded_v4(v6) {
                    if self.is_allowed(IpAddr::V4(v4)) {
                        return Ok(());
                    }
                    return match special_v4(v4) {
                        Some((kind, range)) => Err(Refusal { ip, kind, range: range.into(), embedded: Some(v4) }),
                        None => Ok(()),
                    };
                }
                match special_v6(v6) {
                    Some((kind, range)) => Err(Refusal { ip, kind, range: range.into(), embedded: None }),
                    None => Ok(()),
                }
            }
        }
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 special ranges (IANA's special-purpose registry and then some), most specific
/// first: the first match names the refusal.
const SPECIAL_V4: &[(Ipv4Net, RangeKind)] = &[
    (v4(0, 0, 0, 0, 32), RangeKind::Unspecified),
    (v4(0, 0, 0, 0, 8), RangeKind::ThisNetwork),
    (v4(10, 0, 0, 0, 8), RangeKind::Private),
    // Alibaba Cloud's metadata service sits inside the CGNAT range.
    (v4(100, 100, 100, 200, 32), RangeKind::CloudMetadata),
    (v4(100, 64, 0, 0, 10), RangeKind::Cgnat),
    (v4(127, 0, 0, 0, 8), RangeKind::Loopback),
    // AWS, GCP, Azure, DigitalOcean, OpenStack…; then AWS ECS task metadata.
    (v4(169, 254, 169, 254, 32), RangeKind::CloudMetadata),
    (v4(169, 254, 170, 2, 32), RangeKind::CloudMetadata),
    (v4(169, 254, 0, 0, 16), RangeKind::LinkLocal),
    (v4(172, 16, 0, 0, 12), RangeKind::Private),
    // Oracle Cloud's metadata service.
    (v4(192, 0, 0, 192, 32), RangeKind::CloudMetadata),
    (v4(192, 0, 0, 0, 24), RangeKind::IetfProtocol),
    (v4(192, 0, 2, 0, 24), RangeKind::Documentation),
    (v4(192, 88, 99, 0, 24), RangeKind::SixToFourRelay),
    (v4(192, 168, 0, 0, 16), RangeKind::Private),
    (v4(198, 18, 0, 0, 15), RangeKind::Benchmarking),
    (v4(198, 51, 100, 0, 24), RangeKind::Documentation),
    (v4(203, 0, 113, 0, 24), RangeKind::Documentation),
    (v4(224, 0, 0, 0, 4), RangeKind::Multicast),
    (v4(255, 255, 255, 255, 32), RangeKind::Broadcast),
    (v4(240, 0, 0, 0, 4), RangeKind::Reserved),
];

/// IPv6 special ranges, most specific first. The embedding prefixes (IPv4-mapped, NAT64,
/// 6to4) are not here: [`embedded_v4`] handles them before this table is read.
const SPECIAL_V6: &[(Ipv6Net, RangeKind)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), RangeKind::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), RangeKind::Loopback),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), RangeKind::Ipv4Compatible),
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), RangeKind::Ipv4Translated),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), RangeKind::LocalNat64),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), RangeKind::DiscardOnly),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), RangeKind::Teredo),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), RangeKind::IetfProtocol),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), RangeKind::Documentation),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), RangeKind::Documentation),
    // AWS's IPv6 instance metadata service.
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), RangeKind::CloudMetadata),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), RangeKind::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), RangeKind::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), RangeKind::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), RangeKind::Multicast),
];

/// Global unicast: every public IPv6 address is in it; what lies outside and is not listed
/// above is unassigned, and reaching it would mean a route someone built on purpose.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

const MAPPED: Ipv6Net = v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96);
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

fn special_v4(ip: Ipv4Addr) -> Option<(RangeKind, Ipv4Net)> {
    SPECIAL_V4.iter().find(|(net, _)| net.contains(&ip)).map(|&(net, kind)| (kind, net))
}

fn special_v6(ip: Ipv6Addr) -> Option<(RangeKind, Ipv6Net)> {
    SPECIAL_V6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|&(net, kind)| (kind, net))
        .or_else(|| (!GLOBAL_UNICAST.contains(&ip)).then_some((RangeKind::NotGlobalUnicast, GLOBAL_UNICAST)))
}

/// The IPv4 address an IPv6 address stands for, where it stands for one: IPv4-mapped
/// (`::ffff:a.b.c.d`, which the socket layer connects to over IPv4), NAT64 (`64:ff9b::a.b.c.d`,
/// which a NAT64 gateway forwards to a.b.c.d) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    if MAPPED.contains(&ip) || NAT64.contains(&ip) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn refusal(policy: &AddressPolicy, ip: &str) -> Option<(RangeKind, String)> {
        policy.check(ip.parse().unwrap()).err().map(|r| (r.kind, r.range.to_string()))
    }

    #[test]
    fn default_refusals() {
        use RangeKind::*;
        let cases: &[(&str, RangeKind, &str)] = &[
            ("0.0.0.0", Unspecified, "0.0.0.0/32"),
            ("0.1.2.3", ThisNetwork, "0.0.0.0/8"),
            ("10.0.0.1", Private, "10.0.0.0/8"),
            ("10.255.255.255", Private, "10.0.0.0/8"),
            ("100.64.0.1", Cgnat, "100.64.0.0/10"),
            ("100.127.255.254", Cgnat, "100.64.0.0/10"),
            ("100.100.100.200", CloudMetadata, "100.100.100.200/32"),
            ("127.0.0.1", Loopback, "127.0.0.0/8"),
            ("127.255.0.9", Loopback, "127.0.0.0/8"),
            ("169.254.169.254", CloudMetadata, "169.254.169.254/32"),
            ("169.254.170.2", CloudMetadata, "169.254.170.2/32"),
            ("169.254.1.1", LinkLocal, "169.254.0.0/16"),
            ("172.16.0.1", Private, "172.16.0.0/12"),
            ("172.31.255.255", Private, "172.16.0.0/12"),
            ("192.0.0.192", CloudMetadata, "192.0.0.192/32"),
            ("192.0.0.8", IetfProtocol, "192.0.0.0/24"),
            ("192.0.2.10", Documentation, "192.0.2.0/24"),
            ("192.88.99.1", SixToFourRelay, "192.88.99.0/24"),
            ("192.168.1.1", Private, "192.168.0.0/16"),
            ("198.18.0.1", Benchmarking, "198.18.0.0/15"),
            ("198.19.255.1", Benchmarking, "198.18.0.0/15"),
            ("198.51.100.7", Documentation, "198.51.100.0/24"),
            ("203.0.113.7", Documentation, "203.0.113.0/24"),
            ("224.0.0.1", Multicast, "224.0.0.0/4"),
            ("239.255.255.250", Multicast, "224.0.0.0/4"),
            ("240.0.0.1", Reserved, "240.0.0.0/4"),
            ("255.255.255.255", Broadcast, "255.255.255.255/32"),
            ("::", Unspecified, "::/128"),
            ("::1", Loopback, "::1/128"),
            ("::7f00:1", Ipv4Compatible, "::/96"),
            ("::ffff:0:a00:1", Ipv4Translated, "::ffff:0:0:0/96"),
            ("64:ff9b:1::1", LocalNat64, "64:ff9b:1::/48"),
            ("100::1", DiscardOnly, "100::/64"),
            ("2001::1", Teredo, "2001::/32"),
            ("2001:4:112::1", IetfProtocol, "2001::/23"),
            ("2001:db8::1", Documentation, "2001:db8::/32"),
            ("3fff::1", Documentation, "3fff::/20"),
            ("fd00:ec2::254", CloudMetadata, "fd00:ec2::254/128"),
            ("fc00::1", UniqueLocal, "fc00::/7"),
            ("fd12:3456::1", UniqueLocal, "fc00::/7"),
            ("fe80::1", LinkLocal, "fe80::/10"),
            ("febf::1", LinkLocal, "fe80::/10"),
            ("fec0::1", SiteLocal, "fec0::/10"),
            ("ff02::1", Multicast, "ff00::/8"),
            ("4000::1", NotGlobalUnicast, "2000::/3"),
            ("1::1", NotGlobalUnicast, "2000::/3"),
            // Embedded IPv4, judged by what it embeds.
            ("::ffff:127.0.0.1", Loopback, "127.0.0.0/8"),
            ("::ffff:169.254.169.254", CloudMetadata, "169.254.169.254/32"),
            ("::ffff:10.1.2.3", Private, "10.0.0.0/8"),
            ("::ffff:0.0.0.0", Unspecified, "0.0.0.0/32"),
            ("64:ff9b::7f00:1", Loopback, "127.0.0.0/8"),
            ("64:ff9b::a9fe:a9fe", CloudMetadata, "169.254.169.254/32"),
            ("2002:c0a8:101::1", Private, "192.168.0.0/16"),
            ("2002:7f00:1::", Loopback, "127.0.0.0/8"),
        ];
        let policy = AddressPolicy::default();
        for (ip, kind, range) in cases {
            assert_eq!(refusal(&policy, ip), Some((*kind, (*range).to_owned())), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = AddressPolicy::default();
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.0.1.1",
            "192.167.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(policy.check(ip.parse().unwrap()), Ok(()), "{ip}");
        }
    }

    #[test]
    fn allow_list_wins() {
        let policy = AddressPolicy::from_allow_list("127.0.0.0/8, ::1 10.1.0.0/16,,").unwrap();
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "10.1.255.1"] {
            assert_eq!(policy.check(ip.parse().unwrap()), Ok(()), "{ip}");
        }
        assert_eq!(refusal(&policy, "10.2.0.1"), Some((RangeKind::Private, "10.0.0.0/8".to_owned())));
        assert_eq!(refusal(&policy, "169.254.169.254").map(|r| r.0), Some(RangeKind::CloudMetadata));
        assert_eq!(refusal(&policy, "::2").map(|r| r.0), Some(RangeKind::Ipv4Compatible));
        assert_eq!(policy.allowed().len(), 3);

        let metadata = AddressPolicy::allowing(["169.254.0.0/16".parse().unwrap()]);
        assert_eq!(metadata.check("169.254.169.254".parse().unwrap()), Ok(()));
        // Host bits are dropped.
        assert_eq!(AddressPolicy::allowing(["10.9.8.7/8".parse().unwrap()]).allowed()[0].to_string(), "10.0.0.0/8");
    }

    #[test]
    fn allow_list_parsing() {
        assert_eq!(AddressPolicy::from_allow_list("").unwrap(), AddressPolicy::default());
        assert_eq!(AddressPolicy::from_allow_list(" \n ").unwrap(), AddressPolicy::default());
        assert_eq!(
            AddressPolicy::from_allow_list("127.0.0.0/8,localhost"),
            Err(AllowListError { entry: "localhost".to_owned() })
        );
        assert_eq!(
            AddressPolicy::from_allow_list("10.0.0.0/33"),
            Err(AllowListError { entry: "10.0.0.0/33".to_owned() })
        );
    }

    #[test]
    fn refusals_read_as_sentences() {
        let policy = AddressPolicy::default();
        let text = |ip: &str| policy.check(ip.parse().unwrap()).unwrap_err().to_string();
        assert_eq!(text("10.0.0.1"), "address 10.0.0.1 is private (10.0.0.0/8)");
        assert_eq!(text("169.254.169.254"), "address 169.254.169.254 is a cloud metadata service (169.254.169.254/32)");
        assert_eq!(
            text("::ffff:127.0.0.1"),
            "address ::ffff:127.0.0.1 embeds 127.0.0.1, which is loopback (127.0.0.0/8)"
        );
        assert_eq!(text("fe80::1"), "address fe80::1 is link-local (fe80::/10)");
    }

    #[test]
    fn ranges_are_normalised_and_ordered() {
        // Every table entry is written as its network address, and no entry is shadowed by
        // an earlier one that contains it.
        for (i, (net, _)) in SPECIAL_V4.iter().enumerate() {
            assert_eq!(*net, net.trunc(), "{net}");
            assert!(!SPECIAL_V4[..i].iter().any(|(earlier, _)| earlier.contains(net)), "{net} shadowed");
        }
        for (i, (net, _)) in SPECIAL_V6.iter().enumerate() {
            assert_eq!(*net, net.trunc(), "{net}");
            assert!(!SPECIAL_V6[..i].iter().any(|(earlier, _)| earlier.contains(net)), "{net} shadowed");
        }
    }
}
