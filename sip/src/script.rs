//! Scripts: reading a `#!` line, resolving `/usr/bin/env NAME` through
//! `PATH`, and rewriting the line to name another interpreter.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The longest `#!` line the macOS kernel reads.
pub const MAX_SHEBANG: usize = 512;

/// A script's `#!` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter as written.
    pub interpreter: PathBuf,
    /// The rest of the line, trimmed (`None` when empty).
    pub args: Option<String>,
    /// For `#!/usr/bin/env [-S] NAME REST`: `NAME`, and `REST` trimmed.
    pub env_program: Option<(String, Option<String>)>,
}

impl Shebang {
    /// The `#!` line of `data`, if it starts with one.
    pub fn parse(data: &[u8]) -> Result<Option<Shebang>, Error> {
        let Some(rest) = data.strip_prefix(b"#!") else {
            return Ok(None);
        };
        let line_end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        if line_end + 2 > MAX_SHEBANG {
            return Err(Error::Script("the #! line is longer than 512 bytes".into()));
        }
        let line = std::str::from_utf8(&rest[..line_end])
            .map_err(|_| Error::Script("the #! line is not UTF-8".into()))?
            .trim_end_matches('\r')
            .trim();
        let (interpreter, args) = match line.split_once([' ', '\t']) {
            Some((i, a)) => (i, Some(a.trim()).filter(|a| !a.is_empty())),
            None => (line, None),
        };
        if interpreter.is_empty() {
            return Err(Error::Script("the #! line names no interpreter".into()));
        }
        let interpreter = PathBuf::from(interpreter);
        let env_program = match (interpreter.file_name(), args) {
            (Some(name), Some(args)) if name == OsStr::new("env") => {
                let args = args.strip_prefix("-S").map_or(args, str::trim_start);
                let (program, rest) = match args.split_once([' ', '\t']) {
                    Some((p, r)) => (p, Some(r.trim().to_owned()).filter(|r| !r.is_empty())),
                    None => (args, None),
                };
                (!program.starts_with('-') && !program.contains('=') && !program.is_empty())
                    .then(|| (program.to_owned(), rest))
            }
            _ => None,
        };
        Ok(Some(Shebang {
            interpreter,
            args: args.map(str::to_owned),
            env_program,
        }))
    }
}

/// `name` found in the directories of `path_var` (an executable regular
/// file), or `name` itself when it has a `/`.
pub fn resolve_in_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `data` with its `#!` line replaced by one running `interpreter` with
/// `args`.
pub fn rewrite(data: &[u8], interpreter: &Path, args: Option<&str>) -> Result<Vec<u8>, Error> {
    let interpreter = interpreter
        .to_str()
        .filter(|p| !p.contains([' ', '\t', '\n']))
        .ok_or_else(|| {
            Error::Script(format!(
                "{} cannot be named in a #! line (not UTF-8, or has spaces)",
                interpreter.display()
            ))
        })?;
    let mut line = format!("#!{interpreter}");
    if let Some(args) = args {
        line.push(' ');
        line.push_str(args);
    }
    if line.len() + 1 > MAX_SHEBANG {
        return Err(Error::Script(
            "the patched #! line would be longer than 512 bytes".into(),
        ));
    }
    let body_start = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let mut out = line.into_bytes();
    out.extend_from_slice(&data[body_start..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, interpreter: &str, args: Option<&str>, env: Option<(&str, Option<&str>)>) {
        let shebang = Shebang::parse(line.as_bytes()).unwrap().unwrap();
        assert_eq!(shebang.interpreter, PathBuf::from(interpreter), "{line}");
        assert_eq!(shebang.args.as_deref(), args, "{line}");
        assert_eq!(
            shebang
                .env_program
                .as_ref()
                .map(|(p, r)| (p.as_str(), r.as_deref())),
            env,
            "{line}"
        );
    }

    #[test]
    fn shebang_lines() {
        check("#!/bin/bash\necho", "/bin/bash", None, None);
        check("#! /bin/sh -e \r\n", "/bin/sh", Some("-e"), None);
        check(
            "#!/usr/bin/env python3\n",
            "/usr/bin/env",
            Some("python3"),
            Some(("python3", None)),
        );
        check(
            "#!/usr/bin/env -S node --inspect\n",
            "/usr/bin/env",
            Some("-S node --inspect"),
            Some(("node", Some("--inspect"))),
        );
        check("#!/usr/bin/env -i\n", "/usr/bin/env", Some("-i"), None);
        check(
            "#!/usr/bin/env A=1 x\n",
            "/usr/bin/env",
            Some("A=1 x"),
            None,
        );
        assert_eq!(Shebang::parse(b"\x7fELF").unwrap(), None);
        assert!(Shebang::parse(b"#!\n").is_err());
        let long = format!("#!/bin/{}\n", "x".repeat(600));
        assert!(Shebang::parse(long.as_bytes()).is_err());
    }

    proptest::proptest! {
        /// A parsed line rewritten to name another interpreter (as the
        /// patcher does) parses back to it with the same arguments, the
        /// body kept (the `shebang` fuzz target checks the same on any
        /// bytes).
        #[test]
        fn rewritten_lines_parse_back(
            line in "[ -~\t\r]{0,100}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut data = format!("#!{line}\n").into_bytes();
            data.extend_from_slice(&body);
            let Ok(Some(shebang)) = Shebang::parse(&data) else {
                return Ok(());
            };
            let args = match &shebang.env_program {
                Some((_, rest)) => rest.clone(),
                None => shebang.args.clone(),
            };
            let out = rewrite(&data, Path::new("/cache/k/python3"), args.as_deref()).unwrap();
            let again = Shebang::parse(&out).unwrap().unwrap();
            proptest::prop_assert_eq!(again.interpreter, PathBuf::from("/cache/k/python3"));
            proptest::prop_assert_eq!(again.args, args);
            proptest::prop_assert!(out.ends_with(&body));
        }
    }

    #[test]
    fn path_resolution_takes_the_first_executable() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(a.join("tool"), "not executable").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(resolve_in_path("tool", Some(&path)), Some(b.join("tool")));
        assert_eq!(resolve_in_path("missing", Some(&path)), None);
        assert_eq!(resolve_in_path("tool", None), None);
        assert_eq!(
            resolve_in_path("./x/tool", Some(&path)),
            Some(PathBuf::from("./x/tool"))
        );
    }

    #[test]
    fn rewrite_keeps_the_body() {
        let out = rewrite(
            b"#!/usr/bin/env python3 -u\nprint(1)\n",
            Path::new("/c/python3"),
            Some("-u"),
        )
        .unwrap();
        assert_eq!(out, b"#!/c/python3 -u\nprint(1)\n");
        assert!(rewrite(b"#!/bin/sh\n", Path::new("/a b/sh"), None).is_err());
    }
}
