//! `feature.interception`: how mirrord reaches into a program: the layer
//! (`LD_PRELOAD`, libc hooks) or seccomp user notification (every listed
//! syscall, for Go and statically linked programs).

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How calls of the program are intercepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interception {
    /// Chosen per executable: the syscall path for Go programs and
    /// statically linked ones (no ELF interpreter), the layer otherwise.
    #[default]
    Auto,
    /// The layer (`LD_PRELOAD`): dynamic programs that call libc.
    Layer,
    /// Seccomp user notification: the listed syscalls of the program and
    /// its children stop in mirrord's supervisor, whatever made them.
    Syscall,
}

impl Interception {
    /// The names accepted in config files, env and flags.
    pub const NAMES: &'static [&'static str] = &["auto", "layer", "syscall"];
}

impl FromStr for Interception {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Interception::Auto),
            "layer" => Ok(Interception::Layer),
            "syscall" => Ok(Interception::Syscall),
            _ => Err(format!(
                "unknown variant \"{s}\", expected one of {}",
                Interception::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Interception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Interception::NAMES[*self as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Interception::NAMES {
            let parsed: Interception = name.parse().unwrap();
            assert_eq!(parsed.to_string(), *name);
            let json = serde_json::to_string(&parsed).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        assert_eq!("SYSCALL".parse(), Ok(Interception::Syscall));
        let err = "ptrace".parse::<Interception>().unwrap_err();
        assert!(err.contains("auto, layer, syscall"), "{err}");
    }
}
