//! Which processes are a debugger's own helpers: the layer loads into them
//! (they inherit `LD_PRELOAD`) but stays inert, exactly as for
//! `skip_processes`.
//!
//! Three kinds:
//! - debuggers, debug adapters and the toolchains a debugger runs to build
//!   the debuggee, by executable name ([`DEBUGGERS`], [`TOOLCHAIN`], the Go
//!   tools under `…/pkg/tool/…`, and every name starting with `lldb`);
//! - debugpy's adapter and launcher (`python -m debugpy.adapter`, `python
//!   …/debugpy/launcher PORT -- …`). The debuggee debugpy starts is
//!   `python …/debugpy --connect HOST:PORT … program` or `python -m debugpy
//!   …`: not a helper;
//! - a shell used as a launcher: `sh -c 'exec prog'` (gdb's
//!   startup-with-shell, `system()`), or a shell with no script (every
//!   argument an option: `bash`, `bash --login -i`, `sh -s`). A shell
//!   running a script (`bash run.sh`) is the user's program.
//!
//! And one kind known only with its parent ([`is_helper_by_parent`]): a
//! version-control tool a debugger or its toolchain started (`go build` in
//! a module under git runs `git status` and `git log` to stamp the
//! binary). A `git` run by the user's program, or by a shell, is the
//! user's.

use super::argv::{basename, is_package, program_name, python_target, PythonTarget};

/// Debuggers and debug adapters, by executable basename. Every basename
/// starting with `lldb` is one too (`lldb-dap-19`, `lldb-server`...).
pub const DEBUGGERS: &[&[u8]] = &[
    b"gdb",
    b"gdbserver",
    b"gdb-multiarch",
    b"dlv",
    b"dlv-dap",
    b"netcoredbg",
    b"vsdbg",
];

/// The C and Go toolchain a debugger runs to build the debuggee (delve's
/// `go build`, cgo's `gcc`), by executable basename.
pub const TOOLCHAIN: &[&[u8]] = &[
    b"go",
    b"gofmt",
    b"gcc",
    b"g++",
    b"cc",
    b"c++",
    b"cc1",
    b"cc1plus",
    b"collect2",
    b"ld",
    b"ld.bfd",
    b"ld.gold",
    b"as",
];

/// Go's tool binaries, which count only under a `…/pkg/tool/…` directory
/// (their names are too common elsewhere).
pub const GO_TOOLS: &[&[u8]] = &[b"compile", b"link", b"asm", b"cgo", b"vet", b"buildid"];

/// Version-control tools the Go command runs to stamp a build, helpers
/// when a debugger or toolchain started them ([`is_helper_by_parent`]).
pub const VCS: &[&[u8]] = &[b"git", b"hg", b"svn", b"bzr", b"fossil"];

/// Shells, by executable basename.
pub const SHELLS: &[&[u8]] = &[b"sh", b"bash", b"dash", b"zsh", b"ksh", b"fish"];

/// Whether the process running `exe` (the target of `/proc/self/exe`; may be
/// empty when unknown) with `argv` (`argv[0]` included) is a debugger's
/// helper, in which the layer stays inert. Does not allocate.
pub fn is_debugger_helper(exe: &[u8], argv: &[&[u8]]) -> bool {
    let argv0 = argv.first().copied().unwrap_or_default();
    let args = argv.get(1..).unwrap_or_default();
    let names = [basename(exe), program_name(argv0)];
    if names.iter().any(|name| is_debugger_or_tool(name)) || is_go_tool(exe) || is_go_tool(argv0) {
        return true;
    }
    if names.iter().any(|name| SHELLS.contains(name)) && shell_is_launcher(args) {
        return true;
    }
    runs_debugpy_helper(args)
}

/// Whether the process is a helper only if its parent is one: a
/// version-control tool ([`VCS`]). Cheap: callers read the parent's
/// executable and command line only when this says so.
pub fn needs_parent(exe: &[u8], argv: &[&[u8]]) -> bool {
    let argv0 = argv.first().copied().unwrap_or_default();
    VCS.contains(&basename(exe)) || VCS.contains(&program_name(argv0))
}

/// Whether the process running `exe` with `argv` is a helper because of
/// the process that started it (`parent_exe`, `parent_argv`): a
/// version-control tool ([`needs_parent`]) started by a debugger or a
/// toolchain (`dlv`, `go`...; not a shell, which may be the user's
/// `system()`). Does not allocate.
pub fn is_helper_by_parent(
    exe: &[u8],
    argv: &[&[u8]],
    parent_exe: &[u8],
    parent_argv: &[&[u8]],
) -> bool {
    if !needs_parent(exe, argv) {
        return false;
    }
    let parent_argv0 = parent_argv.first().copied().unwrap_or_default();
    [basename(parent_exe), program_name(parent_argv0)]
        .iter()
        .any(|name| is_debugger_or_tool(name))
        || is_go_tool(parent_exe)
}

fn is_debugger_or_tool(name: &[u8]) -> bool {
    name.starts_with(b"lldb") || DEBUGGERS.contains(&name) || TOOLCHAIN.contains(&name)
}

fn is_go_tool(path: &[u8]) -> bool {
    GO_TOOLS.contains(&basename(path)) && path.windows(10).any(|w| w == b"/pkg/tool/")
}

/// Shell options that take the next argument as their value.
const SHELL_LONG_WITH_VALUE: &[&[u8]] = &[b"--rcfile", b"--init-file", b"--init-command"];

/// Whether a shell with these arguments runs no script of the user's: it
/// runs a command string (`-c`), reads commands from stdin (`-s`), or has
/// only options (interactive).
fn shell_is_launcher(args: &[&[u8]]) -> bool {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if *arg == b"--" || *arg == b"-" {
            // End of options: what follows, if anything, is the script.
            return rest.next().is_none();
        }
        if arg.starts_with(b"--") {
            if *arg == b"--command" || arg.starts_with(b"--command=") {
                return true; // fish
            }
            if SHELL_LONG_WITH_VALUE.contains(arg) {
                rest.next();
            }
            continue;
        }
        let cluster = match arg.first() {
            Some(b'-' | b'+') if arg.len() > 1 => &arg[1..],
            _ => return false, // A script operand.
        };
        for letter in cluster {
            match letter {
                b'c' | b's' if arg[0] == b'-' => return true,
                b'o' | b'O' => {
                    rest.next();
                }
                _ => {}
            }
        }
    }
    true
}

/// debugpy's adapter and launcher (the modules, their package directories,
/// and the `debugpy-adapter` console script); not debugpy itself, which
/// is the debuggee.
fn runs_debugpy_helper(args: &[&[u8]]) -> bool {
    match python_target(args) {
        Some(PythonTarget::Module { module, .. }) => {
            let module = module.strip_suffix(b".__main__").unwrap_or(module);
            module == b"debugpy.adapter" || module == b"debugpy.launcher"
        }
        Some(PythonTarget::Script { path, .. }) => {
            is_package(path, b"debugpy", b"adapter")
                || is_package(path, b"debugpy", b"launcher")
                || basename(path) == b"debugpy-adapter"
        }
        Some(PythonTarget::Code { .. }) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exe`, the command line (split on spaces), and the expected answer.
    fn check(rows: &[(&str, &str, bool)]) {
        for (exe, line, expected) in rows {
            let argv: Vec<&[u8]> = line
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::as_bytes)
                .collect();
            assert_eq!(
                is_debugger_helper(exe.as_bytes(), &argv),
                *expected,
                "exe {exe:?}, argv {line:?}"
            );
        }
    }

    #[test]
    fn debuggers_by_name() {
        check(&[
            ("/usr/bin/gdb", "gdb --interpreter=dap", true),
            ("/usr/libexec/gdb", "/opt/bin/gdbserver :1234 prog", true),
            ("", "gdb-multiarch", true),
            ("/usr/bin/lldb", "lldb", true),
            ("/usr/lib/llvm-14/bin/lldb-vscode", "lldb-vscode-14", true),
            ("/usr/bin/lldb-dap-19", "lldb-dap-19", true),
            ("/x/lldb-server", "lldb-server gdbserver", true),
            ("/x/lldb-argdumper", "lldb-argdumper", true),
            ("/root/go/bin/dlv", "dlv dap --listen 127.0.0.1:0", true),
            ("/x/dlv-dap", "dlv-dap", true),
            (
                "/usr/bin/netcoredbg",
                "netcoredbg --interpreter=vscode",
                true,
            ),
            ("/x/vsdbg", "vsdbg", true),
            // Not debuggers.
            ("/usr/bin/rdbg", "rdbg app.rb", false),
            ("/usr/bin/gdbus", "gdbus", false),
            ("/app/mygdb", "mygdb", false),
            ("/app/server", "/app/server --gdb", false),
            ("", "", false),
        ]);
    }

    #[test]
    fn toolchains_by_name() {
        check(&[
            ("/usr/local/go/bin/go", "go build -o __debug_bin", true),
            ("/usr/local/go/bin/gofmt", "gofmt", true),
            ("/usr/bin/x86_64-linux-gnu-gcc-12", "gcc -c x.c", true),
            (
                "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
                "/usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet",
                true,
            ),
            ("/usr/lib/gcc/x/12/collect2", "collect2", true),
            ("/usr/bin/x86_64-linux-gnu-ld.bfd", "/usr/bin/ld", true),
            ("/usr/bin/x86_64-linux-gnu-as", "as --64", true),
            ("/usr/bin/cc", "cc", true),
            // Go tools count only under …/pkg/tool/….
            (
                "/usr/local/go/pkg/tool/linux_amd64/compile",
                "compile -o x",
                true,
            ),
            ("/usr/local/go/pkg/tool/linux_amd64/link", "link", true),
            ("/usr/local/go/pkg/tool/linux_amd64/cgo", "cgo", true),
            ("/usr/local/go/pkg/tool/linux_amd64/asm", "asm", true),
            ("/usr/local/go/pkg/tool/linux_amd64/vet", "vet", true),
            (
                "/usr/local/go/pkg/tool/linux_amd64/buildid",
                "buildid",
                true,
            ),
            ("", "/usr/local/go/pkg/tool/linux_amd64/compile", true),
            ("/app/compile", "compile", false),
            ("/usr/bin/link", "link a b", false),
            ("/usr/local/go/pkg/tool/linux_amd64/pprof", "pprof", false),
            ("/app/goapp", "goapp", false),
            ("/app/ldap", "ldap", false),
        ]);
    }

    #[test]
    fn version_control_run_by_the_toolchain() {
        let split = |line: &'static str| -> Vec<&'static [u8]> {
            line.split(' ').map(str::as_bytes).collect()
        };
        // (exe, argv, parent exe, parent argv, helper)
        let rows = [
            (
                "/usr/bin/git",
                "git status --porcelain",
                "/usr/lib/go-1.19/bin/go",
                "go build -o x",
                true,
            ),
            (
                "/usr/local/bin/git",
                "git -c log.showsignature=false log -1",
                "/usr/local/go/bin/go",
                "go build",
                true,
            ),
            ("/usr/bin/hg", "hg id", "/usr/bin/dlv", "dlv dap", true),
            // Started by the user's program or a shell: the user's.
            ("/usr/bin/git", "git log", "/app/server", "./server", false),
            (
                "/usr/bin/git",
                "git log",
                "/usr/bin/dash",
                "sh -c git log",
                false,
            ),
            // Not a version-control tool: its parent does not matter.
            (
                "/app/server",
                "./server",
                "/usr/bin/dlv",
                "dlv exec ./server",
                false,
            ),
        ];
        for (exe, line, parent_exe, parent_line, expected) in rows {
            assert_eq!(
                is_helper_by_parent(
                    exe.as_bytes(),
                    &split(line),
                    parent_exe.as_bytes(),
                    &split(parent_line)
                ),
                expected,
                "{line} under {parent_line}"
            );
            assert!(
                !is_debugger_helper(exe.as_bytes(), &split(line)),
                "{line} alone"
            );
        }
        assert!(needs_parent(b"", &split("git status")));
        assert!(!needs_parent(b"/usr/bin/cat", &split("cat")));
    }

    #[test]
    fn shells_as_launchers() {
        check(&[
            // gdb's startup-with-shell, system(), a task runner.
            ("/usr/bin/dash", "/bin/sh -c exec /app/prog", true),
            ("/usr/bin/bash", "bash -lc make", true),
            ("/usr/bin/bash", "bash -e -c true", true),
            ("/usr/bin/zsh", "zsh -c x", true),
            ("/usr/bin/fish", "fish --command=x", true),
            ("/usr/bin/fish", "fish --command x", true),
            // Interactive: only options.
            ("/usr/bin/bash", "bash", true),
            ("/usr/bin/bash", "bash -l", true),
            ("/usr/bin/bash", "bash --login -i", true),
            ("/usr/bin/bash", "-bash", true),
            ("/usr/bin/bash", "bash -o pipefail", true),
            ("/usr/bin/bash", "bash --rcfile /x/rc", true),
            ("/usr/bin/ksh", "ksh +o emacs", true),
            ("/usr/bin/dash", "sh -s a b", true),
            ("/usr/bin/dash", "sh --", true),
            ("", "sh", true),
            ("/bin/busybox", "sh -c x", true),
            // Scripts: the user's program.
            ("/usr/bin/bash", "bash script.sh", false),
            ("/usr/bin/dash", "sh ./run.sh -c args", false),
            ("/usr/bin/bash", "bash -e script.sh", false),
            ("/usr/bin/bash", "bash -o pipefail script.sh", false),
            ("/usr/bin/bash", "bash --rcfile /x/rc script.sh", false),
            ("/usr/bin/bash", "bash -- script.sh", false),
            ("/usr/bin/bash", "bash +c script.sh", false),
            ("/usr/bin/zsh", "/usr/bin/zsh /app/start.zsh", false),
            // Not shells.
            ("/usr/bin/python3", "python3 -c x", false),
            ("/app/shx", "shx -c x", false),
        ]);
    }

    #[test]
    fn debugpy_helpers_and_its_debuggee() {
        let site = "/usr/lib/python3/site-packages";
        let rows = [
            // The adapter.
            ("python3 -m debugpy.adapter".to_owned(), true),
            ("python3 -m debugpy.adapter --port 5678 --host 127.0.0.1".to_owned(), true),
            ("python3 -E -mdebugpy.adapter".to_owned(), true),
            ("python3 -m debugpy.adapter.__main__".to_owned(), true),
            (format!("python3 {site}/debugpy/adapter --for-server 41000 --host 127.0.0.1 --port 5678"), true),
            (format!("python3 {site}/debugpy/adapter/"), true),
            (format!("python3 {site}/debugpy/adapter/__main__.py"), true),
            ("/venv/bin/python /venv/bin/debugpy-adapter --port 5678".to_owned(), true),
            // The launcher, as the adapter spawns it.
            (format!("python3 {site}/debugpy/launcher 41234 -- app.py --flag"), true),
            (format!("python3 -X frozen_modules=off {site}/debugpy/launcher 127.0.0.1:41234 -- app.py"), true),
            ("python3 -m debugpy.launcher 41234 -- -m app".to_owned(), true),
            // The debuggee, as the launcher spawns it.
            (format!("python3 -X frozen_modules=off {site}/debugpy --connect 127.0.0.1:41000 --configure-qt none --adapter-access-token t app.py"), false),
            ("python3 -m debugpy --listen 5678 --wait-for-client app.py".to_owned(), false),
            ("/venv/bin/python /venv/bin/debugpy --listen 5678 app.py".to_owned(), false),
            // The helpers' names elsewhere on the line are not the helper.
            (format!("python3 app.py {site}/debugpy/launcher"), false),
            ("python3 -c import debugpy.adapter".to_owned(), false),
            ("python3 -m app -m debugpy.adapter".to_owned(), false),
            ("python3 -m".to_owned(), false),
            ("python3 -m debugpy.adapters".to_owned(), false),
            (format!("python3 {site}/debugpy/launcher/handlers.py"), false),
        ];
        for (line, expected) in rows {
            check(&[("/usr/bin/python3.11", line.as_str(), expected)]);
        }
    }
}
