//! Security groups and network ACLs, read as Prowler's `lib/security_groups.py` and
//! `lib/network_acls.py` read them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{every, pass, verdict, Check, Estate, Rule, Verdict};
use crate::world::{Finding, FindingStatus, NetworkAcl, ResourceKind, SecurityGroup, SecurityGroupRule, Severity};

/// The port-by-port group checks: Prowler's id and the TCP ports it looks at.
pub(super) const GROUP_PORT_CHECKS: &[(&str, &[i32])] = &[
    ("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", &[22]),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389",
        &[3389],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_cassandra_7199_9160_8888",
        &[7199, 9160, 8888],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_elasticsearch_kibana_9200_9300_5601",
        &[9200, 9300, 5601],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_ftp_20_21",
        &[20, 21],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_kafka_9092",
        &[9092],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_memcached_11211",
        &[11211],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mongodb_27017_27018",
        &[27017, 27018],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306",
        &[3306],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_oracle_1521_2483",
        &[1521, 2483],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_postgres_5432",
        &[5432],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_redis_6379",
        &[6379],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_sql_server_1433_1434",
        &[1433, 1434],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_telnet_23",
        &[23],
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports",
        &HIGH_RISK_PORTS,
    ),
];

/// Prowler's default `ec2_high_risk_ports`.
pub(crate) const HIGH_RISK_PORTS: [i32; 11] = [25, 110, 135, 143, 445, 3000, 4333, 5000, 5500, 8080, 8088];

/// Ports Trusted Advisor rates green when open to the internet.
const GREEN_PORTS: &[i32] = &[25, 80, 443, 465];

/// Prowler's `ec2_allowed_interface_types` and `ec2_allowed_instance_owners` defaults: a group
/// used only by these may be open to the internet.
const ALLOWED_INTERFACE_TYPES: &[&str] = &["api_gateway_managed", "vpc_endpoint"];
const ALLOWED_INSTANCE_OWNERS: &[&str] = &["amazon-elb"];

/// Prowler's `max_security_group_rules`.
const MAX_RULES: usize = 50;

/// Whether `rule` lets traffic of `protocol` (`-1` for any) reach one of `ports` from the
/// internet, as Prowler's `check_security_group` decides it.
///
/// - A rule of every protocol (`-1`) open to the internet matches any question.
/// - Otherwise the protocols must agree, the rule must have ports, and some range must be open.
///   It then matches when one of `ports` is in its range, when the range is the whole 0–65535,
///   or when `all_ports` asks about any port at all (`ports` empty).
/// - "Internet" is `0.0.0.0/0` or `::/0`; with `any_address` false, any global address too.
pub(crate) fn rule_matches(
    rule: &SecurityGroupRule,
    protocol: &str,
    ports: &[i32],
    any_address: bool,
    all_ports: bool,
) -> bool {
    let public = |cidr: &String| is_wildcard(cidr) || (!any_address && is_global(cidr));
    let mut cidrs = rule.ipv4_ranges.iter().chain(&rule.ipv6_ranges);
    if rule.protocol == "-1" {
        return cidrs.any(public);
    }
    if protocol != "-1" && rule.protocol != protocol {
        return false;
    }
    let (Some(from), Some(to)) = (rule.from_port, rule.to_port) else {
        return false;
    };
    if !cidrs.any(public) {
        return false;
    }
    ports.iter().any(|p| (from..=to).contains(p)) || (from == 0 && to == 65535) || (all_ports && ports.is_empty())
}

fn is_wildcard(cidr: &str) -> bool {
    cidr == "0.0.0.0/0" || cidr == "::/0"
}

/// Python's `ip_network(cidr).is_global`: false when the whole network lies inside one of the
/// IANA special-purpose blocks or the shared address space, true otherwise (a malformed CIDR is
/// not global).
pub(crate) fn is_global(cidr: &str) -> bool {
    special_purpose(cidr, true).is_some_and(|special| !special)
}

/// Python's `ip_network(cidr).is_private`: the whole network lies inside one of the IANA
/// special-purpose blocks (the shared address space `100.64.0.0/10` is not private). A bare
/// address is its own /32 or /128; a malformed one is not private.
pub(crate) fn is_private(cidr: &str) -> bool {
    let with_prefix = if cidr.contains('/') {
        cidr.to_owned()
    } else if cidr.contains(':') {
        format!("{cidr}/128")
    } else {
        format!("{cidr}/32")
    };
    special_purpose(&with_prefix, false).unwrap_or(false)
}

/// Whether the network lies wholly inside a special-purpose block, the shared address space
/// counted when `shared` is; `None` for a malformed CIDR.
fn special_purpose(cidr: &str, shared: bool) -> Option<bool> {
    const V4: &[(Ipv4Addr, u8)] = &[
        (Ipv4Addr::UNSPECIFIED, 8),
        (Ipv4Addr::new(10, 0, 0, 0), 8),
        (Ipv4Addr::new(127, 0, 0, 0), 8),
        (Ipv4Addr::new(169, 254, 0, 0), 16),
        (Ipv4Addr::new(172, 16, 0, 0), 12),
        (Ipv4Addr::new(192, 0, 0, 0), 29),
        (Ipv4Addr::new(192, 0, 0, 170), 31),
        (Ipv4Addr::new(192, 0, 2, 0), 24),
        (Ipv4Addr::new(192, 168, 0, 0), 16),
        (Ipv4Addr::new(198, 18, 0, 0), 15),
        (Ipv4Addr::new(198, 51, 100, 0), 24),
        (Ipv4Addr::new(203, 0, 113, 0), 24),
        (Ipv4Addr::new(240, 0, 0, 0), 4),
        (Ipv4Addr::BROADCAST, 32),
    ];
    const V6: &[(Ipv6Addr, u8)] = &[
        (Ipv6Addr::LOCALHOST, 128),
        (Ipv6Addr::UNSPECIFIED, 128),
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
        (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    ];
    const SHARED: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 10);
    let (addr, len) = parse_cidr(cidr)?;
    let inside = |first: u128, last: u128, net: u128, l: u8, bits: u8| {
        let (lo, hi) = span(net, l, bits);
        lo <= first && last <= hi
    };
    Some(match addr {
        IpAddr::V4(a) => {
            let (first, last) = span(u128::from(u32::from(a)), len, 32);
            V4.iter()
                .chain(shared.then_some(&SHARED))
                .any(|(net, l)| inside(first, last, u128::from(u32::from(*net)), *l, 32))
        }
        IpAddr::V6(a) => {
            let (first, last) = span(u128::from(a), len, 128);
            V6.iter().any(|(net, l)| inside(first, last, u128::from(*net), *l, 128))
        }
    })
}

/// The prefix length of a CIDR, and its address.
pub(crate) fn parse_cidr(cidr: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    (len <= bits).then_some((addr, len))
}

/// The first and last address of a network of `bits`-bit addresses.
fn span(addr: u128, len: u8, bits: u8) -> (u128, u128) {
    let host_bits = u32::from(bits - len);
    let host_mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (addr & !host_mask, addr | host_mask)
}

/// True when the group fails Prowler's `…_to_all_ports`: a rule of every protocol, or any
/// protocol's whole port range, open to `0.0.0.0/0` or `::/0`.
pub(crate) fn open_on_all_ports(group: &SecurityGroup) -> bool {
    group.ingress.iter().any(|r| rule_matches(r, "-1", &[], true, false))
}

fn group_key(g: &SecurityGroup) -> (&str, &str) {
    (&g.id, &g.region)
}

fn groups(inv: &crate::world::Inventory) -> &[SecurityGroup] {
    &inv.security_groups
}

fn group_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&SecurityGroup, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::SecurityGroup,
        resources: groups,
        key: group_key,
        applies: every,
        judge,
    })
}

const NOT_JUDGED_PORT_BY_PORT: &str = "not judged port by port: the group is open to the internet on all ports";

/// A port-by-port check of the groups in use.
struct GroupPorts {
    id: &'static str,
    ports: &'static [i32],
}

impl Check for GroupPorts {
    fn id(&self) -> &'static str {
        self.id
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn kind(&self) -> ResourceKind {
        ResourceKind::SecurityGroup
    }

    fn run(&self, estate: &Estate<'_>, out: &mut Vec<Finding>) {
        for g in &estate.inventory.security_groups {
            if !estate.in_use(g) {
                continue;
            }
            let (status, message) = if estate.open_on_all_ports(&g.id) {
                (FindingStatus::Pass, NOT_JUDGED_PORT_BY_PORT.to_owned())
            } else {
                let open: Vec<i32> = self
                    .ports
                    .iter()
                    .copied()
                    .filter(|&p| g.ingress.iter().any(|r| rule_matches(r, "tcp", &[p], true, false)))
                    .collect();
                if open.is_empty() {
                    (
                        FindingStatus::Pass,
                        format!("no ingress from the internet to TCP {:?}", self.ports),
                    )
                } else {
                    (
                        FindingStatus::Fail,
                        format!("ingress from the internet to TCP {open:?}"),
                    )
                }
            };
            out.push(Finding {
                check_id: self.id.to_owned(),
                severity: Severity::High,
                status,
                resource_id: g.id.clone(),
                kind: ResourceKind::SecurityGroup,
                region: g.region.clone(),
                message,
            });
        }
    }
}

fn all_ports(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if !estate.in_use(g) {
        return Verdict::Skip;
    }
    verdict(
        estate.open_on_all_ports(&g.id),
        "ingress from the internet on all ports",
        "no ingress from the internet on all ports",
    )
}

fn any_port(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if !estate.in_use(g) || estate.open_on_all_ports(&g.id) {
        return Verdict::Skip;
    }
    if !g.ingress.iter().any(|r| rule_matches(r, "-1", &[], true, true)) {
        return pass("no port open to the internet");
    }
    let exposed: Vec<&str> = estate
        .interfaces_of_group(&g.id)
        .iter()
        .filter(|n| {
            !ALLOWED_INTERFACE_TYPES.contains(&n.interface_type.as_str())
                && !n
                    .instance_owner_id
                    .as_deref()
                    .is_some_and(|o| ALLOWED_INSTANCE_OWNERS.contains(&o))
        })
        .map(|n| n.id.as_str())
        .collect();
    verdict(
        !exposed.is_empty(),
        format!("a port is open to the internet, and interfaces {exposed:?} are of a type that is not allowed"),
        "a port is open to the internet, but only on allowed interfaces (load balancers, endpoints, API gateways)",
    )
}

fn any_port_from_ip(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if !estate.in_use(g) {
        return Verdict::Skip;
    }
    if estate.open_on_all_ports(&g.id) {
        return pass(NOT_JUDGED_PORT_BY_PORT);
    }
    let open = g.ingress.iter().any(|r| {
        r.ipv4_ranges.iter().chain(&r.ipv6_ranges).any(|c| !is_wildcard(c)) && rule_matches(r, "-1", &[], false, true)
    });
    verdict(
        open,
        "a port is open to a public address range",
        "no port is open to a public address range",
    )
}

fn wide_open_public_ipv4(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if !estate.in_use(g) {
        return Verdict::Skip;
    }
    let wide: Vec<&str> = g
        .ingress
        .iter()
        .chain(&g.egress)
        .flat_map(|r| &r.ipv4_ranges)
        .filter(|c| is_global(c) && parse_cidr(c).is_some_and(|(_, len)| (1..24).contains(&len)))
        .map(String::as_str)
        .collect();
    verdict(
        !wide.is_empty(),
        format!("rules open to wide public IPv4 ranges {wide:?}"),
        "no rule open to a public IPv4 range wider than /24",
    )
}

fn default_restrict(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if g.name != "default" || !estate.in_use(g) {
        return Verdict::Skip;
    }
    verdict(
        !g.ingress.is_empty() || !g.egress.is_empty(),
        format!(
            "default security group has {} inbound and {} outbound rule(s)",
            g.ingress.len(),
            g.egress.len()
        ),
        "default security group has no rules",
    )
}

fn launch_wizard(g: &SecurityGroup, _: &Estate<'_>) -> Verdict {
    verdict(
        g.name.contains("launch-wizard"),
        format!("group {} was created by the launch wizard", g.name),
        "group was not created by the launch wizard",
    )
}

fn many_rules(g: &SecurityGroup, _: &Estate<'_>) -> Verdict {
    verdict(
        g.ingress.len() > MAX_RULES || g.egress.len() > MAX_RULES,
        format!(
            "{} inbound and {} outbound rules, more than {MAX_RULES}",
            g.ingress.len(),
            g.egress.len()
        ),
        format!("at most {MAX_RULES} rules each way"),
    )
}

/// Trusted Advisor's yellow: a port open to the internet that is neither one of its green web and
/// mail ports nor a port a Prowler check names. Prowler's `…_to_any_port` means something else
/// (any port at all), so this check has an id of the engine's own.
fn unlisted_port(g: &SecurityGroup, estate: &Estate<'_>) -> Verdict {
    if !estate.in_use(g) {
        return Verdict::Skip;
    }
    let named: Vec<i32> = GROUP_PORT_CHECKS.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let yellow = g.ingress.iter().filter(|r| r.is_world_open()).any(|r| {
        !r.covers_all_ports()
            && match (r.from_port, r.to_port) {
                (Some(from), Some(to)) if matches!(r.protocol.as_str(), "tcp" | "udp") => {
                    (from..=to).any(|p| !GREEN_PORTS.contains(&p) && !named.contains(&p))
                }
                _ => false,
            }
    });
    verdict(
        yellow,
        "ingress from the internet to a port that is neither well-known web/mail nor named by a check",
        "no other port open to the internet",
    )
}

/// Whether a network ACL lets `protocol` (a number as a string, `-1` for all) reach `port` from
/// the internet, as Prowler's `check_network_acl` decides it: IPv6 entries first, in rule order,
/// where a deny ends the IPv6 pass; then IPv4 entries in rule order, the first match deciding.
/// Only entries whose protocol is `-1`, or equal to `protocol` with `port` in range, match.
pub(crate) fn acl_open(acl: &NetworkAcl, protocol: &str, port: i32) -> bool {
    let mut ingress: Vec<_> = acl.entries.iter().filter(|e| !e.egress).collect();
    ingress.sort_by_key(|e| e.rule_number);
    let matches = |e: &crate::world::NetworkAclEntry| {
        e.protocol == "-1"
            || (e.protocol == protocol
                && e.from_port.is_some_and(|f| f <= port)
                && e.to_port.is_some_and(|t| port <= t))
    };
    for e in ingress.iter().filter(|e| e.cidr_block.is_none()) {
        if e.ipv6_cidr_block.as_deref() == Some("::/0") && matches(e) {
            if e.action == "allow" {
                return true;
            }
            break;
        }
    }
    for e in ingress.iter().filter(|e| e.ipv6_cidr_block.is_none()) {
        if e.cidr_block.as_deref() == Some("0.0.0.0/0") && matches(e) {
            return e.action == "allow";
        }
    }
    false
}

fn acl_rule(id: &'static str, severity: Severity, judge: fn(&NetworkAcl, &Estate<'_>) -> Verdict) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::NetworkAcl,
        resources: |inv| &inv.network_acls,
        key: |a| (&a.id, &a.region),
        applies: every,
        judge,
    })
}

/// Prowler judges the ACLs of a Region only when it has a group of its own (not `default`).
fn acl_ports(acl: &NetworkAcl, estate: &Estate<'_>, protocol: &str, port: i32, what: &str) -> Verdict {
    if !estate.regions_with_custom_groups.contains(acl.region.as_str()) {
        return Verdict::Skip;
    }
    verdict(
        acl_open(acl, protocol, port),
        format!("the network ACL lets the internet reach {what}"),
        format!("the network ACL does not let the internet reach {what}"),
    )
}

/// The group and ACL checks.
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    let mut all: Vec<Box<dyn Check>> = GROUP_PORT_CHECKS
        .iter()
        .map(|&(id, ports)| Box::new(GroupPorts { id, ports }) as Box<dyn Check>)
        .collect();
    all.extend([
        group_rule(
            "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
            Severity::Critical,
            all_ports,
        ),
        group_rule(
            "ec2_securitygroup_allow_ingress_from_internet_to_any_port",
            Severity::High,
            any_port,
        ),
        group_rule(
            "ec2_securitygroup_allow_ingress_from_internet_to_any_port_from_ip",
            Severity::Medium,
            any_port_from_ip,
        ),
        group_rule(
            "ec2_securitygroup_allow_wide_open_public_ipv4",
            Severity::High,
            wide_open_public_ipv4,
        ),
        group_rule(
            "ec2_securitygroup_default_restrict_traffic",
            Severity::High,
            default_restrict,
        ),
        group_rule("ec2_securitygroup_from_launch_wizard", Severity::Medium, launch_wizard),
        group_rule(
            "ec2_securitygroup_with_many_ingress_egress_rules",
            Severity::Medium,
            many_rules,
        ),
        group_rule(
            "miyabi_securitygroup_ingress_from_internet_to_unlisted_port",
            Severity::Low,
            unlisted_port,
        ),
        acl_rule("ec2_networkacl_allow_ingress_any_port", Severity::High, |a, e| {
            acl_ports(a, e, "-1", 0, "any port")
        }),
        acl_rule("ec2_networkacl_allow_ingress_tcp_port_22", Severity::Medium, |a, e| {
            acl_ports(a, e, "6", 22, "TCP port 22")
        }),
        acl_rule(
            "ec2_networkacl_allow_ingress_tcp_port_3389",
            Severity::Medium,
            |a, e| acl_ports(a, e, "6", 3389, "TCP port 3389"),
        ),
        acl_rule("ec2_networkacl_unused", Severity::Low, |a, _| {
            if a.is_default {
                return Verdict::Skip;
            }
            verdict(
                a.subnet_ids.is_empty(),
                "the network ACL is associated with no subnet",
                "the network ACL is associated with a subnet",
            )
        }),
    ]);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_follows_pythons_special_purpose_blocks() {
        for (cidr, global) in [
            ("0.0.0.0/0", true),
            ("8.8.8.8/32", true),
            ("52.0.0.0/8", true),
            ("10.0.0.0/8", false),
            ("10.1.0.0/16", false),
            ("172.16.0.0/12", false),
            ("172.15.0.0/16", true),
            ("100.64.0.0/10", false),
            ("192.168.1.0/24", false),
            ("224.0.0.0/4", true),
            ("::/0", true),
            ("2600:1f18::/32", true),
            ("fd00::/8", false),
            ("fe80::/64", false),
            ("2001:db8::/48", false),
            ("not a cidr", false),
        ] {
            assert_eq!(is_global(cidr), global, "{cidr}");
        }
        for (cidr, private) in [
            ("10.0.0.0/8", true),
            ("10.1.2.3", true),
            ("192.0.2.0/24", true),
            ("100.64.0.0/10", false),
            ("8.8.8.0/24", false),
            ("0.0.0.0/0", false),
            ("fd00::/8", true),
        ] {
            assert_eq!(is_private(cidr), private, "{cidr}");
        }
    }
}
