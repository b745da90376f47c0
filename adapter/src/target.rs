//! Resolving the configured target to what this build can start an agent
//! for: a local process (`pid/N`) or nothing (`targetless`).

use mirrord_config::Target;

/// A target the agent can be started for on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTarget {
    Pid(u32),
    Targetless,
}

impl std::fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalTarget::Pid(pid) => write!(f, "pid/{pid}"),
            LocalTarget::Targetless => f.write_str("targetless"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "target pid/{0}: no process with that PID on this machine (check it with `ps -p {0}`)"
    )]
    NoSuchProcess(u32),
    #[error(
        "target pid/{0}: joining another process's namespaces needs root; run mirrord as root \
         (e.g. with sudo), or use --target targetless"
    )]
    NeedsRoot(u32),
    #[error(
        "target {0}: Kubernetes targets are not supported by this build yet; use pid/<PID> for a \
         local process, or targetless"
    )]
    Kubernetes(String),
}

/// Checks the target and says what the agent will join.
pub fn resolve(target: Option<&Target>) -> Result<LocalTarget, TargetError> {
    match target {
        None | Some(Target::Targetless) => Ok(LocalTarget::Targetless),
        Some(Target::Pid(pid)) => {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(TargetError::NoSuchProcess(*pid));
            }
            // SAFETY: plain syscall.
            if unsafe { libc::geteuid() } != 0 {
                return Err(TargetError::NeedsRoot(*pid));
            }
            Ok(LocalTarget::Pid(*pid))
        }
        Some(other) => Err(TargetError::Kubernetes(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pid_is_named_with_the_fix() {
        let err = resolve(Some(&Target::Pid(u32::MAX - 1))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid/{}", u32::MAX - 1)) && msg.contains("ps -p"),
            "{msg}"
        );
    }

    #[test]
    fn no_target_is_targetless() {
        assert_eq!(resolve(None).unwrap(), LocalTarget::Targetless);
        assert_eq!(
            resolve(Some(&Target::Targetless)).unwrap(),
            LocalTarget::Targetless
        );
    }

    #[test]
    fn own_pid_resolves_when_root() {
        let me = std::process::id();
        match resolve(Some(&Target::Pid(me))) {
            Ok(t) => assert_eq!(t, LocalTarget::Pid(me)),
            Err(TargetError::NeedsRoot(pid)) => assert_eq!(pid, me),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}
