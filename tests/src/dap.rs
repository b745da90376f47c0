//! A small Debug Adapter Protocol client for the end-to-end tests: it
//! drives `mirrord dap` (or an adapter directly) over stdio or TCP, keeps
//! every message it received, and answers nothing on its own.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct DapClient {
    writer: Box<dyn Write + Send>,
    incoming: mpsc::Receiver<Result<Value, String>>,
    /// Received but not yet taken by a `wait_*`.
    pending: VecDeque<Value>,
    /// Every message received, in order.
    pub log: Vec<Value>,
    next_seq: i64,
    /// The proxy (or adapter) process, when spawned.
    pub child: Option<Child>,
}

impl DapClient {
    /// Spawns `command` and speaks DAP on its stdio (stderr inherited).
    pub fn spawn(mut command: Command) -> DapClient {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the DAP server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut client = DapClient::over(Box::new(stdin), stdout);
        client.child = Some(child);
        client
    }

    /// Connects to a DAP server on TCP, retrying for a few seconds.
    pub fn connect(addr: &str) -> DapClient {
        let started = Instant::now();
        let stream = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(e) if started.elapsed() > Duration::from_secs(10) => {
                    panic!("connect {addr}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let reader = stream.try_clone().expect("clone");
        DapClient::over(Box::new(stream), reader)
    }

    fn over(writer: Box<dyn Write + Send>, reader: impl Read + Send + 'static) -> DapClient {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let message = read_frame(&mut reader);
                let end = message.is_err();
                if tx.send(message).is_err() || end {
                    return;
                }
            }
        });
        DapClient {
            writer,
            incoming: rx,
            pending: VecDeque::new(),
            log: Vec::new(),
            next_seq: 1,
            child: None,
        }
    }

    /// Sends a request; returns its seq.
    pub fn request(&mut self, command: &str, arguments: Value) -> i64 {
        let seq = self.next_seq;
        self.send(
            json!({"seq": seq, "type": "request", "command": command, "arguments": arguments}),
        );
        seq
    }

    /// Answers a reverse request.
    pub fn respond(&mut self, request: &Value, success: bool, body: Value) {
        let seq = self.next_seq;
        self.send(json!({
            "seq": seq, "type": "response", "request_seq": request["seq"],
            "command": request["command"], "success": success, "body": body,
        }));
    }

    fn send(&mut self, message: Value) {
        self.next_seq += 1;
        let body = serde_json::to_vec(&message).expect("json");
        self.send_raw(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        self.send_raw(&body);
    }

    /// Writes raw bytes (for garbage-input tests); errors are ignored.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
        let _ = self.writer.flush();
    }

    /// Closes our side of the stream.
    pub fn close(&mut self) {
        self.writer = Box::new(std::io::sink());
        if let Some(child) = &mut self.child {
            drop(child.stdin.take());
        }
    }

    /// The first message (received earlier or later) matching `pred`,
    /// removed from the pending ones.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                return self.pending.remove(i).unwrap_or_default();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(Ok(message)) => {
                    self.log.push(message.clone());
                    self.pending.push_back(message);
                }
                Ok(Err(end)) => panic!("waiting for {what}: {end}; received: {:#?}", self.log),
                Err(_) => panic!("no {what} within {timeout:?}; received: {:#?}", self.log),
            }
        }
    }

    /// Waits for the end of the stream; returns everything still pending.
    pub fn wait_closed(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(Ok(message)) => {
                    self.log.push(message.clone());
                    self.pending.push_back(message);
                }
                Ok(Err(_)) => return self.pending.drain(..).collect(),
                Err(_) => panic!("the stream did not end within {timeout:?}: {:#?}", self.log),
            }
        }
    }

    pub fn response(&mut self, seq: i64, timeout: Duration) -> Value {
        self.wait_for(&format!("response to {seq}"), timeout, |m| {
            m["type"] == "response" && m["request_seq"] == seq
        })
    }

    pub fn event(&mut self, name: &str, timeout: Duration) -> Value {
        self.wait_for(&format!("event {name}"), timeout, |m| {
            m["type"] == "event" && m["event"] == name
        })
    }

    pub fn reverse_request(&mut self, command: &str, timeout: Duration) -> Value {
        self.wait_for(&format!("reverse request {command}"), timeout, |m| {
            m["type"] == "request" && m["command"] == command
        })
    }

    /// Everything the debuggee printed (output events), so far.
    pub fn output(&self) -> String {
        self.log
            .iter()
            .filter(|m| m["event"] == "output")
            .filter_map(|m| m["body"]["output"].as_str())
            .collect()
    }

    /// A request that must succeed; returns its body.
    pub fn call(&mut self, command: &str, arguments: Value) -> Value {
        let seq = self.request(command, arguments);
        let response = self.response(seq, Duration::from_secs(60));
        assert_eq!(response["success"], true, "{command}: {response:#}");
        response["body"].clone()
    }

    /// At a stop: the variables of the top frame's first scope, by name.
    pub fn top_frame_locals(&mut self, thread_id: &Value) -> Vec<(String, String)> {
        let stack = self.call("stackTrace", json!({"threadId": thread_id}));
        let frame = stack["stackFrames"][0]["id"].clone();
        let scopes = self.call("scopes", json!({"frameId": frame}));
        let reference = scopes["scopes"][0]["variablesReference"].clone();
        let vars = self.call("variables", json!({"variablesReference": reference}));
        vars["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                (
                    v["name"].as_str().unwrap_or_default().to_owned(),
                    v["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// Reads one Content-Length frame.
fn read_frame(reader: &mut impl BufRead) -> Result<Value, String> {
    let mut length = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the stream ended".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length:") {
            length = n.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("body: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("json: {e}"))
}
