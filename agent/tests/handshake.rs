//! The agent binary's handshake, lifetime and connection handling, targetless.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{errno, open_stream, Agent, Client};
use mirrord_protocol::{AgentMessage, OpenFlags, Request, Response, Version, PROTOCOL_VERSION};

#[test]
fn handshake_answers_with_version_and_no_target() {
    let agent = Agent::start(&[]);
    let (mut c, ack) = Client::hello(agent.addr, PROTOCOL_VERSION, None);
    assert_eq!(
        ack,
        AgentMessage::HelloAck {
            version: PROTOCOL_VERSION,
            target_pid: None
        }
    );
    c.send(mirrord_protocol::ClientMessage::Ping);
    assert_eq!(c.recv(), AgentMessage::Pong);
    // Targetless: an empty environment.
    assert_eq!(c.request(Request::GetEnv), Ok(Response::Env(vec![])));
}

#[test]
fn wrong_major_is_refused_naming_both_versions() {
    let agent = Agent::start(&[]);
    let theirs = Version {
        major: PROTOCOL_VERSION.major + 1,
        minor: 3,
    };
    let (mut c, answer) = Client::hello(agent.addr, theirs, None);
    let AgentMessage::Refused { reason } = answer else {
        panic!("{answer:?}")
    };
    assert!(
        reason.contains(&PROTOCOL_VERSION.to_string()) && reason.contains(&theirs.to_string()),
        "{reason}"
    );
    assert!(c.closed_by_agent());
    // The agent keeps serving others.
    agent.client();
}

#[test]
fn secret_is_checked() {
    let agent = Agent::start_with_env(&[], &[("MIRRORD_AGENT_SECRET", "s3cret")]);
    for wrong in [None, Some("nope")] {
        let (mut c, answer) = Client::hello(agent.addr, PROTOCOL_VERSION, wrong);
        assert!(
            matches!(&answer, AgentMessage::Refused { reason } if reason.contains("secret")),
            "{answer:?}"
        );
        assert!(c.closed_by_agent());
    }
    let (_, answer) = Client::hello(agent.addr, PROTOCOL_VERSION, Some("s3cret"));
    assert!(
        matches!(answer, AgentMessage::HelloAck { .. }),
        "{answer:?}"
    );
    let agent = Agent::start(&["--secret", "flag"]);
    let (_, answer) = Client::hello(agent.addr, PROTOCOL_VERSION, Some("flag"));
    assert!(
        matches!(answer, AgentMessage::HelloAck { .. }),
        "{answer:?}"
    );
}

#[test]
fn missing_target_is_one_clear_line_and_exit_1() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mirrord-agent"))
        .args(["--target-pid", "999999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "mirrord-agent: target process 999999999 not found (is the PID right, and is it on this machine?)"
    );
}

#[test]
fn broken_frame_ends_only_that_connection() {
    let agent = Agent::start(&[]);
    let mut c = agent.client();
    // A frame whose body is not a ClientMessage.
    c.stream.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    assert!(c.closed_by_agent());
    let mut other = agent.client();
    other.send(mirrord_protocol::ClientMessage::Ping);
    assert_eq!(other.recv(), AgentMessage::Pong);
}

#[test]
fn pipelined_writes_keep_their_order_and_handles_are_per_connection() {
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log").into_os_string().into_encoded_bytes();
    let mut c = agent.client();
    let flags = OpenFlags {
        read: true,
        write: true,
        create: true,
        ..Default::default()
    };
    let Ok(Response::Opened { handle, .. }) = c.request(Request::Open {
        path: path.clone(),
        flags,
        mode: 0o644,
        read_ahead: 0,
    }) else {
        panic!("open failed")
    };
    let ids: Vec<u64> = (0..200)
        .map(|i| {
            c.submit(Request::Write {
                handle,
                offset: None,
                data: format!("{i},").into_bytes(),
            })
        })
        .collect();
    for id in ids {
        assert!(matches!(c.answer(id), Ok(Response::Written { .. })));
    }
    let expected: String = (0..200).map(|i| format!("{i},")).collect();
    let Ok(Response::Data { data, eof }) = c.request(Request::Read {
        handle,
        offset: 0,
        len: 1 << 20,
    }) else {
        panic!("read failed")
    };
    assert_eq!((String::from_utf8(data).unwrap(), eof), (expected, true));
    // Another connection does not see this connection's handle.
    let mut other = agent.client();
    assert_eq!(errno(other.request(Request::FStat { handle })), libc::EBADF);
    assert_eq!(c.request(Request::Close { handle }), Ok(Response::Done));
    assert_eq!(errno(c.request(Request::FStat { handle })), libc::EBADF);
}

#[test]
fn sigterm_sends_closing_and_exits_0() {
    let mut agent = Agent::start(&[]);
    let mut c = agent.client();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let m = c.wait_for(|m| matches!(m, AgentMessage::Closing { .. }));
    assert!(
        matches!(&m, AgentMessage::Closing { reason } if reason.contains("SIGTERM")),
        "{m:?}"
    );
    assert!(c.closed_by_agent());
    assert_eq!(agent.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn stdin_lifeline_exits_when_stdin_closes() {
    let mut agent = Agent::start(&["--stdin-lifeline"]);
    agent.client();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "exited while stdin was open"
    );
    drop(agent.stdin.take());
    assert_eq!(agent.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn idle_timeout_counts_from_the_last_client() {
    let mut agent = Agent::start(&["--idle-timeout", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "idle before any client"
    );
    let c = agent.client();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "idle with a client connected"
    );
    drop(c);
    assert_eq!(agent.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn without_root_the_agent_says_it_needs_root() {
    // As `nobody`, against a process of root's: /proc/N/root is refused.
    let mut target = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mirrord-agent"))
        .args(["--target-pid", &target.id().to_string()])
        .output()
        .unwrap();
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs root (or CAP_SYS_ADMIN and CAP_SYS_PTRACE)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn connection_end_closes_its_outgoing_sockets() {
    use std::io::Read;
    let agent = Agent::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = agent.client();
    let Ok(Response::Connected { conn, .. }) = c.request(Request::Connect {
        protocol: mirrord_protocol::NetProtocol::Tcp,
        remote: listener.local_addr().unwrap(),
    }) else {
        panic!("connect failed")
    };
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send(mirrord_protocol::ClientMessage::ConnData {
        conn,
        data: b"x".to_vec().into(),
    });
    let mut buf = [0u8; 4];
    assert_eq!(peer.read(&mut buf).unwrap(), 1);
    drop(c);
    assert_eq!(
        peer.read(&mut buf).unwrap(),
        0,
        "the agent closed the peer socket"
    );
}

#[test]
fn a_side_stream_carries_one_connection_unframed() {
    use std::io::Read;
    let agent = Agent::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut stream, answer) = open_stream(agent.addr, None, listener.local_addr().unwrap());
    let (mut peer, seen_from) = listener.accept().unwrap();
    assert_eq!(
        answer,
        AgentMessage::StreamOpened {
            result: Ok(seen_from)
        }
    );
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    stream.write_all(b"ping").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"ping", "bytes, then the half-close");

    peer.write_all(b"pong after the half-close").unwrap();
    drop(peer);
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"pong after the half-close");
}

#[test]
fn a_side_stream_that_cannot_connect_says_why_and_closes() {
    let agent = Agent::start(&[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = closed.local_addr().unwrap();
    drop(closed);
    let (mut stream, answer) = open_stream(agent.addr, None, remote);
    let AgentMessage::StreamOpened { result: Err(e) } = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.errno, libc::ECONNREFUSED, "{e}");
    let mut buf = [0u8; 8];
    assert_eq!(std::io::Read::read(&mut stream, &mut buf).unwrap(), 0);
}

#[test]
fn a_side_stream_needs_the_secret() {
    let agent = Agent::start(&["--secret", "s3cret"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let remote = listener.local_addr().unwrap();
    for wrong in [None, Some("nope")] {
        let (_, answer) = open_stream(agent.addr, wrong, remote);
        assert!(
            matches!(&answer, AgentMessage::Refused { reason } if reason.contains("secret")),
            "{answer:?}"
        );
    }
    assert!(listener.accept().is_err(), "no connection was made");
    let (_, answer) = open_stream(agent.addr, Some("s3cret"), remote);
    assert!(
        matches!(answer, AgentMessage::StreamOpened { result: Ok(_) }),
        "{answer:?}"
    );
}

#[test]
fn agent_shutdown_ends_its_side_streams() {
    use std::io::Read;
    let mut agent = Agent::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut stream, answer) = open_stream(agent.addr, None, listener.local_addr().unwrap());
    assert!(matches!(
        answer,
        AgentMessage::StreamOpened { result: Ok(_) }
    ));
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let mut buf = [0u8; 8];
    assert_eq!(
        stream.read(&mut buf).unwrap(),
        0,
        "the client's stream ends"
    );
    assert_eq!(
        peer.read(&mut buf).unwrap(),
        0,
        "the target's connection ends"
    );
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn create_mode_is_applied_as_sent_and_reads_are_capped() {
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big").into_os_string().into_encoded_bytes();
    let mut c = agent.client();
    let flags = OpenFlags {
        read: true,
        write: true,
        create: true,
        exclusive: true,
        ..Default::default()
    };
    let Ok(Response::Opened { handle, stat, .. }) = c.request(Request::Open {
        path: path.clone(),
        flags,
        mode: 0o666,
        read_ahead: 0,
    }) else {
        panic!("open failed")
    };
    // The layer applies the program's umask; the agent applies none.
    assert_eq!(stat.mode & 0o777, 0o666);
    let big = vec![7u8; (mirrord_protocol::MAX_READ_LEN as usize) + 10];
    assert_eq!(
        c.request(Request::Write {
            handle,
            offset: Some(0),
            data: big.clone()
        }),
        Ok(Response::Written {
            len: big.len() as u64
        })
    );
    let Ok(Response::Data { data, eof }) = c.request(Request::Read {
        handle,
        offset: 0,
        len: u32::MAX,
    }) else {
        panic!("read failed")
    };
    assert_eq!(
        (data.len(), eof),
        (mirrord_protocol::MAX_READ_LEN as usize, false)
    );
    let ro = OpenFlags {
        read: true,
        ..Default::default()
    };
    let Ok(Response::Opened { data, eof, .. }) = c.request(Request::Open {
        path,
        flags: ro,
        mode: 0,
        read_ahead: u32::MAX,
    }) else {
        panic!("open failed")
    };
    assert_eq!(
        (data.len(), eof),
        (mirrord_protocol::MAX_READ_LEN as usize, false)
    );
    assert_eq!(
        errno(c.request(Request::Open {
            path: b"/nonexistent/x".to_vec(),
            flags: ro,
            mode: 0,
            read_ahead: 0
        })),
        libc::ENOENT
    );
}

#[test]
fn an_answer_too_large_for_a_frame_is_an_error_not_a_dead_connection() {
    let agent = Agent::start(&[]);
    // tmpfs when there is one: 22k files are quicker there.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    // About 5 MiB of names: more than one frame may carry.
    let long = "n".repeat(240);
    for i in 0..22_000 {
        std::fs::File::create(dir.path().join(format!("{long}{i}"))).unwrap();
    }
    let mut c = agent.client();
    let path = dir.path().as_os_str().as_encoded_bytes().to_vec();
    assert_eq!(errno(c.request(Request::ReadDir { path })), libc::EOVERFLOW);
    c.send(mirrord_protocol::ClientMessage::Ping);
    assert_eq!(c.recv(), AgentMessage::Pong);
}

#[test]
fn a_read_only_file_read_whole_is_not_kept_open() {
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"all of it").unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![1u8; 4096]).unwrap();
    let ro = OpenFlags {
        read: true,
        ..Default::default()
    };
    let mut c = agent.client();
    let open = |c: &mut common::Client, path: &std::path::Path| {
        c.request(Request::Open {
            path: path.to_path_buf().into_os_string().into_encoded_bytes(),
            flags: ro,
            mode: 0,
            read_ahead: 1024,
        })
    };
    let Ok(Response::Opened {
        handle, data, eof, ..
    }) = open(&mut c, &small)
    else {
        panic!("open failed")
    };
    assert_eq!(
        (handle, data.as_slice(), eof),
        (mirrord_protocol::CLOSED_HANDLE, &b"all of it"[..], true)
    );
    // The rest of a bigger file is still there to read.
    let Ok(Response::Opened { handle, eof, .. }) = open(&mut c, &big) else {
        panic!("open failed")
    };
    assert!(!eof && handle != mirrord_protocol::CLOSED_HANDLE);
    let Ok(Response::Data { data, .. }) = c.request(Request::Read {
        handle,
        offset: 1024,
        len: 4096,
    }) else {
        panic!("read failed")
    };
    assert_eq!(data.len(), 3072);
}
