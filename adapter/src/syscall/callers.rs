//! Which stopped callers the supervisor leaves alone, as the layer stays
//! inert in them: programs of `skip_processes`, and a debugger's own
//! processes (`dlv` itself, the `go build` it runs, a launcher shell). A
//! debugger started under the filter passes it on to its debuggee, whose
//! calls are the only ones answered from the target.
//!
//! The answer is remembered per thread and executable: a thread that
//! `exec`s another program is asked about again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use mirrord_config::policy::debugger::is_debugger_helper;
use mirrord_config::policy::SkipPolicy;

pub struct Callers {
    skip: SkipPolicy,
    known: Mutex<HashMap<u32, (PathBuf, bool)>>,
}

impl Callers {
    pub fn new(skip: SkipPolicy) -> Callers {
        Callers {
            skip,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the calls of thread `tid` run untouched. A thread that is
    /// gone is not left alone (its call is answered `ENOENT` anyway).
    pub fn left_alone(&self, tid: u32) -> bool {
        let Ok(exe) = std::fs::read_link(format!("/proc/{tid}/exe")) else {
            return false;
        };
        if let Ok(known) = self.known.lock() {
            if let Some((seen, answer)) = known.get(&tid) {
                if *seen == exe {
                    return *answer;
                }
            }
        }
        let cmdline = std::fs::read(format!("/proc/{tid}/cmdline")).unwrap_or_default();
        let answer = decide(&self.skip, &exe, &cmdline);
        if let Ok(mut known) = self.known.lock() {
            // Threads come and go: forget the old ones now and then.
            if known.len() > 4096 {
                known.clear();
            }
            known.insert(tid, (exe, answer));
        }
        answer
    }
}

fn decide(skip: &SkipPolicy, exe: &std::path::Path, cmdline: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let exe = exe.as_os_str().as_bytes();
    let argv: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .collect();
    skip.skips(exe) || is_debugger_helper(exe, &argv)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn debuggers_toolchains_and_skipped_programs_are_left_alone() {
        let skip = SkipPolicy::new(&["bash".into()]);
        let rows: &[(&str, &[u8], bool)] = &[
            ("/usr/bin/dlv", b"dlv\0dap\0--listen\x00127.0.0.1:1\0", true),
            ("/usr/lib/go-1.19/bin/go", b"go\0build\0-o\0x\0", true),
            (
                "/usr/lib/go-1.19/pkg/tool/linux_amd64/compile",
                b"compile\0-o\0",
                true,
            ),
            ("/usr/bin/bash", b"bash\0run.sh\0", true),
            ("/tmp/x/__debug_bin", b"/tmp/x/__debug_bin\0", false),
            ("/tmp/x/server", b"./server\0--port\x008080\0", false),
        ];
        for (exe, cmdline, expected) in rows {
            assert_eq!(
                decide(&skip, Path::new(exe), cmdline),
                *expected,
                "{exe} {cmdline:?}"
            );
        }
    }

    #[test]
    fn this_test_runner_is_not_left_alone_and_a_gone_thread_neither() {
        let callers = Callers::new(SkipPolicy::default());
        assert!(!callers.left_alone(std::process::id()));
        assert!(!callers.left_alone(u32::MAX - 1));
    }
}
