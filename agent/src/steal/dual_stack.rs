//! The agent's chain in both NAT tables of the target: IPv4 (`iptables`)
//! and IPv6 (`ip6tables`), changed together so a client that connects to
//! `127.0.0.1:P` and one that connects to `[::1]:P` are both stolen.
//!
//! IPv4 is required: its failures are errors. IPv6 is best effort: when
//! the IPv6 chain cannot be made (no `ip6tables`, no IPv6 NAT in the
//! kernel) the agent says so once and steals IPv4 clients only. Removal
//! (normal exit, watchdog, stale chains of dead agents) always tries both
//! tables, whatever creation managed.

use tracing::warn;

use super::iptables::{Family, Iptables, IptablesError};

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
    /// the IPv6 one (a failure there is logged and leaves IPv6 alone).
    pub fn create_chain(&mut self, chain: &str) -> Result<(), IptablesError> {
        self.v4.create_chain(chain)?;
        match self.v6.create_chain(chain) {
            Ok(()) => self.v6_active = true,
            Err(e) => {
                warn!("IPv6 clients of the target will not be stolen: {e}");
                self.v6.remove_chain(chain);
            }
        }
        Ok(())
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
            Err(e) => warn!("cannot look for stale IPv6 chains: {e}"),
        }
        Ok(stale)
    }
}
