//! Test helpers: the real agent binary as a child process, a blocking
//! protocol client, and a stand-in target in its own network and mount
//! namespaces. Every child is killed and reaped in `Drop`.
#![allow(dead_code)]

pub mod target;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mirrord_protocol::{
    read_frame, write_frame, AgentMessage, ClientHello, ClientMessage, RemoteError, Request,
    Response, Version, PROTOCOL_VERSION,
};

pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The agent under test.
pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdin: Option<ChildStdin>,
}

impl Agent {
    pub fn start(args: &[&str]) -> Agent {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirrord-agent"));
        cmd.args(args)
            .env_remove("MIRRORD_AGENT_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("agent starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("readiness line");
        let addr = line
            .strip_prefix("mirrord-agent listening on ")
            .and_then(|a| a.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("unexpected readiness line {line:?}"));
        let stdin = child.stdin.take();
        Agent { child, addr, stdin }
    }

    /// Waits (bounded) for the agent to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        let (client, ack) = Client::hello(self.addr, PROTOCOL_VERSION, None);
        assert!(matches!(ack, AgentMessage::HelloAck { .. }), "{ack:?}");
        client
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client of the agent.
pub struct Client {
    pub stream: TcpStream,
    next_id: u64,
    /// Messages read while waiting for something else.
    pub pending: VecDeque<AgentMessage>,
}

impl Client {
    pub fn hello(
        addr: SocketAddr,
        version: Version,
        secret: Option<&str>,
    ) -> (Client, AgentMessage) {
        let stream = TcpStream::connect(addr).expect("connect to the agent");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut c = Client {
            stream,
            next_id: 1,
            pending: VecDeque::new(),
        };
        c.send(ClientMessage::Hello(ClientHello {
            version,
            secret: secret.map(String::from),
        }));
        let ack = c.recv();
        (c, ack)
    }

    pub fn send(&mut self, msg: ClientMessage) {
        write_frame(&mut self.stream, &msg).expect("send");
    }

    /// The next message, from the backlog first.
    pub fn recv(&mut self) -> AgentMessage {
        if let Some(m) = self.pending.pop_front() {
            return m;
        }
        read_frame(&mut self.stream).expect("a message from the agent")
    }

    /// Sends a request without waiting; returns its id.
    pub fn submit(&mut self, request: Request) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(ClientMessage::Request { id, request });
        id
    }

    /// Waits for the answer to `id`, keeping anything else for later.
    pub fn answer(&mut self, id: u64) -> Result<Response, RemoteError> {
        if let Some(i) = self
            .pending
            .iter()
            .position(|m| matches!(m, AgentMessage::Response { id: got, .. } if *got == id))
        {
            if let Some(AgentMessage::Response { result, .. }) = self.pending.remove(i) {
                return result;
            }
        }
        loop {
            match read_frame(&mut self.stream).expect("an answer from the agent") {
                AgentMessage::Response { id: got, result } if got == id => return result,
                other => self.pending.push_back(other),
            }
        }
    }

    pub fn request(&mut self, request: Request) -> Result<Response, RemoteError> {
        let id = self.submit(request);
        self.answer(id)
    }

    /// Waits for a message matching `pred`, keeping the others.
    pub fn wait_for(&mut self, pred: impl Fn(&AgentMessage) -> bool) -> AgentMessage {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("present");
        }
        loop {
            let m: AgentMessage = read_frame(&mut self.stream).expect("a message from the agent");
            if pred(&m) {
                return m;
            }
            self.pending.push_back(m);
        }
    }

    /// True when the agent closed the connection (EOF) within the timeout.
    pub fn closed_by_agent(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Opens a side stream to `remote` through the agent at `addr`: the
/// stream, and the agent's one answer on it.
pub fn open_stream(
    addr: SocketAddr,
    secret: Option<&str>,
    remote: SocketAddr,
) -> (TcpStream, AgentMessage) {
    let mut stream = TcpStream::connect(addr).expect("connect to the agent");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let open = ClientMessage::OpenStream {
        secret: secret.map(String::from),
        remote,
    };
    write_frame(&mut stream, &open).expect("send");
    let answer = read_frame(&mut stream).expect("the agent's answer");
    (stream, answer)
}

pub fn errno(r: Result<Response, RemoteError>) -> i32 {
    match r {
        Err(e) => e.errno,
        Ok(resp) => panic!("expected an error, got {resp:?}"),
    }
}
