//! The JVM resolves through `getaddrinfo` and connects IPv6 sockets to
//! v4-mapped addresses: its outgoing connection must still go through the
//! relay and report the remote peer.

mod support;

use std::process::Command;

use support::{checked, preloaded, require, FakeProxy};

const PROGRAM: &str = r#"
import java.io.*;
import java.net.*;

public class Outgoing {
    public static void main(String[] args) throws Exception {
        InetAddress ip = InetAddress.getByName("db.mirrord.test");
        System.out.println("resolved " + ip.getHostAddress());
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(ip, 5432), 5000);
            s.getOutputStream().write("java".getBytes());
            byte[] b = new byte[4];
            int n = s.getInputStream().readNBytes(b, 0, 4);
            System.out.println("echo " + new String(b, 0, n));
            System.out.println("peer " + s.getRemoteSocketAddress());
        }
    }
}
"#;

#[test]
fn the_jvm_connects_through_the_relay_with_v4_mapped_sockets() {
    require("java", "-version");
    let dir = std::env::temp_dir().join(format!("mirrord-layer-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("Outgoing.java");
    std::fs::write(&source, PROGRAM).unwrap();
    let proxy = FakeProxy::start();
    let out = preloaded(
        Command::new("java").arg(&source),
        &proxy,
        r#"{"feature":{"fs":"local","network":{}}}"#,
    )
    .output()
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let out = checked(out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "resolved 10.99.0.7",
            "echo java",
            "peer db.mirrord.test/10.99.0.7:5432"
        ],
        "{out}"
    );
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.contains("ConnectOutgoing { protocol: Tcp, remote: 10.99.0.7:5432 }")),
        "{:#?}",
        proxy.log()
    );
}
