//! On macOS, the programs a launch configuration starts that would drop
//! `DYLD_INSERT_LIBRARIES` (SIP-protected, restricted, hardened: see
//! `mirrord-sip`) are swapped for patched copies, so the layer loads into
//! the debuggee. Elsewhere the real host is `None` and nothing changes.
//!
//! | debug type | keys holding the program the adapter starts |
//! |---|---|
//! | debugpy, python | `python` (a path, or a list whose first item is the path), `pythonPath` |
//! | node, pwa-node, php | `runtimeExecutable` |
//! | lldb (CodeLLDB), lldb-vscode, lldb-dap, cppdbg, coreclr | `program` |
//! | go | `program`, with `"mode": "exec"` only (otherwise dlv builds it) |
//! | java | `javaExec` |
//! | rdbg | `rdbgPath` (a Ruby script, run by its interpreter) |
//! | runInTerminal (a reverse request) | `args[0]` |
//! | anything else | `program`, `runtimeExecutable` |
//!
//! A value is a path (relative to the configuration's `cwd`) or a bare name
//! looked up in `PATH` (the configuration's own `PATH`, else ours). Keys
//! that are absent, name no file, or name an unprotected program stay as
//! they are.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::Context;
use mirrord_sip::exec::Lookup;
use mirrord_sip::{Host, Patched, Patcher};
use serde_json::{Map, Value};

use super::env_shape;

/// One program swapped for its patched copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub key: String,
    pub original: String,
    pub copy: PathBuf,
}

/// The keys of `debug_type` that name the program an adapter starts.
pub fn program_keys(
    debug_type: Option<&str>,
    args: &Map<String, Value>,
) -> &'static [&'static str] {
    match debug_type.unwrap_or("") {
        "debugpy" | "python" => &["python", "pythonPath"],
        "node" | "pwa-node" | "php" => &["runtimeExecutable"],
        "lldb" | "lldb-vscode" | "lldb-dap" | "cppdbg" | "coreclr" => &["program"],
        "go" if args.get("mode").and_then(Value::as_str) == Some("exec") => &["program"],
        "go" => &[],
        "java" => &["javaExec"],
        "rdbg" => &["rdbgPath"],
        "runInTerminal" => &["args"],
        _ => &["program", "runtimeExecutable"],
    }
}

/// Swaps the protected programs of a launch configuration (or of a
/// `runInTerminal` request's arguments, with `debug_type`
/// `Some("runInTerminal")`) for patched copies on `host`; `None` (any host
/// but macOS, see [`Host::current`]) changes nothing.
pub fn swap_protected(
    args: &mut Map<String, Value>,
    debug_type: Option<&str>,
    host: Option<&Host>,
) -> anyhow::Result<Vec<Swap>> {
    let Some(host) = host else {
        return Ok(Vec::new());
    };
    let mut host = host.clone();
    if let Some(path) = config_path_var(args, debug_type) {
        host.path_var = Some(path);
    }
    let cwd = args
        .get("cwd")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(PathBuf::from);
    let patcher = Patcher::new(host);
    let mut swaps = Vec::new();
    for key in program_keys(debug_type, args) {
        let Some(slot) = program_slot(args, key) else {
            continue;
        };
        let Some(original) = slot.as_str().map(str::to_owned) else {
            continue;
        };
        let Some(path) = patcher.locate(OsStr::new(&original), Lookup::Search, cwd.as_deref())
        else {
            continue;
        };
        let patched = patcher
            .patch(&path)
            .with_context(|| format!("cannot patch `{key}` ({original}) for macOS SIP"))?;
        if let Patched::Copy { path: copy, .. } = patched {
            *slot = Value::String(copy.to_string_lossy().into_owned());
            swaps.push(Swap {
                key: (*key).to_owned(),
                original,
                copy,
            });
        }
    }
    Ok(swaps)
}

/// The program `mirrord exec` runs (`program`, as typed: a path relative
/// to `cwd` or a bare name looked up in `PATH`), swapped for its patched
/// copy when `host` protects it; `None` when it runs as it is (any host
/// but macOS, an unprotected program, or no such file: `exec` reports
/// that itself).
pub fn swap_program(
    program: &str,
    cwd: &Path,
    host: Option<&Host>,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(host) = host else {
        return Ok(None);
    };
    Patcher::new(host.clone())
        .exec_program(OsStr::new(program), Lookup::Search, Some(cwd))
        .with_context(|| format!("cannot patch `{program}` for macOS SIP"))
}

/// The string holding the program under `key`: the value itself, or the
/// first item of a list (`python: [path, args...]`, `args: [program, ...]`).
fn program_slot<'a>(args: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    match args.get_mut(key)? {
        Value::Array(list) => list.first_mut(),
        value => Some(value),
    }
}

/// `PATH` as the configuration sets it for the debuggee, if it does.
fn config_path_var(args: &Map<String, Value>, debug_type: Option<&str>) -> Option<OsString> {
    let shape = env_shape::shape_of(debug_type, None, args);
    env_shape::user_env(args, shape)
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .and_then(|(_, v)| v.map(OsString::from))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use mirrord_sip::codesign::CS_RUNTIME;
    use mirrord_sip::fixtures::Fixture;
    use mirrord_sip::Arch;
    use serde_json::json;

    use super::*;

    /// A simulated Mac: `usr/` is SIP-protected, `opt/` is not; `PATH` has
    /// `usr/bin`.
    struct Mac {
        dir: tempfile::TempDir,
        host: Host,
    }

    impl Mac {
        fn new() -> Mac {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            for sub in ["usr/bin", "opt/bin", "cache"] {
                fs::create_dir_all(root.join(sub)).unwrap();
            }
            let binary = Fixture::new(Arch::Arm64).build();
            for tool in ["python3", "node", "sh", "java", "php", "ruby", "app"] {
                put(&root.join("usr/bin").join(tool), &binary);
                put(&root.join("opt/bin").join(tool), &binary);
            }
            put(
                &root.join("opt/bin/hardened"),
                &Fixture::new(Arch::X86_64).signed(CS_RUNTIME).build(),
            );
            let env = root.join("usr/bin/env");
            put(&env, &binary);
            put(
                &root.join("opt/bin/rdbg"),
                format!("#!{} ruby\nputs 1\n", env.display()).as_bytes(),
            );
            let host = Host {
                protected_roots: vec![root.join("usr")],
                unprotected_roots: vec![],
                cache_dir: root.join("cache"),
                layer_archs: vec![Arch::X86_64, Arch::Arm64],
                path_var: Some(root.join("usr/bin").into_os_string()),
            };
            Mac { dir, host }
        }

        fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).to_string_lossy().into_owned()
        }
    }

    fn put(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Rewrites `config` for `debug_type` and returns the swapped keys,
    /// checking that each new value is a copy in the cache.
    fn check(mac: &Mac, debug_type: Option<&str>, config: Value) -> Vec<String> {
        let mut args = config.as_object().cloned().unwrap();
        let before = args.clone();
        let swaps = swap_protected(&mut args, debug_type, Some(&mac.host)).unwrap();
        for swap in &swaps {
            assert!(swap.copy.starts_with(&mac.host.cache_dir), "{swap:?}");
        }
        // Nothing but the swapped values changed.
        for (key, value) in &before {
            if !swaps.iter().any(|s| &s.key == key) {
                assert_eq!(&args[key], value, "{debug_type:?}: {key}");
            }
        }
        assert!(swap_protected(&mut before.clone(), debug_type, None)
            .unwrap()
            .is_empty());
        swaps.into_iter().map(|s| s.key).collect()
    }

    #[test]
    fn exec_runs_a_protected_program_as_its_copy_and_others_as_they_are() {
        let mac = Mac::new();
        let cwd = mac.dir.path();
        let swap = |program: &str| swap_program(program, cwd, Some(&mac.host)).unwrap();
        let by_name = swap("python3").expect("found in PATH (usr/bin), protected");
        assert!(by_name.starts_with(&mac.host.cache_dir), "{by_name:?}");
        let relative = swap("./usr/bin/app").expect("relative to cwd, protected");
        assert!(relative.starts_with(&mac.host.cache_dir), "{relative:?}");
        assert_eq!(swap(&mac.path("opt/bin/app")), None, "not protected");
        assert!(
            swap(&mac.path("opt/bin/hardened")).is_some(),
            "hardened runtime"
        );
        assert_eq!(swap("no-such-program"), None, "exec reports it");
        assert_eq!(
            swap_program("python3", cwd, None).unwrap(),
            None,
            "not a Mac"
        );
    }

    #[test]
    fn protected_programs_are_swapped_for_every_debug_type() {
        let mac = Mac::new();
        let (p, u) = (
            |t: &str| mac.path(&format!("usr/bin/{t}")),
            |t: &str| mac.path(&format!("opt/bin/{t}")),
        );
        type Row = (Option<&'static str>, Value, &'static [&'static str]);
        let rows: Vec<Row> = vec![
            (
                Some("debugpy"),
                json!({"python": p("python3"), "program": "main.py"}),
                &["python"],
            ),
            (
                Some("debugpy"),
                json!({"python": [p("python3"), "-X", "dev"]}),
                &["python"],
            ),
            (Some("debugpy"), json!({"python": u("python3")}), &[]),
            (
                Some("python"),
                json!({"pythonPath": p("python3")}),
                &["pythonPath"],
            ),
            (
                Some("node"),
                json!({"runtimeExecutable": "node", "program": "a.js"}),
                &["runtimeExecutable"],
            ),
            (
                Some("pwa-node"),
                json!({"runtimeExecutable": u("node")}),
                &[],
            ),
            (
                Some("php"),
                json!({"runtimeExecutable": p("php")}),
                &["runtimeExecutable"],
            ),
            (Some("lldb"), json!({"program": p("app")}), &["program"]),
            (
                Some("lldb"),
                json!({"program": u("hardened")}),
                &["program"],
            ),
            (Some("lldb"), json!({"program": u("app")}), &[]),
            (
                Some("lldb-vscode"),
                json!({"program": p("app")}),
                &["program"],
            ),
            (
                Some("lldb-dap"),
                json!({"program": "./usr/bin/app", "cwd": mac.path("")}),
                &["program"],
            ),
            (Some("cppdbg"), json!({"program": p("sh")}), &["program"]),
            (Some("coreclr"), json!({"program": p("app")}), &["program"]),
            (Some("coreclr"), json!({"program": "bin/app.dll"}), &[]),
            (
                Some("go"),
                json!({"mode": "exec", "program": p("app")}),
                &["program"],
            ),
            (
                Some("go"),
                json!({"mode": "debug", "program": p("app")}),
                &[],
            ),
            (
                Some("java"),
                json!({"javaExec": p("java"), "mainClass": "A"}),
                &["javaExec"],
            ),
            (Some("rdbg"), json!({"rdbgPath": u("rdbg")}), &["rdbgPath"]),
            (
                Some("runInTerminal"),
                json!({"args": [p("sh"), "-c", "x"]}),
                &["args"],
            ),
            (
                None,
                json!({"program": p("app"), "runtimeExecutable": u("node")}),
                &["program"],
            ),
            (Some("lldb"), json!({"program": "not-there"}), &[]),
        ];
        for (debug_type, config, expected) in rows {
            assert_eq!(
                check(&mac, debug_type, config.clone()),
                expected,
                "{debug_type:?} {config}"
            );
        }
    }

    #[test]
    fn lists_keep_their_arguments_and_env_path_is_used() {
        let mac = Mac::new();
        let mut args = json!({"python": [mac.path("usr/bin/python3"), "-X", "dev"]})
            .as_object()
            .cloned()
            .unwrap();
        swap_protected(&mut args, Some("debugpy"), Some(&mac.host)).unwrap();
        assert_eq!(args["python"][1], "-X");
        assert!(args["python"][0].as_str().unwrap().ends_with("/python3"));

        // The configuration's PATH puts the unprotected node first.
        let mut args = json!({"runtimeExecutable": "node", "env": {"PATH": mac.path("opt/bin")}})
            .as_object()
            .cloned()
            .unwrap();
        let swaps = swap_protected(&mut args, Some("node"), Some(&mac.host)).unwrap();
        assert!(swaps.is_empty());
        assert_eq!(args["runtimeExecutable"], "node");
    }

    #[test]
    fn the_real_host_does_nothing_off_macos() {
        let host = Host::current();
        assert_eq!(host.is_some(), cfg!(target_os = "macos"));
        let mut args = json!({"program": "/bin/sh"}).as_object().cloned().unwrap();
        if host.is_none() {
            assert!(swap_protected(&mut args, Some("lldb"), host.as_ref())
                .unwrap()
                .is_empty());
            assert_eq!(args["program"], "/bin/sh");
        }
    }
}
