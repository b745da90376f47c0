//! `feature.fs`: which file operations are served from the target and which
//! stay on the local machine.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::de::shapes::{string_or_map, FromShortString};

/// File operations: `"fs": "read"` or `"fs": { "mode": ..., "read_only": [...], ... }`.
///
/// Each file a program opens is decided by the first rule that matches its
/// absolute path, in this order:
///
/// 1. `not_found`: the program is told the file does not exist;
/// 2. `local`: opened on the local machine;
/// 3. `read_only`: read from the target (an open for writing stays local);
/// 4. `read_write`: read and written on the target;
/// 5. built in: `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` are read
///    from the target;
/// 6. built in (modes `read` and `write` only): the program's own runtime stays
///    local: `/proc`, `/sys`, `/dev`, `/usr`, `/lib`, `/lib32`, `/lib64`,
///    `/libx32`, `/bin`, `/sbin`, `/opt`, `/root`, `/home`, `/tmp`, `/var/tmp`,
///    `/run`, `/snap`, `/nix` and `/etc`, with everything below them;
/// 7. the mode's default.
///
/// In mode `local` nothing is read from the target and the lists are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// The default for paths no rule matches: `local` (all files local, the
    /// lists are ignored), `localwithoverrides` (local, except what the lists
    /// send to the target), `read` (read from the target, writes stay local;
    /// the default) or `write` (read and written on the target).
    #[serde(default)]
    pub mode: FsMode,

    /// Regular expressions of paths read and written on the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_write: Vec<PathPattern>,

    /// Regular expressions of paths read from the target; opening them for
    /// writing opens the local file instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_only: Vec<PathPattern>,

    /// Regular expressions of paths always opened on the local machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<PathPattern>,

    /// Regular expressions of paths the program is told do not exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<PathPattern>,
}

impl FromShortString for FsConfig {
    const EXPECTING: &'static str = "one of local, localwithoverrides, read, write";

    fn from_short<E: de::Error>(s: &str) -> Result<Self, E> {
        let mode = FsMode::deserialize(de::value::StrDeserializer::<E>::new(s))?;
        Ok(FsConfig {
            mode,
            ..FsConfig::default()
        })
    }
}

pub(crate) fn deserialize_fs_config<'de, D: Deserializer<'de>>(d: D) -> Result<FsConfig, D::Error> {
    string_or_map(d)
}

/// How files are served by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsMode {
    /// Every file is opened on the local machine.
    Local,
    /// Files are local, except paths listed in `read_write`, `read_only` and
    /// `not_found`, and the target's `/etc/hosts`, `/etc/resolv.conf` and
    /// `/etc/hostname`.
    #[serde(rename = "localwithoverrides")]
    LocalWithOverrides,
    /// Files are read from the target; writes stay local.
    #[default]
    Read,
    /// Files are read and written on the target.
    Write,
}

impl FsMode {
    /// The names accepted in config files, env and flags.
    pub const NAMES: &'static [&'static str] = &["local", "localwithoverrides", "read", "write"];
}

impl FromStr for FsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Ok(FsMode::Local),
            "localwithoverrides" => Ok(FsMode::LocalWithOverrides),
            "read" => Ok(FsMode::Read),
            "write" => Ok(FsMode::Write),
            _ => Err(format!(
                "unknown variant \"{s}\", expected one of {}",
                FsMode::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for FsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsMode::Local => "local",
            FsMode::LocalWithOverrides => "localwithoverrides",
            FsMode::Read => "read",
            FsMode::Write => "write",
        })
    }
}

super::pattern::checked_regex!(
    /// A regular expression over absolute paths, checked when the config is read.
    ///
    /// Patterns search anywhere in the path (`log` matches `/var/log/x`); anchor
    /// them with `^` and `$` to match whole paths.
    PathPattern,
    regex::bytes::Regex,
    "A regular expression (Rust `regex` syntax) searched for in the absolute path; \
     anchor it with `^` and `$` to match whole paths."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_fit_on_one_line() {
        let message = PathPattern::new("(").unwrap_err();
        assert_eq!(message, "invalid regex \"(\": unclosed group");
        assert!(PathPattern::new("^/app/.*\\.log$").is_ok());
    }

    #[test]
    fn mode_names_parse_and_print() {
        for name in FsMode::NAMES {
            let mode: FsMode = name.parse().unwrap();
            assert_eq!(&mode.to_string(), name);
        }
        assert_eq!(
            "raed".parse::<FsMode>(),
            Err(
                "unknown variant \"raed\", expected one of local, localwithoverrides, read, write"
                    .to_owned()
            )
        );
    }
}
