//! Resolver tests against a tiny DNS responder on the test's own loopback.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire::tests::response;
use super::*;

type Zone = HashMap<(String, u16), Vec<RData>>;

/// A UDP socket and a TCP listener on the same free port of 127.0.0.1.
/// The UDP port is the kernel's pick; the same TCP port may be taken by
/// another process, so a few picks are tried.
async fn udp_and_tcp_on_one_port() -> (tokio::net::UdpSocket, tokio::net::TcpListener, u16) {
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp, port);
        }
    }
    panic!("no port of 127.0.0.1 was free for both UDP and TCP in 20 picks");
}

/// Answers from `zone` over UDP and TCP on one port; names starting with
/// `big.` are truncated over UDP.
async fn responder(zone: Zone) -> u16 {
    let (udp, tcp, port) = udp_and_tcp_on_one_port().await;
    let zone = Arc::new(zone);
    let z = zone.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                return;
            };
            let q = &buf[..n];
            let name = qname(q);
            let answer = answer(&z, q, name.starts_with("big."));
            let _ = udp.send_to(&answer, peer).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                return;
            };
            let z = zone.clone();
            tokio::spawn(async move {
                let len = s.read_u16().await.unwrap() as usize;
                let mut q = vec![0; len];
                s.read_exact(&mut q).await.unwrap();
                let a = answer(&z, &q, false);
                s.write_u16(a.len() as u16).await.unwrap();
                s.write_all(&a).await.unwrap();
            });
        }
    });
    port
}

fn qname(q: &[u8]) -> String {
    let mut pos = 12;
    let mut labels = Vec::new();
    while q[pos] != 0 {
        let len = q[pos] as usize;
        labels.push(String::from_utf8_lossy(&q[pos + 1..pos + 1 + len]).to_ascii_lowercase());
        pos += 1 + len;
    }
    labels.join(".")
}

fn answer(zone: &Zone, q: &[u8], truncate: bool) -> Vec<u8> {
    let name = qname(q);
    let qtype = u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]);
    if truncate {
        return response(q, 0, true, &[]);
    }
    let known = zone.keys().any(|(n, _)| *n == name);
    let mut records = Vec::new();
    let mut current = name.clone();
    // Serve CNAMEs plus the target's records, like a recursive server;
    // `stop.` CNAMEs are answered alone to force a re-query.
    while let Some(rs) = zone.get(&(current.clone(), TYPE_CNAME_T)) {
        let RData::Cname(t) = &rs[0] else { break };
        records.push((current.clone(), rs[0].clone()));
        if current.starts_with("stop.") {
            return build(q, 0, &records);
        }
        current = t.clone();
    }
    for r in zone.get(&(current.clone(), qtype)).into_iter().flatten() {
        records.push((current.clone(), r.clone()));
    }
    let known = known || zone.keys().any(|(n, _)| *n == current);
    build(q, if known { 0 } else { 3 }, &records)
}

const TYPE_CNAME_T: u16 = wire::TYPE_CNAME;

fn build(q: &[u8], rcode: u8, records: &[(String, RData)]) -> Vec<u8> {
    let refs: Vec<(&str, RData)> = records
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    // The helper points the first owner at the question, so only pass
    // records in an order where that holds.
    response(q, rcode, false, &refs)
}

struct Fixture {
    _dir: tempfile::TempDir,
    resolver: Resolver,
}

async fn fixture(hosts: &str, resolv: &str, zone: Zone) -> Fixture {
    let port = responder(zone).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hosts"), hosts).unwrap();
    std::fs::write(dir.path().join("etc/resolv.conf"), resolv).unwrap();
    let root = std::fs::File::open(dir.path()).unwrap();
    let resolver = Resolver::with_port(
        Arc::new(OwnedFd::from(root)),
        SocketFactory::start(None).unwrap(),
        port,
    );
    Fixture {
        _dir: dir,
        resolver,
    }
}

fn zone() -> Zone {
    let mut z = Zone::new();
    let a = |s: &str| RData::A(s.parse().unwrap());
    z.insert(("api.svc.test".into(), TYPE_A), vec![a("10.0.0.7")]);
    z.insert(
        ("api.svc.test".into(), TYPE_AAAA),
        vec![RData::Aaaa("fd00::7".parse().unwrap())],
    );
    z.insert(
        ("www.example".into(), TYPE_CNAME_T),
        vec![RData::Cname("web.example".into())],
    );
    z.insert(
        ("web.example".into(), TYPE_A),
        vec![a("10.0.0.8"), a("10.0.0.9")],
    );
    z.insert(
        ("stop.example".into(), TYPE_CNAME_T),
        vec![RData::Cname("web.example".into())],
    );
    z.insert(("big.example".into(), TYPE_A), vec![a("10.0.0.10")]);
    z
}

fn ips(r: &Resolved) -> Vec<String> {
    r.addrs.iter().map(|a| a.to_string()).collect()
}

#[tokio::test]
async fn hosts_localhost_and_literals_need_no_dns() {
    let f = fixture(
        "10.1.1.1 db.local db\n",
        "nameserver 127.0.0.1\n",
        Zone::new(),
    )
    .await;
    let r = f.resolver.resolve("DB", AddrFamily::Any).await.unwrap();
    assert_eq!(
        (r.canonical.as_deref(), ips(&r)),
        (Some("db.local"), vec!["10.1.1.1".to_string()])
    );
    let r = f
        .resolver
        .resolve("localhost", AddrFamily::V6)
        .await
        .unwrap();
    assert_eq!(ips(&r), ["::1"]);
    let r = f
        .resolver
        .resolve("192.0.2.1", AddrFamily::Any)
        .await
        .unwrap();
    assert_eq!(ips(&r), ["192.0.2.1"]);
    let e = f.resolver.resolve("::1", AddrFamily::V4).await.unwrap_err();
    assert_eq!(e.to_remote().errno, libc::ENOENT);
    let e = f
        .resolver
        .resolve("a..b", AddrFamily::V4)
        .await
        .unwrap_err();
    assert!(matches!(e, DnsError::BadName(_)), "{e}");
    assert_eq!(e.to_remote().errno, libc::ENOENT);
}

#[tokio::test]
async fn dns_with_search_domains_cnames_and_tcp_fallback() {
    let f = fixture(
        "",
        "search svc.test example\nnameserver 127.0.0.1\noptions ndots:2\n",
        zone(),
    )
    .await;
    let r = f.resolver.resolve("api", AddrFamily::Any).await.unwrap();
    assert_eq!(r.canonical.as_deref(), Some("api.svc.test"));
    assert_eq!(ips(&r), ["10.0.0.7", "fd00::7"]);
    let r = f.resolver.resolve("api", AddrFamily::V6).await.unwrap();
    assert_eq!(ips(&r), ["fd00::7"]);
    let r = f.resolver.resolve("www", AddrFamily::V4).await.unwrap();
    assert_eq!(
        (r.canonical.as_deref(), ips(&r)),
        (
            Some("web.example"),
            vec!["10.0.0.8".into(), "10.0.0.9".into()]
        )
    );
    let r = f
        .resolver
        .resolve("stop.example.", AddrFamily::V4)
        .await
        .unwrap();
    assert_eq!(ips(&r), ["10.0.0.8", "10.0.0.9"]);
    let r = f
        .resolver
        .resolve("big.example", AddrFamily::V4)
        .await
        .unwrap();
    assert_eq!(ips(&r), ["10.0.0.10"]);
    let e = f
        .resolver
        .resolve("nope", AddrFamily::Any)
        .await
        .unwrap_err();
    assert_eq!(e.to_remote().errno, libc::ENOENT, "{e}");
}

#[tokio::test]
async fn silent_nameserver_is_try_again() {
    // A UDP socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let root = std::fs::File::open(dir.path()).unwrap();
    let r = Resolver::with_port(
        Arc::new(OwnedFd::from(root)),
        SocketFactory::start(None).unwrap(),
        port,
    );
    let started = std::time::Instant::now();
    let e = r.resolve("x.test", AddrFamily::V4).await.unwrap_err();
    assert_eq!(e.to_remote().errno, libc::EAGAIN, "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(silent);
}
