//! Which files are opened locally, which on the target, and which the
//! program is told do not exist.

use regex::bytes::RegexSet;

use crate::{
    error::{ConfigError, Origin, Problem},
    model::fs::{FsConfig, FsMode, PathPattern},
    model::pattern::one_line_regex_error,
};

/// Where an open of a path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileRoute {
    /// Open the local file (call libc).
    Local,
    /// Open the file on the target; `writable` says whether the remote open
    /// may write (when false, the caller opens it read-only).
    Remote { writable: bool },
    /// Fail with `ENOENT`.
    NotFound,
}

/// Read from the target even where the built-in local list says local.
const REMOTE_OVERRIDES: &[&[u8]] = &[b"/etc/resolv.conf", b"/etc/hosts", b"/etc/hostname"];

/// The program's own runtime, kept local in modes `read` and `write`
/// (each entry with everything below it).
pub const DEFAULT_LOCAL: &[&str] = &[
    "/proc", "/sys", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
    "/opt", "/root", "/home", "/tmp", "/var/tmp", "/run", "/snap", "/nix", "/etc",
];

/// The compiled file policy.
#[derive(Debug, Clone)]
pub struct FsPolicy {
    mode: FsMode,
    not_found: RegexSet,
    local: RegexSet,
    read_only: RegexSet,
    read_write: RegexSet,
}

impl FsPolicy {
    /// Compiles the user's path lists.
    pub fn new(config: &FsConfig) -> Result<FsPolicy, ConfigError> {
        let mut problems = Vec::new();
        let mut compile = |key: &str, patterns: &[PathPattern]| {
            RegexSet::new(patterns.iter().map(PathPattern::as_str)).unwrap_or_else(|error| {
                problems.push(Problem::new(
                    Origin::Key {
                        file: None,
                        key: format!("feature.fs.{key}"),
                    },
                    format!(
                        "cannot compile the patterns: {}",
                        one_line_regex_error(&error)
                    ),
                ));
                RegexSet::empty()
            })
        };
        let policy = FsPolicy {
            mode: config.mode,
            not_found: compile("not_found", &config.not_found),
            local: compile("local", &config.local),
            read_only: compile("read_only", &config.read_only),
            read_write: compile("read_write", &config.read_write),
        };
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(ConfigError::invalid(problems))
        }
    }

    /// Where an open of `path` (absolute and normalised by the caller) goes;
    /// `write` is true for opens that may write (`O_WRONLY`, `O_RDWR`,
    /// `O_CREAT`, `O_TRUNC`, `O_APPEND`). First match wins: the user's
    /// `not_found`, `local`, `read_only`, `read_write`, the built-in remote
    /// files, the built-in local directories, then the mode's default.
    pub fn route(&self, path: &[u8], write: bool) -> FileRoute {
        let read_remote = || {
            if write {
                FileRoute::Local
            } else {
                FileRoute::Remote { writable: false }
            }
        };
        if self.mode == FsMode::Local {
            return FileRoute::Local;
        }
        if self.not_found.is_match(path) {
            return FileRoute::NotFound;
        }
        if self.local.is_match(path) {
            return FileRoute::Local;
        }
        if self.read_only.is_match(path) {
            return read_remote();
        }
        if self.read_write.is_match(path) {
            return FileRoute::Remote { writable: true };
        }
        if REMOTE_OVERRIDES.contains(&path) {
            return read_remote();
        }
        match self.mode {
            FsMode::Local | FsMode::LocalWithOverrides => FileRoute::Local,
            _ if is_default_local(path) => FileRoute::Local,
            FsMode::Read => read_remote(),
            FsMode::Write => FileRoute::Remote { writable: true },
        }
    }

    /// The mode this policy was built from.
    pub fn mode(&self) -> FsMode {
        self.mode
    }
}

/// Whether `path` is one of [`DEFAULT_LOCAL`] or below one (whole components:
/// `/usr/x` is, `/usrx` is not).
fn is_default_local(path: &[u8]) -> bool {
    DEFAULT_LOCAL.iter().any(|dir| {
        path.strip_prefix(dir.as_bytes())
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use FileRoute::{Local, NotFound, Remote};

    const RO: FileRoute = Remote { writable: false };
    const RW: FileRoute = Remote { writable: true };

    fn config(mode: FsMode, lists: &[(&str, &str)]) -> FsConfig {
        let mut config = FsConfig {
            mode,
            ..FsConfig::default()
        };
        for (list, pattern) in lists {
            let pattern = PathPattern::new(pattern).unwrap();
            match *list {
                "read_write" => config.read_write.push(pattern),
                "read_only" => config.read_only.push(pattern),
                "local" => config.local.push(pattern),
                "not_found" => config.not_found.push(pattern),
                other => panic!("no list {other}"),
            }
        }
        config
    }

    /// Rows of (path, write, expected route) against one config.
    fn check(config: &FsConfig, rows: &[(&str, bool, FileRoute)]) {
        let policy = FsPolicy::new(config).unwrap();
        for (path, write, expected) in rows {
            assert_eq!(
                policy.route(path.as_bytes(), *write),
                *expected,
                "{:?} {path} write={write}",
                config.mode
            );
        }
    }

    #[test]
    fn mode_local_keeps_everything_local() {
        let config = config(
            FsMode::Local,
            &[("read_write", "^/app"), ("not_found", ".")],
        );
        check(
            &config,
            &[
                ("/app/x", false, Local),
                ("/etc/hosts", false, Local),
                ("/data", true, Local),
            ],
        );
    }

    #[test]
    fn mode_read() {
        let config = config(FsMode::Read, &[]);
        check(
            &config,
            &[
                ("/app/config.yaml", false, RO),
                ("/app/config.yaml", true, Local),
                ("/etc/hosts", false, RO),
                ("/etc/resolv.conf", false, RO),
                ("/etc/hostname", false, RO),
                ("/etc/hosts", true, Local),
                ("/etc/passwd", false, Local),
                ("/etc", false, Local),
                ("/usr", false, Local),
                ("/usr/lib/libc.so.6", false, Local),
                ("/usrx/file", false, RO),
                ("/proc/self/maps", false, Local),
                ("/tmp/x", true, Local),
                ("/var/tmp/x", false, Local),
                ("/var/log/app.log", false, RO),
                ("/home/dev/.bashrc", false, Local),
                ("/", false, RO),
            ],
        );
    }

    #[test]
    fn mode_write() {
        let config = config(FsMode::Write, &[]);
        check(
            &config,
            &[
                ("/app/data", false, RW),
                ("/app/data", true, RW),
                ("/etc/hosts", false, RO),
                ("/etc/hosts", true, Local),
                ("/lib64/ld-linux-x86-64.so.2", false, Local),
                ("/nix/store/x", false, Local),
                ("/libx", false, RW),
            ],
        );
    }

    #[test]
    fn mode_localwithoverrides() {
        let config = config(
            FsMode::LocalWithOverrides,
            &[
                ("read_write", "^/data/"),
                ("read_only", "^/config/"),
                ("not_found", "\\.secret$"),
            ],
        );
        check(
            &config,
            &[
                ("/app/x", false, Local),
                ("/data/a", false, RW),
                ("/data/a", true, RW),
                ("/config/a", false, RO),
                ("/config/a", true, Local),
                ("/data/a.secret", false, NotFound),
                ("/etc/hosts", false, RO),
                ("/etc/resolv.conf", true, Local),
                ("/etc/passwd", false, Local),
                ("/usr/bin/x", false, Local),
            ],
        );
    }

    #[test]
    fn user_lists_beat_built_ins_in_precedence_order() {
        let config = config(
            FsMode::Read,
            &[
                ("not_found", "^/tmp/gone$"),
                ("local", "^/etc/hosts$"),
                ("local", "^/srv/local"),
                ("read_only", "^/srv/"),
                ("read_only", "^/tmp/shared"),
                ("read_write", "^/srv/"),
                ("read_write", "^/home/remote/"),
                ("read_write", "^/tmp/gone$"),
            ],
        );
        check(
            &config,
            &[
                ("/tmp/gone", false, NotFound),
                ("/etc/hosts", false, Local),
                ("/srv/local/x", false, Local),
                ("/srv/x", false, RO),
                ("/srv/x", true, Local),
                ("/tmp/shared/y", false, RO),
                ("/home/remote/z", true, RW),
                ("/home/dev/z", false, Local),
            ],
        );
    }

    #[test]
    fn non_utf8_paths_are_routed() {
        let config = config(FsMode::Read, &[("not_found", "^/data/")]);
        let policy = FsPolicy::new(&config).unwrap();
        assert_eq!(policy.route(b"/data/\xff\xfe", false), NotFound);
        assert_eq!(policy.route(b"/srv/\xff", false), RO);
    }
}
