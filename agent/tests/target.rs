//! The agent attached to a target in its own network and mount namespaces
//! and chroot: files, env, DNS and connections come from the target.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::target::{NsTarget, FILE_TEXT, HOSTS_ADDR, HOSTS_NAME, TARGET_VAR};
use common::{errno, Agent};
use mirrord_protocol::{
    AddrFamily, AgentMessage, ClientMessage, NetProtocol, OpenFlags, Request, Response,
};

fn attach(target: &NsTarget) -> Agent {
    Agent::start(&["--target-pid", &target.pid.to_string()])
}

fn ro() -> OpenFlags {
    OpenFlags {
        read: true,
        ..Default::default()
    }
}

fn open_read(c: &mut common::Client, path: &str) -> Result<Vec<u8>, i32> {
    match c.request(Request::Open {
        path: path.as_bytes().to_vec(),
        flags: ro(),
        mode: 0,
        read_ahead: 4096,
    }) {
        Ok(Response::Opened {
            data, eof: true, ..
        }) => Ok(data),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => Err(e.errno),
    }
}

#[test]
fn files_come_from_the_target_root_and_cannot_escape_it() {
    let target = NsTarget::spawn();
    let agent = attach(&target);
    let (mut c, ack) = common::Client::hello(agent.addr, mirrord_protocol::PROTOCOL_VERSION, None);
    assert_eq!(
        ack,
        AgentMessage::HelloAck {
            version: mirrord_protocol::PROTOCOL_VERSION,
            target_pid: Some(target.pid)
        }
    );

    // The file lives on a tmpfs mounted only in the target's mount namespace.
    assert!(
        !target.dir.path().join("root/data/file").exists(),
        "the host must not see the target's tmpfs"
    );
    assert_eq!(
        open_read(&mut c, "/data/file").unwrap(),
        FILE_TEXT.as_bytes()
    );

    // Open + Read (not only read-ahead), then Close.
    let Ok(Response::Opened { handle, stat, .. }) = c.request(Request::Open {
        path: b"/data/file".to_vec(),
        flags: ro(),
        mode: 0,
        read_ahead: 0,
    }) else {
        panic!("open failed")
    };
    assert_eq!(stat.size, FILE_TEXT.len() as u64);
    assert_eq!(
        c.request(Request::Read {
            handle,
            offset: 6,
            len: 4
        }),
        Ok(Response::Data {
            data: b"from".to_vec(),
            eof: false
        })
    );
    assert_eq!(c.request(Request::Close { handle }), Ok(Response::Done));

    // Escapes: `..` past the root, an absolute symlink to a host file, a
    // relative symlink climbing out, and the host path itself.
    let outside = target.outside.to_str().unwrap().to_string();
    assert_eq!(
        open_read(&mut c, &format!("/../../../../..{outside}")),
        Err(libc::ENOENT)
    );
    assert_eq!(open_read(&mut c, "/data/abs_escape"), Err(libc::ENOENT));
    assert_eq!(
        open_read(&mut c, &format!("/data/up{outside}")),
        Err(libc::ENOENT)
    );
    assert_eq!(open_read(&mut c, &outside), Err(libc::ENOENT));
    // An absolute symlink resolves against the target's root.
    let hosts = open_read(&mut c, "/data/abs_hosts").unwrap();
    assert!(String::from_utf8_lossy(&hosts).contains(HOSTS_NAME));
    // /proc does not exist in the target's root: no way around through it.
    assert_eq!(
        open_read(&mut c, "/proc/self/root/etc/passwd"),
        Err(libc::ENOENT)
    );

    // Path requests see the target's tree too.
    let Ok(Response::DirEntries(entries)) = c.request(Request::ReadDir {
        path: b"/data".to_vec(),
    }) else {
        panic!("readdir failed")
    };
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["abs_escape", "abs_hosts", "file", "up"]);
    assert_eq!(
        c.request(Request::ReadLink {
            path: b"/data/abs_hosts".to_vec()
        }),
        Ok(Response::Path(b"/etc/hosts".to_vec()))
    );
    assert_eq!(
        c.request(Request::Mkdir {
            path: b"/data/new".to_vec(),
            mode: 0o755
        }),
        Ok(Response::Done)
    );
    assert_eq!(
        errno(c.request(Request::Mkdir {
            path: b"/data/new".to_vec(),
            mode: 0o755
        })),
        libc::EEXIST
    );
    assert_eq!(
        errno(c.request(Request::Rmdir {
            path: b"/data/new/..".to_vec()
        })),
        libc::EINVAL
    );
    assert_eq!(
        c.request(Request::Rmdir {
            path: b"/data/new".to_vec()
        }),
        Ok(Response::Done)
    );
    assert_eq!(
        errno(c.request(Request::Stat {
            path: b"/data/missing".to_vec(),
            follow: true
        })),
        libc::ENOENT
    );

    // The environment is the target's.
    let Ok(Response::Env(env)) = c.request(Request::GetEnv) else {
        panic!("getenv failed")
    };
    assert!(
        env.contains(&(
            TARGET_VAR.0.as_bytes().to_vec(),
            TARGET_VAR.1.as_bytes().to_vec()
        )),
        "{env:?}"
    );
}

#[test]
fn connections_reach_the_target_loopback_not_the_host() {
    let target = NsTarget::spawn();
    // The same ports on the host's loopback answer something else. The
    // target's ports are picked in its namespace; one may be taken on the
    // host (a connection in TIME_WAIT holds its port), so a few are tried.
    let (tcp, udp, host_tcp, host_udp) = (0..20)
        .find_map(|_| {
            let (tcp, udp) = target.echo_services();
            Some((
                tcp,
                udp,
                TcpListener::bind(tcp).ok()?,
                UdpSocket::bind(udp).ok()?,
            ))
        })
        .expect("ports free both in the target and on the host");
    std::thread::spawn(move || {
        for s in host_tcp.incoming().flatten() {
            let _ = std::io::Write::write_all(&mut &s, b"HOST");
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, peer)) = host_udp.recv_from(&mut buf) {
            let _ = host_udp.send_to(b"HOST", peer);
        }
    });
    let agent = attach(&target);
    let mut c = agent.client();

    for (protocol, remote) in [(NetProtocol::Tcp, tcp), (NetProtocol::Udp, udp)] {
        let Ok(Response::Connected { conn, local }) =
            c.request(Request::Connect { protocol, remote })
        else {
            panic!("{protocol:?} connect failed")
        };
        assert!(local.ip().is_loopback());
        for msg in [&b"ping one"[..], b"ping two"] {
            c.send(ClientMessage::ConnData {
                conn,
                data: msg.to_vec().into(),
            });
            let mut got = Vec::new();
            while got.len() < msg.len() {
                match c.wait_for(|m| matches!(m, AgentMessage::ConnData { conn: x, .. } | AgentMessage::ConnClosed { conn: x, .. } if *x == conn)) {
                    AgentMessage::ConnData { data, .. } => got.extend(data),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, msg, "{protocol:?} answered by the wrong service");
        }
        if protocol == NetProtocol::Tcp {
            // Half-close: the echo server sees EOF and closes; we get ConnEof.
            c.send(ClientMessage::ConnShutdown { conn });
            let m = c.wait_for(|m| matches!(m, AgentMessage::ConnEof { conn: x } if *x == conn));
            assert_eq!(m, AgentMessage::ConnEof { conn });
        }
        c.send(ClientMessage::ConnClose { conn });
    }

    // Nothing listens on this port in the target: refused, with the errno.
    let closed = {
        let l = target.in_netns(|| TcpListener::bind("127.0.0.1:0").unwrap());
        let a = l.local_addr().unwrap();
        drop(l);
        a
    };
    let _host = TcpListener::bind(closed);
    assert_eq!(
        errno(c.request(Request::Connect {
            protocol: NetProtocol::Tcp,
            remote: closed
        })),
        libc::ECONNREFUSED
    );
    // Many connects in flight at once on one connection.
    let ids: Vec<u64> = (0..20)
        .map(|_| {
            c.submit(Request::Connect {
                protocol: NetProtocol::Tcp,
                remote: tcp,
            })
        })
        .collect();
    for id in ids {
        assert!(matches!(c.answer(id), Ok(Response::Connected { .. })));
    }
}

#[test]
fn resolve_uses_the_target_hosts_and_nameserver() {
    let target = NsTarget::spawn();
    target.dns_service([10, 53, 53, 53]);
    let agent = attach(&target);
    let mut c = agent.client();
    let answer = c.request(Request::Resolve {
        host: HOSTS_NAME.into(),
        family: AddrFamily::Any,
    });
    assert_eq!(
        answer,
        Ok(Response::Addresses {
            canonical: Some(HOSTS_NAME.into()),
            addrs: vec![HOSTS_ADDR.parse().unwrap()]
        })
    );
    // Not in the hosts file: asked of the target's nameserver, on the
    // target's 127.0.0.1:53, from the target's network namespace.
    let answer = c.request(Request::Resolve {
        host: "only.in.dns.test".into(),
        family: AddrFamily::V4,
    });
    assert_eq!(
        answer,
        Ok(Response::Addresses {
            canonical: Some("only.in.dns.test".into()),
            addrs: vec!["10.53.53.53".parse().unwrap()]
        })
    );
    // No AAAA record: name not found for IPv6.
    let r = c.request(Request::Resolve {
        host: "only.in.dns.test".into(),
        family: AddrFamily::V6,
    });
    assert_eq!(errno(r), libc::ENOENT);
    let r = c.request(Request::Resolve {
        host: "localhost".into(),
        family: AddrFamily::V4,
    });
    assert!(
        matches!(r, Ok(Response::Addresses { addrs, .. }) if addrs == vec![std::net::IpAddr::from([127, 0, 0, 1])])
    );
}

#[test]
fn target_exit_sends_closing_and_the_agent_exits_1() {
    let target = NsTarget::spawn();
    let mut agent = attach(&target);
    let mut c = agent.client();
    let mut c2 = agent.client();
    target.kill_target();
    for client in [&mut c, &mut c2] {
        let m = client.wait_for(|m| matches!(m, AgentMessage::Closing { .. }));
        assert_eq!(
            m,
            AgentMessage::Closing {
                reason: format!("target process {} exited", target.pid)
            }
        );
        assert!(client.closed_by_agent());
    }
    assert_eq!(agent.wait_exit(Duration::from_secs(5)).code(), Some(1));
    // Nothing left behind: the agent's listening port is closed.
    assert!(std::net::TcpStream::connect(agent.addr).is_err());
}

#[test]
fn a_slow_nameserver_holds_up_nothing_else_and_is_eagain() {
    let target = NsTarget::spawn();
    // Bound but silent: every question times out (timeout:1 attempts:1).
    let _silent = target.in_netns(|| UdpSocket::bind("127.0.0.1:53").unwrap());
    let agent = attach(&target);
    let mut c = agent.client();
    let started = std::time::Instant::now();
    let slow = c.submit(Request::Resolve {
        host: "nowhere.test".into(),
        family: AddrFamily::V4,
    });
    let fast = c.submit(Request::Stat {
        path: b"/data/file".to_vec(),
        follow: true,
    });
    // The answer to the later request arrives first.
    let first = c.recv();
    assert!(
        matches!(&first, AgentMessage::Response { id, result: Ok(Response::Stat(_)) } if *id == fast),
        "{first:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    let r = c.answer(slow);
    assert_eq!(errno(r), libc::EAGAIN);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn the_target_is_found_by_its_container_id() {
    let id = format!("{:064x}", (u128::from(std::process::id()) << 64) | 0xa9e7);
    let cgroup = mirrord_tests::kube::cgroup::ContainerCgroup::new(&id).expect("a cgroup (root)");
    let target = NsTarget::spawn();
    cgroup
        .add(target.pid)
        .expect("move the target into its cgroup");
    let agent = Agent::start(&["--container-id", &format!("containerd://{id}")]);
    let (mut c, ack) = common::Client::hello(agent.addr, mirrord_protocol::PROTOCOL_VERSION, None);
    assert_eq!(
        ack,
        AgentMessage::HelloAck {
            version: mirrord_protocol::PROTOCOL_VERSION,
            target_pid: Some(target.pid)
        }
    );
    let Ok(Response::Env(env)) = c.request(Request::GetEnv) else {
        panic!("getenv failed")
    };
    assert!(env.contains(&(
        TARGET_VAR.0.as_bytes().to_vec(),
        TARGET_VAR.1.as_bytes().to_vec()
    )));
    drop(c);
    drop(agent);
    drop(target);
    drop(cgroup);
}
