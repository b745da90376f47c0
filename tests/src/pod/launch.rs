//! Starting a pod from the `standin-pod` binary: fork, new namespaces,
//! fork again (the grandchild is PID 1 of the new PID namespace) and exec
//! the pod's init with the pod's environment.
//!
//! Every process on the way has `PR_SET_PDEATHSIG = SIGKILL`, so killing
//! the `standin-pod` process in any way (even SIGKILL) takes the pod, its
//! namespaces and its tmpfs root with it. Nothing is ever written to the
//! host's disk.

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::fd::FromRawFd;

use anyhow::{bail, Context};

use super::spec::PodSpec;

/// The running pod, as seen by the launcher.
pub struct Launched {
    /// The pod's PID 1, as the host sees it.
    pub pid: i32,
    /// The intermediate process that waits for it.
    pub keeper: i32,
}

/// Must be called while the process has a single thread.
pub fn launch(spec: &PodSpec) -> anyhow::Result<Launched> {
    let spec_json = serde_json::to_string(spec)?;
    let exe = CString::new("/proc/self/exe")?;
    let mut fds = [0i32; 2];
    // SAFETY: plain syscalls; the rest of this function follows the rules
    // for code between fork and exec (no allocation in the children beyond
    // what is prepared here).
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            bail!("pipe: {}", std::io::Error::last_os_error());
        }
        let (read_fd, write_fd) = (fds[0], fds[1]);
        libc::fcntl(read_fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let argv: Vec<CString> = vec![
            CString::new("standin-pod")?,
            CString::new("__init")?,
            CString::new(write_fd.to_string())?,
            CString::new(spec_json)?,
        ];
        let envp: Vec<CString> = spec
            .env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        let argv_ptrs: Vec<*const libc::c_char> = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp_ptrs: Vec<*const libc::c_char> = envp
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let launcher = libc::getpid();
        let keeper = libc::fork();
        if keeper < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if keeper == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != launcher {
                libc::_exit(1);
            }
            let flags = libc::CLONE_NEWNS
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC;
            if libc::unshare(flags) != 0 {
                let msg = b"error unshare failed (standin-pod needs root)\n";
                libc::write(write_fd, msg.as_ptr().cast(), msg.len());
                libc::_exit(1);
            }
            let init = libc::fork();
            if init == 0 {
                // (Its parent is outside its PID namespace, so getppid()
                // says 0 here and cannot confirm the keeper still lives;
                // the keeper kills it on the way out in any case.)
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::execve(exe.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
                libc::_exit(127);
            }
            // Report the pod's host PID, then wait for it.
            let mut line = [0u8; 32];
            let text = format_pid(init, &mut line);
            libc::write(write_fd, text.as_ptr().cast(), text.len());
            libc::close(write_fd);
            let mut status = 0;
            libc::waitpid(init, &mut status, 0);
            libc::_exit(0);
        }
        libc::close(write_fd);
        let reader = BufReader::new(std::fs::File::from_raw_fd(read_fd));
        // The keeper's `pid` line and the pod's `ready` line come from two
        // processes, in either order.
        let (mut pid, mut ready) = (None, false);
        for line in reader.lines() {
            let line = line.context("reading the pod's readiness")?;
            if let Some(p) = line.strip_prefix("pid ") {
                pid = p.trim().parse::<i32>().ok();
            } else if line == "ready" {
                ready = true;
            } else if let Some(e) = line.strip_prefix("error ") {
                libc::kill(keeper, libc::SIGKILL);
                bail!("the pod failed to start: {e}");
            }
            if let (Some(pid), true) = (pid, ready) {
                return Ok(Launched { pid, keeper });
            }
        }
        libc::kill(keeper, libc::SIGKILL);
        bail!("the pod exited before it was ready (pid reported: {pid:?}, ready: {ready})")
    }
}

/// `pid N\n` without allocating (we are between fork and exec).
fn format_pid(pid: i32, buf: &mut [u8; 32]) -> &[u8] {
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[..4].copy_from_slice(b"pid ");
    for i in 0..len {
        buf[4 + i] = digits[len - 1 - i];
    }
    buf[4 + len] = b'\n';
    &buf[..5 + len]
}

/// Kills the pod (its PID namespace dies with its PID 1) and reaps the keeper.
pub fn stop(launched: &Launched) {
    // SAFETY: signalling and reaping our own processes.
    unsafe {
        libc::kill(launched.pid, libc::SIGKILL);
        libc::kill(launched.keeper, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(launched.keeper, &mut status, 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_pids() {
        let mut buf = [0u8; 32];
        assert_eq!(super::format_pid(0, &mut buf), b"pid 0\n");
        assert_eq!(super::format_pid(4194304, &mut buf), b"pid 4194304\n");
    }
}
