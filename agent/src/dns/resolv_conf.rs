//! `/etc/resolv.conf`: the parts a stub resolver uses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most three, as glibc (`MAXNS`); `127.0.0.1` when none is given.
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: u8,
    pub timeout: Duration,
    pub attempts: u8,
}

impl Default for ResolvConf {
    fn default() -> Self {
        Self {
            nameservers: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// Parses the file; unknown keywords and options are ignored. The
    /// timeout (default 2s, at most 30s) and attempts (default 2, at most 5)
    /// honour `options timeout:` and `attempts:`.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        let mut nameservers = Vec::new();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => {
                    if let Some(ip) = fields
                        .next()
                        .and_then(|a| a.split('%').next()?.parse().ok())
                    {
                        if nameservers.len() < 3 {
                            nameservers.push(ip);
                        }
                    }
                }
                Some("domain") => conf.search = fields.next().map(normalize).into_iter().collect(),
                Some("search") => conf.search = fields.take(6).map(normalize).collect(),
                Some("options") => {
                    for opt in fields {
                        let (key, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let n = value.parse::<u32>().ok();
                        match (key, n) {
                            ("ndots", Some(n)) => conf.ndots = n.min(15) as u8,
                            ("timeout", Some(n)) => {
                                conf.timeout = Duration::from_secs(n.clamp(1, 30).into())
                            }
                            ("attempts", Some(n)) => conf.attempts = n.clamp(1, 5) as u8,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if !nameservers.is_empty() {
            conf.nameservers = nameservers;
        }
        conf.search.retain(|d| !d.is_empty());
        conf
    }

    /// The names to try for `host`, in order: a name with a trailing dot
    /// only as is; a name with at least `ndots` dots as is first, then with
    /// each search domain; otherwise the search domains first.
    pub fn candidates(&self, host: &str) -> Vec<String> {
        if let Some(absolute) = host.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|d| format!("{host}.{d}"));
        let dots = host.matches('.').count();
        if dots >= usize::from(self.ndots) {
            std::iter::once(host.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(host.to_string())).collect()
        }
    }
}

fn normalize(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_style_conf() {
        let c = ResolvConf::parse(
            "search default.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.96.0.10\n\
             options ndots:5 timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(c.nameservers, vec!["10.96.0.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.search.len(), 3);
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (5, Duration::from_secs(1), 3)
        );
        assert_eq!(
            c.candidates("db"),
            [
                "db.default.svc.cluster.local",
                "db.svc.cluster.local",
                "db.cluster.local",
                "db"
            ]
        );
        assert_eq!(c.candidates("a.b.c.d.e.f")[0], "a.b.c.d.e.f");
        assert_eq!(c.candidates("x.y."), ["x.y"]);
    }

    #[test]
    fn defaults_and_odd_lines() {
        let c = ResolvConf::parse(
            "# nothing\ndomain Corp.Example.\nnameserver nonsense\noptions ndots:99 timeout:0\n",
        );
        assert_eq!(c.nameservers, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(c.search, ["corp.example"]);
        assert_eq!((c.ndots, c.timeout), (15, Duration::from_secs(1)));
        let c = ResolvConf::parse(
            "nameserver ::1\nnameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n",
        );
        assert_eq!(c.nameservers.len(), 3);
        assert_eq!(c.candidates("a.b"), ["a.b"]);
    }
}
