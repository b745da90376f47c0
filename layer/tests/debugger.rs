//! Debuggers with no configuration: a debuggee's connections to its
//! debugger's loopback port stay local (ports from its command line or
//! `MIRRORD_LOCAL_PORTS`), and a debugger's helpers (gdb, lldb, debugpy's
//! launcher, `sh -c`) never connect to the intproxy while the debuggee they
//! start does.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use serde_json::Value;
use support::{checked, preloaded, python, CProgram, FakeProxy};

/// Every outgoing connection remote: only the debugger rules keep one local.
const ALL_REMOTE: &str = r#"{"feature":{"fs":"local","network":{"outgoing":true,"dns":true}}}"#;

/// A loopback port the fake intproxy answers for (nothing listens on it
/// locally): a connection that reaches the echo peer went through a relay.
const OTHER_PORT: u16 = 7;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "mirrord-layer-debugger-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` at `relative` (creating folders) and returns its path.
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A local TCP listener that answers each connection's first message with
/// `local:` and that message.
fn local_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 64];
            if let Ok(n) = conn.read(&mut buf) {
                let _ = conn.write_all(&[b"local:", &buf[..n]].concat());
            }
        }
    });
    port
}

/// A local UDP socket that answers each datagram with `local:` and it.
fn local_udp() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&[b"local:", &buf[..n]].concat(), from);
        }
    });
    port
}

/// Talks to `127.0.0.1:PORT` for each TCP port in `ports` (and over UDP
/// for `udp`), and prints what came back as JSON: `local:hi` from a local
/// peer, `hi` from the fake target's echo through a relay.
const CLIENT: &str = r#"
import json, os, socket
out = {}
for port in [int(p) for p in os.environ["TEST_TCP_PORTS"].split(",")]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"hi")
    out[str(port)] = s.recv(100).decode()
    s.close()
if os.environ.get("TEST_UDP_PORT"):
    port = int(os.environ["TEST_UDP_PORT"])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(b"hi", ("127.0.0.1", port))
    out["udp"] = u.recvfrom(100)[0].decode()
print(json.dumps(out))
"#;

fn run(cmd: &mut Command, proxy: &FakeProxy) -> Value {
    let out = checked(
        preloaded(cmd, proxy, ALL_REMOTE)
            .env("MIRRORD_LAYER_REQUEST_TIMEOUT_MS", "10000")
            .output()
            .expect("start the program"),
    );
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn relayed(proxy: &FakeProxy, port: u16) -> bool {
    let needle = format!("remote: 127.0.0.1:{port} }}");
    proxy.log().iter().any(|line| line.contains(&needle))
}

fn python_or_fail() -> PathBuf {
    python().expect("python3 is needed by this test (the test set-up installs it)")
}

#[test]
fn the_debugpy_connect_port_stays_local_and_other_loopback_ports_do_not() {
    let scratch = Scratch::new("connect");
    // A debuggee shaped like the one debugpy's launcher starts:
    // `python …/debugpy --connect 127.0.0.1:PORT … program`.
    scratch.write("site/debugpy/__main__.py", CLIENT);
    let debugpy = scratch.0.join("site/debugpy");
    let local = local_listener();
    let proxy = FakeProxy::start();
    let out = run(
        Command::new(python_or_fail())
            .args(["-X", "frozen_modules=off"])
            .arg(&debugpy)
            .arg("--connect")
            .arg(format!("127.0.0.1:{local}"))
            .args(["--configure-qt", "none", "app.py"])
            .env("TEST_TCP_PORTS", format!("{local},{OTHER_PORT}")),
        &proxy,
    );
    assert_eq!(out[local.to_string()], "local:hi", "{out}");
    assert_eq!(out[OTHER_PORT.to_string()], "hi", "{out}");
    assert!(!relayed(&proxy, local), "{:#?}", proxy.log());
    assert!(relayed(&proxy, OTHER_PORT), "{:#?}", proxy.log());

    // The same port named on the *program's* command line is not the
    // debugger's: it follows the outgoing filter (remote here).
    let script = scratch.write("app.py", CLIENT);
    let proxy = FakeProxy::start();
    let out = run(
        Command::new(python_or_fail())
            .arg(&script)
            .arg("--connect")
            .arg(format!("127.0.0.1:{local}"))
            .env("TEST_TCP_PORTS", local.to_string()),
        &proxy,
    );
    assert_eq!(out[local.to_string()], "hi", "{out}");
    assert!(relayed(&proxy, local), "{:#?}", proxy.log());
}

#[test]
fn mirrord_local_ports_keeps_tcp_and_udp_local() {
    let scratch = Scratch::new("env");
    let script = scratch.write("app.py", CLIENT);
    let tcp = local_listener();
    let udp = local_udp();
    let proxy = FakeProxy::start();
    let out = run(
        Command::new(python_or_fail())
            .arg(&script)
            .env("MIRRORD_LOCAL_PORTS", format!("bogus, {tcp} ,{udp}-{udp}"))
            .env("TEST_TCP_PORTS", format!("{tcp},{OTHER_PORT}"))
            .env("TEST_UDP_PORT", udp.to_string()),
        &proxy,
    );
    assert_eq!(out[tcp.to_string()], "local:hi", "{out}");
    assert_eq!(out["udp"], "local:hi", "{out}");
    assert_eq!(out[OTHER_PORT.to_string()], "hi", "{out}");
    assert!(!relayed(&proxy, tcp), "{:#?}", proxy.log());
    assert!(!relayed(&proxy, udp), "{:#?}", proxy.log());
    assert!(relayed(&proxy, OTHER_PORT), "{:#?}", proxy.log());
}

/// Starts `argv[1..]` as a child and waits for it, like a debugger
/// starting its debuggee.
const STARTER: &str = r#"
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 0;
    pid_t pid = fork();
    if (pid == 0) { execv(argv[1], argv + 1); _exit(127); }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
"#;

const DEBUGGEE: &str = "int main(void) { return 0; }\n";

/// The process names that said hello to the fake intproxy, sorted, each
/// once (a forked child of a mirrored process says hello again).
fn hellos(proxy: &FakeProxy) -> Vec<String> {
    let mut names: Vec<String> = proxy
        .log()
        .iter()
        .filter_map(|line| line.strip_prefix("hello ").map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn debuggers_named_like_gdb_or_lldb_stay_inert_and_their_debuggee_connects() {
    let debuggee = CProgram::build("dbg-debuggee", DEBUGGEE);
    for name in ["gdb", "lldb-dap-19"] {
        let starter = CProgram::build(name, STARTER);
        let proxy = FakeProxy::start();
        checked(
            preloaded(
                Command::new(&starter.binary).arg(&debuggee.binary),
                &proxy,
                ALL_REMOTE,
            )
            .output()
            .unwrap(),
        );
        assert_eq!(hellos(&proxy), [name_of(&debuggee.binary)], "{name}");
    }
    // The same program under a name of its own is mirrored.
    let starter = CProgram::build("dbg-starter", STARTER);
    let proxy = FakeProxy::start();
    checked(
        preloaded(
            Command::new(&starter.binary).arg(&debuggee.binary),
            &proxy,
            ALL_REMOTE,
        )
        .output()
        .unwrap(),
    );
    assert_eq!(
        hellos(&proxy),
        [name_of(&debuggee.binary), name_of(&starter.binary)]
    );
}

#[test]
fn a_shell_running_a_command_string_stays_inert_but_a_script_does_not() {
    let debuggee = CProgram::build("sh-debuggee", DEBUGGEE);
    let scratch = Scratch::new("shell");
    // `; true` keeps the shell from replacing itself with the program.
    let command = format!("{}; true", debuggee.binary.display());
    let shell_name = name_of(&std::fs::canonicalize("/bin/sh").unwrap());

    // gdb's startup-with-shell: `/bin/sh -c exec prog`.
    let proxy = FakeProxy::start();
    checked(
        preloaded(
            Command::new("/bin/sh").args(["-c", &command]),
            &proxy,
            ALL_REMOTE,
        )
        .output()
        .unwrap(),
    );
    assert_eq!(hellos(&proxy), [name_of(&debuggee.binary)]);

    // A user's script run by the same shell is the user's program.
    let script = scratch.write("run.sh", &format!("{command}\n"));
    let proxy = FakeProxy::start();
    checked(
        preloaded(Command::new("/bin/sh").arg(&script), &proxy, ALL_REMOTE)
            .output()
            .unwrap(),
    );
    let mut expected = vec![name_of(&debuggee.binary), shell_name];
    expected.sort();
    assert_eq!(hellos(&proxy), expected);
}

#[test]
fn debugpys_launcher_stays_inert_and_the_debuggee_it_starts_connects() {
    let debuggee = CProgram::build("py-debuggee", DEBUGGEE);
    let scratch = Scratch::new("launcher");
    // Shaped like debugpy's launcher: `python …/debugpy/launcher PORT --
    // program…`, which starts the program and waits for it.
    scratch.write(
        "site/debugpy/launcher/__main__.py",
        "import subprocess, sys\n\
         sep = sys.argv.index('--')\n\
         sys.exit(subprocess.call(sys.argv[sep + 1:]))\n",
    );
    let python = python_or_fail();
    let proxy = FakeProxy::start();
    checked(
        preloaded(
            Command::new(&python)
                .arg(scratch.0.join("site/debugpy/launcher"))
                .args(["41234", "--"])
                .arg(&debuggee.binary),
            &proxy,
            ALL_REMOTE,
        )
        .output()
        .unwrap(),
    );
    assert_eq!(hellos(&proxy), [name_of(&debuggee.binary)]);
}
