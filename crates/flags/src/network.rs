//! IP networks as Unleash lists them, for the `remoteAddress` strategy and
//! the `IN_CIDR` operator: CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) or
//! single addresses.

use std::net::IpAddr;

use ipnet::IpNet;

/// The networks among `entries`. Entries that are neither a range nor an
/// address are skipped, as Unleash skips them, so one typo in a list does not
/// disable the rest; each one skipped is described in `problems`.
pub(crate) fn networks<'a>(
    entries: impl IntoIterator<Item = &'a str>,
    problems: &mut Vec<String>,
) -> Vec<IpNet> {
    entries
        .into_iter()
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from));
            if network.is_err() {
                problems.push(format!(
                    "{entry:?} is neither an IP address nor a CIDR range; it is skipped"
                ));
            }
            network.ok()
        })
        .collect()
}

/// Whether `address` (text from the context) is inside one of `networks`.
/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, as dual-stack sockets
/// report it) counts as the IPv4 address.
pub(crate) fn contains(networks: &[IpNet], address: &str) -> bool {
    address.trim().parse::<IpAddr>().is_ok_and(|address| {
        let address = address.to_canonical();
        networks.iter().any(|network| network.contains(&address))
    })
}

#[cfg(test)]
mod tests {
    use super::{contains, networks};

    #[test]
    fn reads_ranges_and_addresses_and_skips_the_rest() {
        let mut problems = Vec::new();
        let list = networks(
            "192.168.0.1, 192.invalid, 10.0.0.0/8 ,2001:db8::/32,".split(','),
            &mut problems,
        );
        assert_eq!(list.len(), 3);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("192.invalid"));
        assert!(contains(&list, "192.168.0.1"));
        assert!(!contains(&list, "192.168.0.2"));
        assert!(contains(&list, "10.20.30.40"));
        assert!(contains(&list, "2001:db8:0:1::42"));
        assert!(!contains(&list, "2001:db9::1"));
        assert!(contains(&list, "::ffff:10.0.0.1"));
        assert!(!contains(&list, "not an address"));
    }
}
