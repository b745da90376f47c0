//! The crate's error type: every way loading or validating a config can fail.
//!
//! Validation problems are collected rather than returned one at a time, so a
//! user with three typos sees three lines, each naming where the problem is
//! (a key path in the file, an environment variable or a CLI flag), the bad
//! value and what is allowed.

use std::{fmt, io, path::PathBuf};

/// Everything that can go wrong while loading, validating or decoding a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable...).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },

    /// The config file's extension does not tell which format it is in.
    #[error(
        "cannot tell the format of config file {}: expected a .json, .toml, .yaml or .yml extension",
        path.display()
    )]
    UnknownFormat {
        /// The file whose extension is not recognised.
        path: PathBuf,
    },

    /// The config file is not well-formed JSON, TOML or YAML.
    #[error("{}: {}", location(path, *line, *column), message)]
    Syntax {
        /// The file that failed to parse.
        path: PathBuf,
        /// 1-based line of the error, when the parser reports it.
        line: Option<usize>,
        /// 1-based column of the error, when the parser reports it.
        column: Option<usize>,
        /// The parser's message, on one line.
        message: String,
    },

    /// The config is well-formed but has invalid content; one entry per problem.
    #[error("{}", Problems(problems))]
    Invalid {
        /// Every problem found, in the order found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual validation problems, empty for I/O and syntax errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            ConfigError::Read { .. }
            | ConfigError::UnknownFormat { .. }
            | ConfigError::Syntax { .. } => &[],
        }
    }

    pub(crate) fn invalid(problems: Vec<Problem>) -> Self {
        ConfigError::Invalid { problems }
    }
}

/// One validation problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the bad value came from.
    pub origin: Origin,
    /// What is wrong, naming the bad value and what is allowed.
    pub message: String,
    /// For an unknown key, the key itself (the origin names the map that
    /// holds it), so an editor can mark the key rather than the map.
    pub unknown_key: Option<String>,
}

impl Problem {
    pub(crate) fn new(origin: Origin, message: impl Into<String>) -> Self {
        Problem {
            origin,
            message: message.into(),
            unknown_key: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Key { file, key } => {
                if let Some(file) = file {
                    write!(f, "{}: ", file.display())?;
                }
                if !key.is_empty() {
                    write!(f, "{key}: ")?;
                }
                f.write_str(&self.message)
            }
            Origin::Env(var) => write!(f, "environment variable {var}: {}", self.message),
            Origin::Cli(flag) => write!(f, "{flag}: {}", self.message),
        }
    }
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key of the config document, e.g. `feature.fs.local[2]`; `file` is
    /// the file it was read from, if any. The empty key is the document root.
    Key {
        /// The file the document came from.
        file: Option<PathBuf>,
        /// The key path, e.g. `feature.fs.mode`.
        key: String,
    },
    /// A `MIRRORD_*` environment variable.
    Env(String),
    /// A command-line flag, e.g. `--target`.
    Cli(String),
}

impl Origin {
    /// The key path for key origins, `None` for env and CLI origins.
    pub fn key(&self) -> Option<&str> {
        match self {
            Origin::Key { key, .. } => Some(key),
            Origin::Env(_) | Origin::Cli(_) => None,
        }
    }
}

/// One step of a key path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySegment {
    /// `feature` in `feature.fs`.
    Key(String),
    /// `2` in `local[2]`.
    Index(usize),
}

/// Splits a key path as problems name it (`feature.fs.local[2]`) into its
/// steps; the empty path is the document root. Keys of the config model
/// never contain `.` or `[`, so the split is exact for every path this
/// crate reports.
pub fn split_key_path(key: &str) -> Vec<KeySegment> {
    let mut out = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out.push(KeySegment::Key(name.to_owned()));
        }
        for index in indexes.split('[') {
            if let Some(n) = index.strip_suffix(']').and_then(|n| n.parse().ok()) {
                out.push(KeySegment::Index(n));
            }
        }
    }
    out
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split_into_keys_and_indexes() {
        use KeySegment::{Index, Key};
        assert_eq!(split_key_path(""), vec![]);
        assert_eq!(
            split_key_path("feature.fs.local[2]"),
            vec![
                Key("feature".into()),
                Key("fs".into()),
                Key("local".into()),
                Index(2)
            ]
        );
        assert_eq!(
            split_key_path("a[0][1].b"),
            vec![Key("a".into()), Index(0), Index(1), Key("b".into())]
        );
    }
}
