//! Node resolves in libuv's thread pool (`getaddrinfo`), connects
//! non-blocking sockets through epoll, and reads the peer with
//! `getpeername`: all of it must see the remote side.

mod support;

use std::process::Command;

use support::{checked, preloaded, require, FakeProxy};

const PROGRAM: &str = r#"
const net = require("net");
const dns = require("dns");
dns.lookup("db.mirrord.test", { family: 4 }, (err, address) => {
  if (err) { console.log("lookup error " + err.code); process.exit(1); }
  console.log("resolved " + address);
  const s = net.connect({ host: "db.mirrord.test", port: 5432, family: 4 }, () => {
    console.log("peer " + s.remoteAddress + ":" + s.remotePort);
    s.write("node");
  });
  s.on("data", (d) => { console.log("echo " + d.toString()); s.destroy(); });
  s.on("error", (e) => { console.log("error " + e.code); process.exit(1); });
});
"#;

#[test]
fn node_resolves_connects_and_reads_its_peer_through_the_layer() {
    require("node", "--version");
    let proxy = FakeProxy::start();
    let out = preloaded(
        Command::new("node").args(["-e", PROGRAM]),
        &proxy,
        r#"{"feature":{"fs":"local","network":{}}}"#,
    )
    .output()
    .unwrap();
    let out = checked(out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["resolved 10.99.0.7", "peer 10.99.0.7:5432", "echo node"],
        "{out}"
    );
}
