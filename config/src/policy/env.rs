//! The environment the program starts with: local variables, plus the
//! target's that pass the filters, plus overrides.

use std::ffi::{OsStr, OsString};

use crate::model::env::EnvConfig;

/// Variables never taken from the target (besides any `MIRRORD_*`): they
/// describe the local machine or the way the program is started.
pub const NEVER_REMOTE: &[&str] = &[
    "PATH",
    "HOME",
    "HOSTNAME",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "TERM",
    "_",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// The program's environment. Starts from `local` (order kept); adds each
/// `remote` variable that is not built-in excluded ([`NEVER_REMOTE`],
/// `MIRRORD_*`), matches `include` (when set) and does not match `exclude`,
/// replacing a local one of the same name; then applies `cfg.overrides`,
/// which win over everything. With `cfg.enabled == false` nothing is taken
/// from `remote`.
pub fn merge(
    local: &[(OsString, OsString)],
    remote: &[(Vec<u8>, Vec<u8>)],
    cfg: &EnvConfig,
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = local.to_vec();
    if cfg.enabled {
        for (name, value) in remote {
            if takes(name, cfg) {
                set(&mut out, os(name), os(value));
            }
        }
    }
    for (name, value) in &cfg.overrides {
        set(&mut out, OsString::from(name), OsString::from(value));
    }
    out
}

fn takes(name: &[u8], cfg: &EnvConfig) -> bool {
    let any = |patterns: &[String]| patterns.iter().any(|p| wildcard(p.as_bytes(), name));
    !name.is_empty()
        && !NEVER_REMOTE.iter().any(|never| never.as_bytes() == name)
        && !name.starts_with(b"MIRRORD_")
        && cfg.include.as_deref().is_none_or(any)
        && !any(&cfg.exclude)
}

fn set(vars: &mut Vec<(OsString, OsString)>, name: OsString, value: OsString) {
    match vars.iter_mut().find(|(existing, _)| *existing == name) {
        Some(slot) => slot.1 = value,
        None => vars.push((name, value)),
    }
}

#[cfg(unix)]
fn os(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_owned()
}

#[cfg(not(unix))]
fn os(bytes: &[u8]) -> OsString {
    OsStr::new(&*String::from_utf8_lossy(bytes)).to_owned()
}

/// Whether `name` matches `pattern` in full, `*` matching any run of bytes.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(
        enabled: bool,
        include: Option<&[&str]>,
        exclude: &[&str],
        overrides: &[(&str, &str)],
    ) -> EnvConfig {
        EnvConfig {
            enabled,
            include: include.map(|list| list.iter().map(|s| s.to_string()).collect()),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// One row: local vars, remote vars, config, expected result ("K=V" each, in order).
    fn check(local: &[&str], remote: &[&str], cfg: &EnvConfig, expected: &[&str]) {
        let split = |kv: &&str| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        };
        let local: Vec<(OsString, OsString)> = local
            .iter()
            .map(split)
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let remote: Vec<(Vec<u8>, Vec<u8>)> = remote
            .iter()
            .map(split)
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let got: Vec<String> = merge(&local, &remote, cfg)
            .into_iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(got, expected, "{cfg:?}");
    }

    #[test]
    fn merge_rows() {
        let all = cfg(true, None, &[], &[]);
        check(
            &["A=l", "PATH=/l"],
            &["A=r", "B=r", "PATH=/r"],
            &all,
            &["A=r", "PATH=/l", "B=r"],
        );
        check(
            &["HOME=/l"],
            &[
                "HOME=/r",
                "HOSTNAME=pod",
                "PWD=/",
                "OLDPWD=/",
                "SHLVL=2",
                "TERM=x",
                "_=/bin/sh",
                "LD_PRELOAD=x",
                "LD_LIBRARY_PATH=x",
                "MIRRORD_AGENT=x",
                "KEEP=1",
            ],
            &all,
            &["HOME=/l", "KEEP=1"],
        );
        check(
            &["A=l"],
            &["A=r", "B=r"],
            &cfg(false, None, &[], &[("C", "o")]),
            &["A=l", "C=o"],
        );
        check(
            &[],
            &["DB_HOST=h", "DB_PORT=1", "API_KEY=k", "OTHER=o"],
            &cfg(true, Some(&["DB_*", "API_KEY"]), &[], &[]),
            &["DB_HOST=h", "DB_PORT=1", "API_KEY=k"],
        );
        check(
            &[],
            &["DB_HOST=h", "DB_PORT=1", "OTHER=o"],
            &cfg(true, Some(&["DB_*"]), &["*_PORT"], &[]),
            &["DB_HOST=h"],
        );
        check(
            &[],
            &["PATH=/r"],
            &cfg(true, Some(&["PATH", "*"]), &[], &[]),
            &[],
        );
        check(&["A=l"], &["A=r"], &cfg(true, None, &["A"], &[]), &["A=l"]);
        check(
            &["A=l"],
            &["A=r"],
            &cfg(true, None, &[], &[("A", "o"), ("PATH", "/o")]),
            &["A=o", "PATH=/o"],
        );
        check(&[], &["X=r"], &cfg(true, Some(&[]), &[], &[]), &[]);
    }

    #[test]
    fn wildcards() {
        let rows: &[(&str, &str, bool)] = &[
            ("A", "A", true),
            ("A", "AB", false),
            ("A*", "AB", true),
            ("*B", "AB", true),
            ("*", "", true),
            ("A*C*E", "ABCDE", true),
            ("A*C*E", "ABCDEF", false),
            ("**", "X", true),
            ("a", "A", false),
        ];
        for (pattern, name, expected) in rows {
            assert_eq!(
                wildcard(pattern.as_bytes(), name.as_bytes()),
                *expected,
                "{pattern} {name}"
            );
        }
    }
}
