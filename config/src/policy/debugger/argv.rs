//! Reading command lines: basenames, and what a Python interpreter was asked
//! to run.

/// The last component of `path` (`/usr/bin/gdb` → `gdb`); a trailing `/`
/// is ignored.
pub fn basename(path: &[u8]) -> &[u8] {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// The program name `argv[0]` stands for: its basename, without the `-` a
/// login shell's `argv[0]` starts with (`-bash` → `bash`).
pub fn program_name(argv0: &[u8]) -> &[u8] {
    let name = basename(argv0);
    name.strip_prefix(b"-").unwrap_or(name)
}

/// `path` without a trailing `/__main__.py` or `/`: a package directory
/// and its `__main__.py` run the same code.
pub fn package_path(path: &[u8]) -> &[u8] {
    let path = path.strip_suffix(b"/__main__.py").unwrap_or(path);
    path.strip_suffix(b"/").unwrap_or(path)
}

/// Whether `path` names the package `parent/child` (`.../debugpy/launcher`,
/// `debugpy/adapter/`, `.../debugpy/adapter/__main__.py`).
pub fn is_package(path: &[u8], parent: &[u8], child: &[u8]) -> bool {
    let path = package_path(path);
    let Some(rest) = path.strip_suffix(child) else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(b"/") else {
        return false;
    };
    basename(rest) == parent && !rest.ends_with(b"/")
}

/// What a Python interpreter runs, from the arguments after `argv[0]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonTarget<'a> {
    /// `-m MODULE`; `rest` are the module's arguments.
    Module {
        module: &'a [u8],
        rest: &'a [&'a [u8]],
    },
    /// `SCRIPT` (a file, a directory or a zip); `rest` are its arguments.
    Script {
        path: &'a [u8],
        rest: &'a [&'a [u8]],
    },
    /// `-c CODE`.
    Code { code: &'a [u8] },
}

/// Interpreter options that take the next argument as their value.
const PYTHON_LONG_WITH_VALUE: &[&[u8]] = &[b"--check-hash-based-pycs"];

/// Reads Python's own options (`-X frozen_modules=off`, `-E`, `-Bm mod`,
/// `-W error`...) and returns what it runs; `None` for stdin (`-`, or no
/// operand) or a malformed line (`-m` with no module).
pub fn python_target<'a>(args: &'a [&'a [u8]]) -> Option<PythonTarget<'a>> {
    let mut i = 0;
    while let Some(&arg) = args.get(i) {
        i += 1;
        if arg == b"--" {
            let path = *args.get(i)?;
            return Some(PythonTarget::Script {
                path,
                rest: &args[i + 1..],
            });
        }
        if arg == b"-" {
            return None;
        }
        if arg.starts_with(b"--") {
            if PYTHON_LONG_WITH_VALUE.contains(&arg) {
                i += 1;
            }
            continue;
        }
        let Some(cluster) = arg.strip_prefix(b"-") else {
            return Some(PythonTarget::Script {
                path: arg,
                rest: &args[i..],
            });
        };
        // A cluster of one-letter flags; `m`, `c`, `X` and `W` take the
        // rest of the cluster, or else the next argument, as their value.
        for (at, letter) in cluster.iter().enumerate() {
            if !matches!(letter, b'm' | b'c' | b'X' | b'W') {
                continue;
            }
            let attached = &cluster[at + 1..];
            let value = if attached.is_empty() {
                i += 1;
                *args.get(i - 1)?
            } else {
                attached
            };
            match letter {
                b'm' => {
                    return Some(PythonTarget::Module {
                        module: value,
                        rest: &args[i..],
                    })
                }
                b'c' => return Some(PythonTarget::Code { code: value }),
                _ => break,
            }
        }
    }
    None
}

/// The whitespace-separated words of an option variable (`NODE_OPTIONS`,
/// `JAVA_TOOL_OPTIONS`...). Quotes are not interpreted: no option this
/// module reads contains a space.
pub fn words(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<&[u8]> {
        words(line.as_bytes()).collect()
    }

    #[test]
    fn basenames() {
        let rows: &[(&str, &str, &str)] = &[
            ("/usr/bin/gdb", "gdb", "gdb"),
            ("gdb", "gdb", "gdb"),
            ("-bash", "-bash", "bash"),
            ("/bin/", "bin", "bin"),
            ("", "", ""),
        ];
        for (path, base, program) in rows {
            assert_eq!(basename(path.as_bytes()), base.as_bytes(), "{path}");
            assert_eq!(program_name(path.as_bytes()), program.as_bytes(), "{path}");
        }
    }

    #[test]
    fn packages() {
        let rows: &[(&str, bool)] = &[
            ("/site/debugpy/launcher", true),
            ("/site/debugpy/launcher/", true),
            ("/site/debugpy/launcher/__main__.py", true),
            ("debugpy/launcher", true),
            ("/site/debugpy//launcher", false),
            ("/site/notdebugpy/launcher", false),
            ("/site/debugpy/launchers", false),
            ("/site/debugpy/launcher/handlers.py", false),
            ("launcher", false),
            ("/launcher", false),
        ];
        for (path, expected) in rows {
            assert_eq!(
                is_package(path.as_bytes(), b"debugpy", b"launcher"),
                *expected,
                "{path}"
            );
        }
    }

    #[test]
    fn python_targets() {
        use PythonTarget::{Code, Module, Script};
        let rows: &[(&str, Option<PythonTarget>)] = &[
            (
                "-m debugpy.adapter --port 1",
                Some(Module {
                    module: b"debugpy.adapter",
                    rest: &[b"--port", b"1"],
                }),
            ),
            (
                "-E -Bmdebugpy.launcher 9",
                Some(Module {
                    module: b"debugpy.launcher",
                    rest: &[b"9"],
                }),
            ),
            (
                "-X frozen_modules=off /s/debugpy --connect 1",
                Some(Script {
                    path: b"/s/debugpy",
                    rest: &[b"--connect", b"1"],
                }),
            ),
            (
                "-Xdev -W error --check-hash-based-pycs never app.py",
                Some(Script {
                    path: b"app.py",
                    rest: &[],
                }),
            ),
            (
                "-- -weird.py",
                Some(Script {
                    path: b"-weird.py",
                    rest: &[],
                }),
            ),
            ("-c print(1) x", Some(Code { code: b"print(1)" })),
            ("-Ic pass", Some(Code { code: b"pass" })),
            ("-m", None),
            ("-X", None),
            ("--", None),
            ("-", None),
            ("", None),
            ("-u -E", None),
        ];
        for (line, expected) in rows {
            let args = split(line);
            assert_eq!(python_target(&args), *expected, "{line}");
        }
    }

    #[test]
    fn option_words() {
        let got: Vec<&[u8]> = words(b"  --inspect\t--max-old-space-size=1 \n").collect();
        assert_eq!(got, vec![&b"--inspect"[..], b"--max-old-space-size=1"]);
        assert_eq!(words(b"   ").count(), 0);
    }
}
