//! A seccomp listener whose supervisor does not exist yet. The DAP proxy
//! starts a Go debugger (`dlv`) under the filter before any session is
//! up, so that the program the debugger later starts inherits it; until
//! the launch starts the session, every stopped call of the debugger
//! continues at once. Then the listener goes to the session's supervisor
//! ([`Standby::hand_off`]), which answers the debuggee's calls from then
//! on and lets the debugger's own through.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use super::handoff::{self, HandoffError};
use super::notify::{Listener, Reply};

/// The listener, answered "continue" by a thread of its own.
pub struct Standby {
    /// Writing a byte (or closing it) stops the thread.
    stop: OwnedFd,
    thread: JoinHandle<OwnedFd>,
}

impl Standby {
    pub fn start(listener: OwnedFd) -> io::Result<Standby> {
        let (wake, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("seccomp-standby".into())
            .spawn(move || continue_all(Listener::new(listener), wake))?;
        Ok(Standby { stop, thread })
    }

    /// Stops answering and hands the listener, with the session's config,
    /// to the supervisor at `supervisor`. Blocks until it has taken over.
    pub fn hand_off(self, supervisor: &str, config_json: &str) -> Result<(), HandoffError> {
        let sender = handoff::Sender::connect(supervisor)?;
        let listener = self.stop_thread()?;
        sender.send(listener, config_json)
    }

    fn stop_thread(self) -> io::Result<OwnedFd> {
        drop(self.stop);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the seccomp standby thread panicked"))
    }
}

/// Answers every notification with "continue" until `wake` is readable
/// or closed; returns the listener.
fn continue_all(listener: Listener, wake: OwnedFd) -> OwnedFd {
    let mut listening = true;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.fd().as_raw_fd(),
                events: if listening { libc::POLLIN } else { 0 },
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            break;
        }
        let events = fds[1].revents;
        if events & libc::POLLIN != 0 {
            // POLLIN: a notification is queued, so this does not block.
            if let Ok(n) = listener.recv() {
                // ENOENT: the caller died meanwhile; nothing to answer.
                let _ = listener.respond(n.id, Reply::Continue);
            }
        } else if events & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            // No process left under the filter: wait for the stop alone.
            listening = false;
        }
    }
    listener.into_fd()
}

/// The child's half of passing the listener to the parent across `exec`,
/// run between `fork` and `exec`: it allocates nothing and uses only
/// `write` and `read`, which the filter lets through (the calls that can
/// carry an fd, `sendmsg` and `sendmmsg`, stop, and nobody would answer
/// them yet). It offers its PID and the listener's number on `socket`
/// and waits until the parent has copied the listener out of it
/// ([`take_listener_from_child`]).
pub fn offer_listener_from_child(socket: i32, listener: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    let pid = unsafe { libc::getpid() };
    let mut offer = [0u8; 8];
    offer[..4].copy_from_slice(&pid.to_ne_bytes());
    offer[4..].copy_from_slice(&listener.to_ne_bytes());
    let mut sent = 0;
    while sent < offer.len() {
        // SAFETY: `offer` is valid for its length.
        let n = unsafe { libc::write(socket, offer[sent..].as_ptr().cast(), offer.len() - sent) };
        match n {
            n if n > 0 => sent += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
    let mut taken = [0u8; 1];
    loop {
        // SAFETY: `taken` is valid for its length.
        let n = unsafe { libc::read(socket, taken.as_mut_ptr().cast(), 1) };
        match n {
            1 => return Ok(()),
            0 => {
                return Err(io::Error::other(
                    "the parent did not take the seccomp listener",
                ))
            }
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

/// The parent's half, on a thread of its own (the child waits for it
/// while `spawn` waits for the child's `exec`): copies the listener the
/// child offers on `socket` out of the child (`pidfd_getfd`; the child is
/// ours), then lets it go on.
pub fn take_listener_from_child(
    socket: std::os::unix::net::UnixStream,
) -> io::Result<JoinHandle<io::Result<OwnedFd>>> {
    std::thread::Builder::new()
        .name("seccomp-take".into())
        .spawn(move || {
            use std::io::{Read, Write};
            let mut socket = socket;
            let mut offer = [0u8; 8];
            socket.read_exact(&mut offer).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("the child offered no seccomp listener: {e}"),
                )
            })?;
            let word = |at: usize| [offer[at], offer[at + 1], offer[at + 2], offer[at + 3]];
            let pid = u32::from_ne_bytes(word(0));
            let fd = i32::from_ne_bytes(word(4));
            let listener = super::net::socket_of(pid, fd)?;
            socket.write_all(&[1])?;
            Ok(listener)
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::syscall::filter;

    /// A child under the filter runs normally while the standby answers,
    /// and the listener comes back when it stops.
    #[test]
    fn a_filtered_child_runs_while_on_standby_and_the_listener_comes_back() {
        let prog = filter::program(filter::INTERCEPTED);
        let (parent, child) = std::os::unix::net::UnixStream::pair().unwrap();
        let child_fd = child.as_raw_fd();
        let mut cmd = Command::new("sh");
        // `cat` opens a file (a stopped call) and `sh` stats PATH entries.
        cmd.args(["-c", "cat /etc/hostname >/dev/null && echo ran"]);
        cmd.stdout(std::process::Stdio::piped());
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let listener = filter::install_program(&prog)?;
                offer_listener_from_child(child_fd, listener)
            });
        }
        let taker = take_listener_from_child(parent).unwrap();
        let running = cmd.spawn().unwrap();
        drop(child);
        let listener = taker.join().unwrap().unwrap();
        let standby = Standby::start(listener).unwrap();
        let output = running.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"ran\n");
        // Every process under the filter is gone; the stop still returns
        // the listener, promptly.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(standby.stop_thread().map(|_| ())));
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the standby thread did not stop")
            .unwrap();
    }
}
