//! The agent's chain in both NAT tables of the target: IPv4 (`iptables`)
//! and IPv6 (`ip6tables`), changed together so a client that connects to
//! `127.0.0.1:P` and one that connects to `[::1]:P` are both stolen.
//!
//! IPv4 is required: its failures are errors. IPv6 is best effort: when
//! the IPv6 chain cannot be made (no `ip6tables`, no IPv6 NAT in the
//! kernel) creation reports [`Coverage::Ipv4Only`] with the reason, which
//! each stealing client is told once (`AgentMessage::Warning`), and only
//! IPv4 clients are stolen. Removal (normal exit, watchdog, stale chains
//! of dead agents) always tries both tables, whatever creation managed.

use tracing::{debug, warn};

use super::iptables::{Family, Iptables, IptablesError};

/// Which clients of the target the chain reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// IPv4 and IPv6 clients.
    Both,
    /// IPv4 clients only; `why` says what failed and how to fix it.
    Ipv4Only { why: String },
}

impl Coverage {
    /// What a client stealing `port` is told, if anything.
    pub fn warning(&self, port: u16) -> Option<String> {
        match self {
            Coverage::Both => None,
            Coverage::Ipv4Only { why } => Some(format!(
                "port {port}: only the target's IPv4 clients are stolen; \
                 its IPv6 clients still reach its own server ({why})"
            )),
        }
    }
}

/// Both tables of one network namespace.
pub struct DualStack {
    v4: Iptables,
    v6: Iptables,
    /// Whether the IPv6 chain exists (set by [`DualStack::create_chain`]).
    v6_active: bool,
}

impl DualStack {
    /// The tables of the namespace of process `pid`, or the agent's own.
    pub fn for_pid(pid: Option<u32>) -> std::io::Result<Self> {
        Ok(DualStack {
            v4: Iptables::for_pid(pid, Family::V4)?,
            v6: Iptables::for_pid(pid, Family::V6)?,
            v6_active: false,
        })
    }

    /// The tables rules are added to and read from.
    fn active(&self) -> impl Iterator<Item = &Iptables> {
        std::iter::once(&self.v4).chain(self.v6_active.then_some(&self.v6))
    }

    /// Creates `chain` and its jumps in the IPv4 table (required), then in
    /// the IPv6 one (a failure there removes what was made of it and leaves
    /// IPv6 clients alone: [`Coverage::Ipv4Only`]). `ipv6` false: the
    /// target has no IPv6, the IPv6 table is not tried.
    pub fn create_chain(&mut self, chain: &str, ipv6: bool) -> Result<Coverage, IptablesError> {
        self.v4.create_chain(chain)?;
        if !ipv6 {
            return Ok(Coverage::Ipv4Only {
                why: "the target has no IPv6".to_owned(),
            });
        }
        match self.v6.create_chain(chain) {
            Ok(()) => {
                self.v6_active = true;
                Ok(Coverage::Both)
            }
            Err(e) => {
                warn!("IPv6 clients of the target will not be stolen: {e}");
                self.v6.remove_chain(chain);
                Ok(Coverage::Ipv4Only {
                    why: ipv6_failure(&e),
                })
            }
        }
    }

    /// Whether a chain of another running agent redirects `port`.
    pub fn stolen_elsewhere(&self, ours: &str, port: u16) -> Result<bool, IptablesError> {
        for table in self.active() {
            if table.stolen_elsewhere(ours, port)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves the jumps to `chain` to the top of both tables.
    pub fn raise_jumps(&self, chain: &str) -> Result<(), IptablesError> {
        self.active().try_for_each(|table| table.raise_jumps(chain))
    }

    /// Redirects TCP port `port` to `to` (`add`), or stops it, in both tables.
    pub fn redirect(
        &self,
        add: bool,
        chain: &str,
        port: u16,
        to: u16,
    ) -> Result<(), IptablesError> {
        self.active()
            .try_for_each(|table| table.redirect(add, chain, port, to))
    }

    /// Removes `chain` and its jumps from both tables (whatever exists).
    /// Returns whether anything was removed.
    pub fn remove_chain(&self, chain: &str) -> bool {
        let v4 = self.v4.remove_chain(chain);
        let v6 = self.v6.remove_chain(chain);
        v4 || v6
    }

    /// Chains of dead agents removed from both tables; the IPv4 table must
    /// be readable, the IPv6 one is skipped when it is not.
    pub fn remove_stale_chains(&self) -> Result<Vec<String>, IptablesError> {
        let mut stale = self.v4.remove_stale_chains()?;
        match self.v6.remove_stale_chains() {
            Ok(v6) => stale.extend(v6.into_iter().map(|chain| format!("{chain} (IPv6)"))),
            // The same cause makes the chain IPv4-only, and is reported then.
            Err(e) => debug!("cannot look for stale IPv6 chains: {e}"),
        }
        Ok(stale)
    }
}

/// Why the IPv6 chain is missing, with the fix.
fn ipv6_failure(e: &IptablesError) -> String {
    match e {
        IptablesError::Missing { .. } => e.to_string(),
        IptablesError::Failed { .. } => format!(
            "{e}; the target's kernel may lack IPv6 NAT (module ip6table_nat, or nft_chain_nat for nf_tables)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_only_chain_warns_naming_the_port_the_cause_and_the_fix() {
        assert_eq!(Coverage::Both.warning(80), None);
        let missing = IptablesError::Missing {
            binary: "ip6tables",
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let warning = Coverage::Ipv4Only {
            why: ipv6_failure(&missing),
        }
        .warning(8080)
        .unwrap_or_default();
        assert!(
            warning.starts_with("port 8080: only the target's IPv4 clients"),
            "{warning}"
        );
        assert!(warning.contains("cannot run ip6tables"), "{warning}");
        assert!(warning.contains("apt-get install iptables"), "{warning}");
        let failed = IptablesError::Failed {
            binary: "ip6tables",
            args: "-N X".into(),
            stderr: "can't initialize ip6tables table `nat'".into(),
        };
        assert!(ipv6_failure(&failed).contains("lack IPv6 NAT"));
    }
}
