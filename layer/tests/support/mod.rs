//! A fake intproxy for the layer's integration tests, and a runner for a
//! small program with the layer preloaded.
//!
//! The fake speaks the real layer protocol (`LayerMessage`/`ProxyMessage`
//! frames): it acknowledges every hello, answers `Resolve` for the names in
//! [`NAMES`], and answers `ConnectOutgoing` by opening a real loopback relay
//! whose far end is an echo peer (TCP) or an echoing UDP socket, the way the
//! real intproxy's relays carry bytes to and from the target. `Listen` is
//! answered by delivering one connection to the program's listener the way
//! the intproxy delivers a stolen one (sending [`INCOMING_GREETING`]; mode
//! mirror is refused with `ENOTSUP`, as the agent does), and
//! `IncomingPeer` names [`INCOMING_REMOTE`] behind it. Every request is
//! logged, so a test can check what did (and did not) reach it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use mirrord_protocol::{
    read_frame, write_frame, IncomingPeer, LayerMessage, LayerRequest, LayerResponse, NetProtocol,
    ProxyMessage, RemoteError, Request, Response, PROTOCOL_VERSION,
};

/// The names the fake target resolves, and their addresses.
pub const NAMES: &[(&str, &str)] = &[
    ("db.mirrord.test", "10.99.0.7"),
    ("dns.mirrord.test", "10.99.0.8"),
];
/// A remote port the fake target refuses.
pub const REFUSED_PORT: u16 = 1;
/// The agent-side local address reported for every outgoing connection.
pub const TARGET_LOCAL: &str = "10.99.0.100:40000";
/// The client behind every delivered incoming connection.
pub const INCOMING_REMOTE: &str = "10.99.0.50:55555";
/// What the fake's delivered connection sends first.
pub const INCOMING_GREETING: &[u8] = b"from the target";

/// The fake's end of each delivered connection.
static DELIVERED: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

pub struct FakeProxy {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl FakeProxy {
    pub fn start() -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake intproxy");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        thread::spawn(move || {
            for (layer_id, stream) in (1..).zip(listener.incoming().flatten()) {
                let log = shared.clone();
                thread::spawn(move || serve(stream, layer_id, log));
            }
        });
        FakeProxy { addr, log }
    }

    /// Every message received so far, one line each.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, layer_id: u64, log: Arc<Mutex<Vec<String>>>) {
    let Ok(LayerMessage::Hello(hello)) = read_frame::<LayerMessage, _>(&mut stream) else {
        return;
    };
    log.lock()
        .unwrap()
        .push(format!("hello {}", hello.process_name));
    let ack = ProxyMessage::HelloAck {
        version: PROTOCOL_VERSION,
        layer_id,
    };
    if write_frame(&mut stream, &ack).is_err() {
        return;
    }
    while let Ok(LayerMessage::Request { id, request }) = read_frame::<LayerMessage, _>(&mut stream)
    {
        log.lock().unwrap().push(format!("{request:?}"));
        let result = answer(request);
        if write_frame(&mut stream, &ProxyMessage::Response { id, result }).is_err() {
            return;
        }
    }
}

fn answer(request: LayerRequest) -> Result<LayerResponse, RemoteError> {
    match request {
        LayerRequest::Remote(Request::Resolve { host, .. }) => {
            match NAMES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&host))
            {
                Some((name, ip)) => Ok(LayerResponse::Remote(Response::Addresses {
                    canonical: Some((*name).to_owned()),
                    addrs: vec![ip.parse::<IpAddr>().unwrap()],
                })),
                None => Err(RemoteError::new(libc::ENOENT, format!("{host}: not found"))),
            }
        }
        LayerRequest::ConnectOutgoing { remote, .. } if remote.port() == REFUSED_PORT => {
            Err(RemoteError::new(libc::ECONNREFUSED, "connection refused"))
        }
        LayerRequest::ConnectOutgoing {
            protocol: NetProtocol::Tcp,
            ..
        } => {
            let relay = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = relay.local_addr().unwrap();
            thread::spawn(move || {
                if let Ok((mut conn, _)) = relay.accept() {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            });
            Ok(outgoing(addr))
        }
        LayerRequest::ConnectOutgoing {
            protocol: NetProtocol::Udp,
            ..
        } => {
            let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = relay.local_addr().unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok((n, from)) = relay.recv_from(&mut buf) {
                    let _ = relay.send_to(&buf[..n], from);
                }
            });
            Ok(outgoing(addr))
        }
        LayerRequest::Listen { subscription, .. }
            if subscription.mode != mirrord_protocol::IncomingMode::Steal =>
        {
            // As the agent answers while it cannot mirror.
            Err(RemoteError::new(libc::ENOTSUP, "no mirror mode"))
        }
        LayerRequest::Listen { app, .. } => {
            let socket = std::net::TcpStream::connect(app).unwrap();
            DELIVERED.lock().unwrap().push(socket.local_addr().unwrap());
            thread::spawn(move || {
                let mut socket = socket;
                let _ = socket.write_all(INCOMING_GREETING);
                // Held open until the program closes it.
                let _ = socket.read(&mut [0u8; 16]);
            });
            Ok(LayerResponse::Remote(Response::Done))
        }
        LayerRequest::Unlisten { .. } => Ok(LayerResponse::Remote(Response::Done)),
        LayerRequest::IncomingPeer { peer } => {
            let ours = DELIVERED.lock().unwrap().contains(&peer);
            Ok(LayerResponse::Peer(ours.then(|| IncomingPeer {
                remote: INCOMING_REMOTE.parse().unwrap(),
                local: TARGET_LOCAL.parse().unwrap(),
            })))
        }
        LayerRequest::Remote(other) => Err(RemoteError::new(
            libc::ENOSYS,
            format!("the fake intproxy does not serve {other:?}"),
        )),
    }
}

fn outgoing(relay: SocketAddr) -> LayerResponse {
    LayerResponse::Outgoing {
        relay,
        local: TARGET_LOCAL.parse().unwrap(),
    }
}

/// `target/<profile>/libmirrord_layer.so`, next to the test's `deps`
/// folder, built fresh once per test binary: `cargo test` builds the
/// library as an rlib for the tests but does not relink the cdylib the
/// programs preload.
pub fn layer_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            let target_dir = profile_dir.parent().unwrap();
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "-p", "mirrord-layer", "--lib", "--target-dir"])
                .arg(target_dir);
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building the layer failed");
            let path = profile_dir.join("libmirrord_layer.so");
            assert!(path.exists(), "{} is missing", path.display());
            path
        })
        .clone()
}

/// Runs `cmd` with the layer preloaded, talking to `proxy`, with `config`
/// as its config.
pub fn preloaded<'a>(cmd: &'a mut Command, proxy: &FakeProxy, config: &str) -> &'a mut Command {
    cmd.env("LD_PRELOAD", layer_path())
        .env("MIRRORD_INTPROXY_ADDR", proxy.addr.to_string())
        .env("MIRRORD_LAYER_CONFIG", config)
}

/// A C program compiled into a scratch directory, removed on drop. The
/// suite's set-up installs gcc: a missing compiler fails the test rather
/// than skip it.
pub struct CProgram {
    dir: PathBuf,
    pub binary: PathBuf,
}

impl CProgram {
    pub fn build(name: &str, source: &str) -> CProgram {
        let dir = std::env::temp_dir().join(format!("mirrord-layer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source_path = dir.join(format!("{name}.c"));
        let binary = dir.join(name);
        std::fs::write(&source_path, source).unwrap();
        let status = Command::new("gcc")
            .arg("-o")
            .arg(&binary)
            .arg(&source_path)
            .status()
            .expect("gcc runs (the test set-up installs it)");
        assert!(status.success(), "gcc failed");
        CProgram { dir, binary }
    }
}

impl Drop for CProgram {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails the test when `tool` cannot run: the suite's set-up installs it,
/// and a skipped test would prove nothing.
pub fn require(tool: &str, version_arg: &str) {
    assert!(
        Command::new(tool).arg(version_arg).output().is_ok(),
        "{tool} is needed by this test (the test set-up installs it)"
    );
}

/// The real Python 3 executable (not pyenv's shim script), if any.
pub fn python() -> Option<PathBuf> {
    for candidate in ["/root/.pyenv/shims/python3", "python3"] {
        let out = Command::new(candidate)
            .args(["-c", "import sys; print(sys.executable)"])
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if !path.is_empty() {
                    return Some(PathBuf::from(path));
                }
            }
        }
    }
    None
}

/// Runs `script` with Python under the layer, with `config` as the layer's
/// config; panics with the program's stderr when it fails.
pub fn run_python(proxy: &FakeProxy, config: &str, script: &str) -> Option<String> {
    let python = python().expect("python3 is needed by this test (the test set-up installs it)");
    let out = Command::new(python)
        .args(["-c", script])
        .env("LD_PRELOAD", layer_path())
        .env("MIRRORD_INTPROXY_ADDR", proxy.addr.to_string())
        .env("MIRRORD_LAYER_CONFIG", config)
        .env("MIRRORD_LAYER_REQUEST_TIMEOUT_MS", "10000")
        .output()
        .expect("start python");
    Some(checked(out))
}

pub fn checked(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the program failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}
