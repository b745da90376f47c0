//! Which names are resolved by the target.

use crate::model::network::{DnsConfig, DnsFilter, HostPattern};

/// The compiled DNS policy.
#[derive(Debug, Clone)]
pub struct DnsPolicy {
    enabled: bool,
    filter: Option<DnsFilter>,
}

impl DnsPolicy {
    /// Builds the policy of `config`.
    pub fn new(config: &DnsConfig) -> DnsPolicy {
        DnsPolicy {
            enabled: config.enabled,
            filter: config.filter.clone(),
        }
    }

    /// Whether `host` is resolved by the target. Does not allocate.
    pub fn remote(&self, host: &str) -> bool {
        let hit = |patterns: &[HostPattern]| patterns.iter().any(|p| p.matches(host));
        self.enabled
            && match &self.filter {
                None => true,
                Some(DnsFilter::Remote(patterns)) => hit(patterns),
                Some(DnsFilter::Local(patterns)) => !hit(patterns),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: DnsConfig, rows: &[(&str, bool)]) {
        let policy = DnsPolicy::new(&config);
        for (host, expected) in rows {
            assert_eq!(policy.remote(host), *expected, "{host} with {config:?}");
        }
    }

    fn patterns(list: &[&str]) -> Vec<HostPattern> {
        list.iter().map(|p| HostPattern::new(p).unwrap()).collect()
    }

    #[test]
    fn dns_rows() {
        check(
            DnsConfig::default(),
            &[("example.com", true), ("localhost", true)],
        );
        check(
            DnsConfig {
                enabled: false,
                filter: Some(DnsFilter::Remote(patterns(&["example.com"]))),
            },
            &[("example.com", false)],
        );
        check(
            DnsConfig {
                enabled: true,
                filter: Some(DnsFilter::Remote(patterns(&["*.svc.cluster.local", "db"]))),
            },
            &[
                ("api.ns.svc.cluster.local", true),
                ("DB", true),
                ("svc.cluster.local", false),
                ("example.com", false),
            ],
        );
        check(
            DnsConfig {
                enabled: true,
                filter: Some(DnsFilter::Local(patterns(&["localhost", "*.corp.example"]))),
            },
            &[
                ("localhost", false),
                ("git.corp.example", false),
                ("api", true),
            ],
        );
    }
}
