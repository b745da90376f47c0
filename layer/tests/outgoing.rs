//! Outgoing connections, UDP and DNS through a fake intproxy, seen by a real
//! Python program with the layer preloaded.

mod support;

use serde_json::Value;
use support::{run_python, FakeProxy};

/// Everything remote (the default), except nothing.
const ALL_REMOTE: &str = r#"{"feature":{"fs":"local","network":{"outgoing":true,"dns":true}}}"#;

fn json(out: &str) -> Value {
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn a_made_up_name_resolves_remotely_and_its_connection_goes_through_the_relay() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, socket
out = {}
out["gai"] = sorted({i[4][0] for i in socket.getaddrinfo("db.mirrord.test", 5432)})
out["kinds"] = [i[1] for i in socket.getaddrinfo("db.mirrord.test", 5432)]
out["canon"] = socket.getaddrinfo("db.mirrord.test", None, flags=socket.AI_CANONNAME)[0][3]
s = socket.create_connection(("db.mirrord.test", 5432))
s.sendall(b"ping")
out["echo"] = s.recv(100).decode()
out["peer"] = list(s.getpeername())
out["sock"] = list(s.getsockname())
d = s.dup()
s.close()
out["dup_peer"] = list(d.getpeername())
d.close()
out["ex"] = socket.gethostbyname_ex("db.mirrord.test")
print(json.dumps(out))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["gai"], serde_json::json!(["10.99.0.7"]));
    assert_eq!(
        out["kinds"],
        serde_json::json!([1, 2, 3]),
        "stream, dgram, raw like glibc"
    );
    assert_eq!(out["canon"], "db.mirrord.test");
    assert_eq!(out["echo"], "ping");
    assert_eq!(out["peer"], serde_json::json!(["10.99.0.7", 5432]));
    assert_eq!(out["sock"], serde_json::json!(["10.99.0.100", 40000]));
    assert_eq!(out["dup_peer"], serde_json::json!(["10.99.0.7", 5432]));
    assert_eq!(
        out["ex"],
        serde_json::json!(["db.mirrord.test", [], ["10.99.0.7"]])
    );
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.contains("ConnectOutgoing { protocol: Tcp, remote: 10.99.0.7:5432 }")),
        "{log:#?}"
    );
}

#[test]
fn an_ipv6_socket_to_a_v4_mapped_address_sees_the_mapped_peer() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect(("::ffff:10.99.0.7", 5432))
s.sendall(b"six")
print(json.dumps({"echo": s.recv(100).decode(), "peer": s.getpeername()[:2], "sock": s.getsockname()[:2]}))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["echo"], "six");
    assert_eq!(out["peer"], serde_json::json!(["::ffff:10.99.0.7", 5432]));
    assert_eq!(
        out["sock"],
        serde_json::json!(["::ffff:10.99.0.100", 40000])
    );
    assert!(proxy
        .log()
        .iter()
        .any(|l| l.contains("remote: 10.99.0.7:5432")));
}

#[test]
fn remote_failures_keep_their_errno_and_unknown_names_are_eai_noname() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, socket
out = {}
try:
    socket.create_connection(("10.99.0.7", 1))
except OSError as e:
    out["refused"] = e.errno
try:
    socket.getaddrinfo("nope.mirrord.test", 80)
except socket.gaierror as e:
    out["unknown"] = e.errno
try:
    socket.gethostbyname_ex("nope.mirrord.test")
except socket.herror as e:
    out["h_unknown"] = e.errno
except socket.gaierror as e:
    out["h_unknown"] = e.errno
try:
    socket.getaddrinfo("db.mirrord.test", "no-such-service-x")
except socket.gaierror as e:
    out["service"] = e.errno
# A non-blocking connect: EINPROGRESS, then connected.
import select
s = socket.socket()
s.setblocking(False)
out["nb"] = s.connect_ex(("10.99.0.7", 7))
select.select([], [s], [], 5)
out["nb_err"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
out["nb_again"] = s.connect_ex(("10.99.0.7", 7))
out["nb_again2"] = s.connect_ex(("10.99.0.7", 7))
out["nb_peer"] = list(s.getpeername())
print(json.dumps(out))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["refused"], libc::ECONNREFUSED);
    assert_eq!(out["unknown"], libc::EAI_NONAME);
    // CPython checks the name with getaddrinfo before gethostbyname_r.
    assert_eq!(out["h_unknown"], libc::EAI_NONAME);
    assert_eq!(out["service"], libc::EAI_SERVICE);
    assert!(
        out["nb"] == 0 || out["nb"] == libc::EINPROGRESS,
        "{}",
        out["nb"]
    );
    assert_eq!(out["nb_err"], 0);
    // Like the kernel: the first connect after completion says 0, then EISCONN.
    assert_eq!(out["nb_again"], 0);
    assert_eq!(out["nb_again2"], libc::EISCONN);
    assert_eq!(out["nb_peer"], serde_json::json!(["10.99.0.7", 7]));
    let connects = proxy
        .log()
        .iter()
        .filter(|l| l.contains("remote: 10.99.0.7:7"))
        .count();
    assert_eq!(connects, 1, "polling a connect does not connect again");
}

#[test]
fn udp_datagrams_go_through_relays_and_come_back_from_the_remote_address() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, socket
out = {}
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"q1", ("10.99.0.8", 53))
data, src = u.recvfrom(100)
out["unconnected"] = [data.decode(), list(src)]
u.sendto(b"q2", ("10.99.0.8", 53))
data, anc, flags, src = u.recvmsg(100)
out["recvmsg"] = [data.decode(), list(src)]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect(("dns.mirrord.test", 53))
c.send(b"q3")
data, src = c.recvfrom(100)
out["connected"] = [data.decode(), list(src), list(c.getpeername())]
print(json.dumps(out))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(
        out["unconnected"],
        serde_json::json!(["q1", ["10.99.0.8", 53]])
    );
    assert_eq!(out["recvmsg"], serde_json::json!(["q2", ["10.99.0.8", 53]]));
    assert_eq!(
        out["connected"],
        serde_json::json!(["q3", ["10.99.0.8", 53], ["10.99.0.8", 53]])
    );
    let relays = proxy
        .log()
        .iter()
        .filter(|l| l.contains("ConnectOutgoing { protocol: Udp"))
        .count();
    assert_eq!(
        relays,
        2,
        "one relay per socket and destination: {:#?}",
        proxy.log()
    );
}

#[test]
fn unix_sockets_and_destinations_filtered_local_by_a_locally_resolved_name_are_untouched() {
    let proxy = FakeProxy::start();
    let config = r#"{"feature":{"fs":"local","network":{
        "outgoing":{"filter":{"local":["localhost"]}},
        "dns":{"filter":{"local":["localhost"]}}}}}"#;
    let script = r#"
import json, os, socket, tempfile
out = {}
path = os.path.join(tempfile.mkdtemp(), "s")
srv = socket.socket(socket.AF_UNIX)
srv.bind(path); srv.listen()
cl = socket.socket(socket.AF_UNIX)
cl.connect(path)
out["unix_peer"] = cl.getpeername()
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen()
port = lst.getsockname()[1]
c = socket.create_connection(("localhost", port))
a, _ = lst.accept()
c.sendall(b"local"); out["local"] = a.recv(100).decode()
out["local_peer"] = list(c.getpeername()) == ["127.0.0.1", port]
out["local_sock"] = list(c.getsockname()) == list(a.getpeername())
bad = socket.socket()
out["bad_fd"] = bad.connect_ex(("127.0.0.1", 1))
print(json.dumps(out))
"#;
    let Some(out) = run_python(&proxy, config, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["local"], "local");
    assert_eq!(out["local_peer"], true);
    assert_eq!(out["local_sock"], true);
    assert_eq!(out["bad_fd"], libc::ECONNREFUSED);
    let log = proxy.log();
    assert!(
        !log.iter()
            .any(|l| l.contains("ConnectOutgoing") || l.contains("Resolve")),
        "nothing local reaches the intproxy: {log:#?}"
    );
}

#[test]
fn a_child_started_with_a_bare_environment_keeps_the_layer() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, subprocess, sys
child = "import os, socket; print(os.environ.get('LD_PRELOAD', '')); print(socket.gethostbyname('db.mirrord.test'))"
out = subprocess.run([sys.executable, "-c", child], env={"A": "1"}, capture_output=True, text=True)
lines = out.stdout.split()
print(json.dumps({"rc": out.returncode, "lines": lines, "err": out.stderr}))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["rc"], 0, "{out}");
    let lines = out["lines"].as_array().unwrap();
    assert!(
        lines[0].as_str().unwrap().ends_with("libmirrord_layer.so"),
        "{out}"
    );
    assert_eq!(lines[1], "10.99.0.7");
    let hellos = proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("hello"))
        .count();
    assert_eq!(hellos, 2, "{:#?}", proxy.log());
}

#[test]
fn with_everything_local_a_program_sees_what_it_sees_without_the_layer() {
    let script = r#"
import json, socket
out = {}
out["gai"] = sorted(set((i[0], i[1], i[4][0]) for i in socket.getaddrinfo("localhost", 80)))
out["gai_num"] = [(i[0], i[1], i[4]) for i in socket.getaddrinfo("127.0.0.1", "http")]
out["ghbn"] = socket.gethostbyname_ex("localhost")
s = socket.socket()
out["refused"] = s.connect_ex(("127.0.0.1", 1))
s.close()
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen()
c = socket.create_connection(lst.getsockname()); a, _ = lst.accept()
out["peer_ok"] = c.getpeername() == lst.getsockname()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.sendto(b"x", u.getsockname())
data, src = u.recvfrom(10)
out["udp_src_ok"] = src == v.getsockname()
v.connect(u.getsockname()); v.send(b"y")
out["udp_connected_ok"] = v.getpeername() == u.getsockname()
six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
out["six_refused"] = six.connect_ex(("::ffff:127.0.0.1", 1))
out["next_fd"] = socket.socket().fileno()
print(json.dumps(out))
"#;
    let Some(python) = support::python() else {
        return;
    };
    let plain = support::checked(
        std::process::Command::new(&python)
            .args(["-c", script])
            .output()
            .unwrap(),
    );
    let proxy = FakeProxy::start();
    let local =
        r#"{"feature":{"fs":"local","network":{"incoming":"off","outgoing":false,"dns":false}}}"#;
    let Some(with_layer) = run_python(&proxy, local, script) else {
        return;
    };
    assert_eq!(json(&with_layer), json(&plain));
    let log = proxy.log();
    assert_eq!(log.len(), 1, "only the hello: {log:#?}");
}

#[test]
fn a_forked_child_uses_the_inherited_remote_socket_and_connects_on_its_own() {
    let proxy = FakeProxy::start();
    let script = r#"
import json, os, socket
s = socket.create_connection(("db.mirrord.test", 5432))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    out = {}
    s.sendall(b"inherited")
    out["inherited"] = s.recv(100).decode()
    out["inherited_peer"] = list(s.getpeername())
    t = socket.create_connection(("db.mirrord.test", 6543))
    t.sendall(b"own")
    out["own"] = t.recv(100).decode()
    out["own_peer"] = list(t.getpeername())
    os.write(w, json.dumps(out).encode())
    os._exit(0)
os.close(w)
_, status = os.waitpid(pid, 0)
child = json.loads(os.read(r, 4096))
child["status"] = status
child["parent_peer"] = list(s.getpeername())
print(json.dumps(child))
"#;
    let Some(out) = run_python(&proxy, ALL_REMOTE, script) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["status"], 0);
    assert_eq!(out["inherited"], "inherited");
    assert_eq!(
        out["inherited_peer"],
        serde_json::json!(["10.99.0.7", 5432])
    );
    assert_eq!(out["own"], "own");
    assert_eq!(out["own_peer"], serde_json::json!(["10.99.0.7", 6543]));
    assert_eq!(out["parent_peer"], serde_json::json!(["10.99.0.7", 5432]));
    let hellos = proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("hello"))
        .count();
    assert_eq!(hellos, 2, "the child has its own intproxy connection");
}
