//! Listening sockets through a fake intproxy, seen by a real Python
//! program with the layer preloaded: `listen` subscribes (port mapping
//! applied), a delivered connection is accepted like any other and reports
//! the target's client, a local client still reaches the program, and
//! `close` unsubscribes.

mod support;

use serde_json::Value;
use support::{run_python, FakeProxy, INCOMING_GREETING};

fn json(out: &str) -> Value {
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

const PROGRAM: &str = r#"
import json, socket
out = {}
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 0))
out["port"] = s.getsockname()[1]
s.listen(8)
c, addr = s.accept()
out["accepted"] = list(addr)
out["peer"] = list(c.getpeername())
out["sock"] = list(c.getsockname())
out["greeting"] = c.recv(100).decode()
local = socket.create_connection(("127.0.0.1", out["port"]))
l, laddr = s.accept()
out["local_is_local"] = list(laddr) == list(local.getsockname())
out["local_peer_is_local"] = list(l.getpeername()) == list(local.getsockname())
s.close()
print(json.dumps(out))
"#;

#[test]
fn listen_subscribes_and_a_delivered_connection_reports_the_targets_client() {
    let proxy = FakeProxy::start();
    let config = r#"{"feature":{"fs":"local","network":{"outgoing":false,"incoming":{"mode":"steal","port_mapping":[[1,2]]}}}}"#;
    let Some(out) = run_python(&proxy, config, PROGRAM) else {
        return;
    };
    let out = json(&out);
    assert_eq!(out["accepted"], serde_json::json!(["10.99.0.50", 55555]));
    assert_eq!(out["peer"], serde_json::json!(["10.99.0.50", 55555]));
    assert_eq!(out["sock"], serde_json::json!(["10.99.0.100", 40000]));
    assert_eq!(
        out["greeting"].as_str().map(str::as_bytes),
        Some(INCOMING_GREETING)
    );
    assert_eq!(out["local_is_local"], true, "{out}");
    assert_eq!(out["local_peer_is_local"], true, "{out}");
    let port = out["port"].as_u64().unwrap();
    let log = proxy.log();
    let listen = log
        .iter()
        .find(|l| l.starts_with("Listen"))
        .unwrap_or_else(|| panic!("no Listen: {log:?}"));
    assert!(
        listen.contains(&format!("port: {port}, mode: Steal, take_over: false"))
            && listen.contains(&format!("app: 127.0.0.1:{port}")),
        "{listen}"
    );
    assert!(
        log.iter()
            .any(|l| l == &format!("Unlisten {{ port: {port} }}")),
        "{log:?}"
    );
}

#[test]
fn port_mapping_ignore_ports_and_mode_off_decide_what_is_subscribed() {
    let script = r#"
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1])
"#;
    let rows = [
        (r#""off""#, false),
        (r#"{"mode": "steal", "ignore_localhost": true}"#, false),
        (r#"{"mode": "steal", "ports": [1]}"#, false),
    ];
    for (incoming, subscribed) in rows {
        let proxy = FakeProxy::start();
        let config =
            format!(r#"{{"feature":{{"fs":"local","network":{{"incoming":{incoming}}}}}}}"#);
        let Some(_) = run_python(&proxy, &config, script) else {
            return;
        };
        let listened = proxy.log().iter().any(|l| l.starts_with("Listen"));
        assert_eq!(listened, subscribed, "{incoming}: {:?}", proxy.log());
    }
}
