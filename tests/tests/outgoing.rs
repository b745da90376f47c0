//! Outgoing traffic through the agent under load, and programs mirrord is
//! told to leave alone.

use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{leftovers, mirrord_exec, programs_dir, spawn_until_line, Scratch};

/// Both directions of an echo stream at once: every buffer on the way
/// fills, and nothing may wait on something that waits on it.
#[test]
fn a_bulk_echo_stream_completes_both_ways() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let code = r#"
import socket, threading, hashlib
data = bytes(range(256)) * (256 * 1024)  # 64 MiB
s = socket.create_connection(("127.0.0.1", 7001), timeout=20)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
got = bytearray()
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    got += chunk
print("bytes=%d" % len(got))
print("same=%s" % (hashlib.sha256(got).digest() == hashlib.sha256(data).digest()))
"#;
    let out = mirrord_exec(
        &pod.target(),
        None,
        &["python3", "-c", code],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(out.value("bytes"), Some("67108864"), "{out:#?}");
    assert_eq!(out.value("same"), Some("True"));
    assert!(leftovers(out.pid, Some(pod.pid), Duration::from_secs(3)).is_empty());
}

/// A server that speaks first: its greeting reaches the program whole,
/// right behind the agent's answer on the side stream, and the program's
/// half-close reaches the server. A connection to a closed port fails in
/// `connect` with the target's `ECONNREFUSED`.
#[test]
fn first_bytes_half_closes_and_refusals_reach_the_program() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let server = r#"
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 7990))
l.listen()
print("ready", flush=True)
c, _ = l.accept()
c.sendall(b"220 greeting from the pod\r\n")
got = b""
while True:
    chunk = c.recv(4096)
    if not chunk:
        break
    got += chunk
c.sendall(b"server got %d bytes after your EOF" % len(got))
c.close()
"#;
    let mut server = spawn_until_line(
        pod.net_command("python3").args(["-c", server]),
        "ready",
        Duration::from_secs(10),
    )
    .expect("the pod's server starts");
    let client = r#"
import errno, socket
s = socket.create_connection(("127.0.0.1", 7990), timeout=20)
greeting = b""
while not greeting.endswith(b"\r\n"):
    greeting += s.recv(4096)
print("greeting=%s" % greeting.decode().strip())
s.sendall(b"x" * 100000)
s.shutdown(socket.SHUT_WR)
rest = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    rest += chunk
print("rest=%s" % rest.decode())
try:
    socket.create_connection(("127.0.0.1", 7991), timeout=20)
    print("refused=no")
except OSError as e:
    print("refused=%s" % errno.errorcode.get(e.errno))
"#;
    let out = mirrord_exec(
        &pod.target(),
        None,
        &["python3", "-c", client],
        Duration::from_secs(60),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(
        out.value("greeting"),
        Some("220 greeting from the pod"),
        "{out:#?}"
    );
    assert_eq!(
        out.value("rest"),
        Some("server got 100000 bytes after your EOF")
    );
    assert_eq!(out.value("refused"), Some("ECONNREFUSED"), "{out:#?}");
    assert!(leftovers(out.pid, Some(pod.pid), Duration::from_secs(3)).is_empty());
}

#[test]
fn a_skipped_process_runs_untouched() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("skip");
    let config = scratch.write(
        "mirrord.json",
        r#"{"skip_processes": ["python3", "python3.11"], "feature": {"fs": "read"}}"#,
    );
    let probe = programs_dir().join("probe.py");
    let out = mirrord_exec(
        &pod.target(),
        Some(&config),
        &["python3", probe.to_str().expect("utf-8"), "skipped."],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:#?}");
    // The environment is the session's (set by `mirrord exec` before the
    // program starts); everything the layer would do is not done.
    assert_eq!(out.value("skipped.file"), Some("ERR:ENOENT"), "{out:#?}");
    assert!(
        out.value("skipped.dns")
            .is_some_and(|v| v.starts_with("ERR")),
        "{out:#?}"
    );
    assert!(leftovers(out.pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}
