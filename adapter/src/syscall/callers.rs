//! Which stopped callers the supervisor leaves alone, as the layer stays
//! inert in them: programs of `skip_processes`, and a debugger's own
//! processes (`dlv` itself, the `go build` it runs and the `git` that runs,
//! a launcher shell). A
//! debugger started under the filter passes it on to its debuggee, whose
//! calls are the only ones answered from the target.
//!
//! The answer is remembered per thread and executable: a thread that
//! `exec`s another program is asked about again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use mirrord_config::policy::debugger::{is_debugger_helper, is_helper_by_parent, needs_parent};
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
        let answer = decide(&self.skip, &exe, &cmdline, || parent_of(tid));
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

/// `parent`: the executable and command line of the caller's parent,
/// read only when the answer depends on it.
fn decide(
    skip: &SkipPolicy,
    exe: &std::path::Path,
    cmdline: &[u8],
    parent: impl FnOnce() -> Option<(PathBuf, Vec<u8>)>,
) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let exe = exe.as_os_str().as_bytes();
    let argv = split_cmdline(cmdline);
    if skip.skips(exe) || is_debugger_helper(exe, &argv) {
        return true;
    }
    if !needs_parent(exe, &argv) {
        return false;
    }
    parent().is_some_and(|(parent_exe, parent_cmdline)| {
        let parent_argv = split_cmdline(&parent_cmdline);
        is_helper_by_parent(exe, &argv, parent_exe.as_os_str().as_bytes(), &parent_argv)
    })
}

fn split_cmdline(cmdline: &[u8]) -> Vec<&[u8]> {
    cmdline
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .collect()
}

/// The executable and command line of thread `tid`'s process's parent.
fn parent_of(tid: u32) -> Option<(PathBuf, Vec<u8>)> {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).ok()?;
    // `PID (comm) STATE PPID ...`; comm may hold spaces and parentheses.
    let ppid: u32 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    Some((exe, cmdline))
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
        let no_parent = || -> Option<(PathBuf, Vec<u8>)> { panic!("the parent is not needed") };
        for (exe, cmdline, expected) in rows {
            assert_eq!(
                decide(&skip, Path::new(exe), cmdline, no_parent),
                *expected,
                "{exe} {cmdline:?}"
            );
        }
    }

    #[test]
    fn git_is_left_alone_when_go_build_runs_it() {
        let skip = SkipPolicy::default();
        let git = Path::new("/usr/bin/git");
        let status = b"git\0status\0--porcelain\0";
        let go = || {
            Some((
                PathBuf::from("/usr/lib/go-1.19/bin/go"),
                b"go\0build\0".to_vec(),
            ))
        };
        let app = || Some((PathBuf::from("/tmp/x/server"), b"./server\0".to_vec()));
        assert!(decide(&skip, git, status, go));
        assert!(!decide(&skip, git, status, app));
        assert!(!decide(&skip, git, status, || None));
    }

    #[test]
    fn the_parent_of_a_thread_is_read_from_proc() {
        let (exe, cmdline) = parent_of(std::process::id()).expect("this process's parent");
        assert!(!exe.as_os_str().is_empty());
        assert!(!cmdline.is_empty());
    }

    #[test]
    fn this_test_runner_is_not_left_alone_and_a_gone_thread_neither() {
        let callers = Callers::new(SkipPolicy::default());
        assert!(!callers.left_alone(std::process::id()));
        assert!(!callers.left_alone(u32::MAX - 1));
    }
}
