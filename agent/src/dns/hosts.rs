//! `/etc/hosts`: parsing and lookup.

use std::net::IpAddr;

/// One line of a hosts file: an address and its names (lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    pub addr: IpAddr,
    pub names: Vec<String>,
}

/// Parses a hosts file; malformed lines are skipped as glibc does.
pub fn parse(text: &str) -> Vec<HostsEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let addr = fields.next()?;
            // A zone suffix (`fe80::1%eth0`) is dropped: IpAddr cannot hold it.
            let addr: IpAddr = addr.split('%').next()?.parse().ok()?;
            let names: Vec<String> = fields
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            (!names.is_empty()).then_some(HostsEntry { addr, names })
        })
        .collect()
}

/// Every address of `name` that `want` accepts, in file order, with the
/// canonical name (the first name of the first matching line).
pub fn lookup(
    entries: &[HostsEntry],
    name: &str,
    want: impl Fn(&IpAddr) -> bool,
) -> Option<(String, Vec<IpAddr>)> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut canonical = None;
    let mut addrs = Vec::new();
    for e in entries
        .iter()
        .filter(|e| want(&e.addr) && e.names.contains(&name))
    {
        canonical.get_or_insert_with(|| e.names[0].clone());
        if !addrs.contains(&e.addr) {
            addrs.push(e.addr);
        }
    }
    canonical.map(|c| (c, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "\
# comment
127.0.0.1\tlocalhost
::1 localhost ip6-localhost
10.0.0.5   db.internal  db # trailing comment
10.0.0.6 DB.internal.
bogus line
fe80::1%eth0 link
";

    fn check(name: &str, v4only: bool, expected: Option<(&str, &[&str])>) {
        let entries = parse(HOSTS);
        let got = lookup(&entries, name, |a| !v4only || a.is_ipv4());
        let expected = expected.map(|(c, a)| {
            (
                c.to_string(),
                a.iter()
                    .map(|s| s.parse().unwrap())
                    .collect::<Vec<IpAddr>>(),
            )
        });
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn lookups() {
        check("db", false, Some(("db.internal", &["10.0.0.5"])));
        check(
            "DB.Internal.",
            false,
            Some(("db.internal", &["10.0.0.5", "10.0.0.6"])),
        );
        check(
            "localhost",
            false,
            Some(("localhost", &["127.0.0.1", "::1"])),
        );
        check("localhost", true, Some(("localhost", &["127.0.0.1"])));
        check("link", false, Some(("link", &["fe80::1"])));
        check("link", true, None);
        check("bogus", false, None);
        check("comment", false, None);
    }
}
