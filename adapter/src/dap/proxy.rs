//! One DAP stream between a client and an adapter: forwards everything
//! byte for byte, except what it must rewrite (`launch`, `runInTerminal`,
//! `startDebugging`, sequence numbers) and what it answers itself
//! (`attach`, a failed launch, its own `mirrord/pickTarget`).
//!
//! While a launch is being prepared (target picked, session started),
//! later client messages are held and then forwarded in order, so nothing
//! overtakes the launch; adapter messages keep flowing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use mirrord_config::{MirrordConfig, Target};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::framing::{Frame, FrameError, FrameReader};
use super::message::{self, Envelope};
use super::outlet::Outlet;
use super::seq::{route, Numbering, Routed};
use super::sessions::Lease;
use super::Context;
use crate::launch::{self, MirrordSetting};
use crate::progress::Progress;
use crate::session::{Session, Vars};
use crate::syscall::standby::Standby;

/// The custom reverse request that asks the client for a target.
pub const PICK_TARGET: &str = "mirrord/pickTarget";
/// How long a person has to pick a target in the terminal.
const PICKER_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the adapter may keep talking after answering `disconnect`.
const DRAIN_AFTER_DISCONNECT: Duration = Duration::from_millis(300);

pub use super::outlet::Writer;
pub type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// What the proxy's loop reacts to: a message (or the end) read from
/// either side, or what comes through its channel from the tasks it
/// started.
pub enum Input {
    Client(Result<Option<Frame>, FrameError>),
    Adapter(Result<Option<Frame>, FrameError>),
    /// A session start finished.
    Started(anyhow::Result<Lease>),
    /// A step of a session start, for the client's progress display.
    Step(String),
    /// The terminal picker's choice: a target, or why there is none.
    Picked(Result<String, String>),
}

/// The proxy's own requests to the client.
#[derive(Debug)]
pub enum Own {
    PickTarget,
    /// `runInTerminal` of `mirrord pick`.
    TerminalPicker,
}

/// What the client said it supports in `initialize`.
#[derive(Debug, Default)]
struct Caps {
    run_in_terminal: bool,
    progress: bool,
    pick_target: bool,
}

/// A launch being prepared.
struct PendingLaunch {
    /// The client's `seq` of the request.
    seq: i64,
    /// The request, `mirrord` object removed.
    request: Value,
    config: MirrordConfig,
}

/// How the stream ended.
#[derive(Debug)]
pub enum End {
    /// The client closed it, or the session was disconnected.
    Normal,
    /// The proxy is shutting down (a signal).
    Shutdown,
    /// The adapter went away in the middle of the session.
    AdapterLost,
}

/// What waiting in the loop gave.
enum Next {
    Input(Input),
    /// Bytes were read: take the messages they complete.
    Read,
    End(End),
}

/// Waits for bytes from either side or an input from the channel. Every
/// branch is cancel-safe (a read that does not complete takes nothing).
async fn next_input(
    client: (&mut FrameReader, &mut Reader),
    adapter: (&mut FrameReader, &mut Reader),
    rx: &mut mpsc::Receiver<Input>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Next {
    tokio::select! {
        read = client.0.fill(client.1) => match read {
            Ok(()) => Next::Read,
            Err(e) => Next::Input(Input::Client(Err(e.into()))),
        },
        read = adapter.0.fill(adapter.1) => match read {
            Ok(()) => Next::Read,
            Err(e) => Next::Input(Input::Adapter(Err(e.into()))),
        },
        input = rx.recv() => match input {
            Some(input) => Next::Input(input),
            None => Next::End(End::Normal),
        },
        _ = shutdown.changed() => Next::End(End::Shutdown),
    }
}

pub struct Proxy {
    ctx: Arc<Context>,
    client: Outlet,
    adapter: Outlet,
    to_client: Numbering<Own>,
    to_adapter: Numbering<Own>,
    caps: Caps,
    lease: Option<Lease>,
    launch: Option<PendingLaunch>,
    held: VecDeque<Frame>,
    inputs: mpsc::Sender<Input>,
    progress: Option<String>,
    /// Waits for the terminal picker's choice.
    picker: Option<tokio::task::JoinHandle<()>>,
    /// Client `seq` of an outstanding `disconnect`/`terminate`.
    disconnect: Option<i64>,
    disconnected: bool,
    /// The adapter's seccomp listener, handed to the session that starts.
    standby: Option<Standby>,
    /// The adapter runs under the filter: its debuggees get the syscall
    /// path (and the layer only for their dynamic children).
    filtered: bool,
}

impl Proxy {
    pub fn new(
        ctx: Arc<Context>,
        client: Writer,
        adapter: Writer,
        inputs: mpsc::Sender<Input>,
    ) -> Proxy {
        Proxy {
            ctx,
            client: Outlet::new(client),
            adapter: Outlet::new(adapter),
            to_client: Numbering::default(),
            to_adapter: Numbering::default(),
            caps: Caps::default(),
            lease: None,
            launch: None,
            held: VecDeque::new(),
            inputs,
            progress: None,
            picker: None,
            disconnect: None,
            disconnected: false,
            standby: None,
            filtered: false,
        }
    }

    /// The adapter runs under the syscall path's filter: its listener goes
    /// to the session the launch starts.
    pub fn with_standby(mut self, standby: Option<Standby>) -> Proxy {
        self.filtered = standby.is_some();
        self.standby = standby;
        self
    }

    /// Serves the stream until it ends; returns the session lease to give
    /// back.
    ///
    /// One task does all of it: each read takes what a side sent (often
    /// several messages), every message is handled at once, and what they
    /// produced is written before the next wait, in one write per side.
    pub async fn run(
        mut self,
        mut client_in: Reader,
        mut adapter_in: Reader,
        mut rx: mpsc::Receiver<Input>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> (End, Option<Lease>) {
        let mut from_client = FrameReader::default();
        let mut from_adapter = FrameReader::default();
        let end = loop {
            let input = if let Some(read) = from_client.take() {
                Input::Client(read)
            } else if let Some(read) = from_adapter.take() {
                Input::Adapter(read)
            } else {
                self.client.flush();
                self.adapter.flush();
                let next = next_input(
                    (&mut from_client, &mut client_in),
                    (&mut from_adapter, &mut adapter_in),
                    &mut rx,
                    &mut shutdown,
                );
                let next = if self.disconnected {
                    match tokio::time::timeout(DRAIN_AFTER_DISCONNECT, next).await {
                        Ok(next) => next,
                        Err(_) => break End::Normal,
                    }
                } else {
                    next.await
                };
                match next {
                    Next::Input(input) => input,
                    Next::Read => continue,
                    Next::End(end) => break end,
                }
            };
            match self.handle(input).await {
                Ok(None) => {}
                Ok(Some(end)) => break end,
                Err(e) => {
                    warn!("DAP stream ends: {e:#}");
                    break End::Normal;
                }
            }
            while self.launch.is_none() {
                let Some(frame) = self.held.pop_front() else {
                    break;
                };
                if let Err(e) = self.on_client(frame).await {
                    warn!("DAP stream ends: {e:#}");
                    break;
                }
            }
        };
        if let Some(picker) = self.picker.take() {
            picker.abort();
        }
        let limit = Duration::from_secs(2);
        let lease = self.lease.take();
        tokio::join!(self.adapter.close(limit), self.client.close(limit));
        (end, lease)
    }

    async fn handle(&mut self, input: Input) -> anyhow::Result<Option<End>> {
        match input {
            Input::Client(Ok(Some(frame))) => self.on_client(frame).await?,
            Input::Client(Ok(None)) => {
                info!("the DAP client closed the stream");
                return Ok(Some(End::Normal));
            }
            Input::Client(Err(e)) => {
                let text = format!(
                    "mirrord: the debug client sent a malformed DAP message ({e}); the session ends"
                );
                warn!("{text}");
                self.tell_client_and_end(&text).await;
                return Ok(Some(End::Normal));
            }
            Input::Adapter(Ok(Some(frame))) => self.on_adapter(frame).await?,
            Input::Adapter(Ok(None)) if self.disconnected || self.disconnect.is_some() => {
                return Ok(Some(End::Normal));
            }
            Input::Adapter(Ok(None)) => {
                let text = format!(
                    "mirrord: the debug adapter `{}` ended the connection in the middle of the \
                     session (it exited or crashed; its messages are above); the session ends",
                    self.ctx.adapter_name()
                );
                self.adapter_lost(&text).await;
                return Ok(Some(End::AdapterLost));
            }
            Input::Adapter(Err(e)) => {
                let text = format!(
                    "mirrord: the debug adapter `{}` sent a malformed DAP message ({e}); the \
                     session ends",
                    self.ctx.adapter_name()
                );
                self.adapter_lost(&text).await;
                return Ok(Some(End::AdapterLost));
            }
            Input::Started(result) => self.on_started(result).await?,
            Input::Step(step) => self.progress_step(&step).await?,
            Input::Picked(choice) => self.picked(choice).await?,
        }
        Ok(None)
    }

    async fn on_client(&mut self, frame: Frame) -> anyhow::Result<()> {
        let Frame { body, envelope } = frame;
        let answers_us = envelope.as_ref().is_some_and(|e| {
            e.is_response() && e.request_seq.is_some_and(|s| self.to_client.is_own(s))
        });
        if self.launch.is_some() && !answers_us {
            self.held.push_back(Frame { body, envelope });
            return Ok(());
        }
        if let Some(e) = &envelope {
            if e.is_request("initialize") {
                self.read_caps(&body);
            } else if e.is_request("launch") {
                return self.on_launch(body, e.seq.unwrap_or(0)).await;
            } else if e.is_request("attach") {
                return self.on_attach(body, e.seq.unwrap_or(0)).await;
            } else if e.is_request("disconnect") || e.is_request("terminate") {
                self.disconnect = e.seq;
            }
        }
        match self.forward(body, envelope.as_ref()).await? {
            None => Ok(()),
            Some((Own::PickTarget, answer)) => {
                let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
                let choice = match (
                    answer["success"].as_bool(),
                    answer["body"]["target"].as_str(),
                ) {
                    (Some(true), Some(target)) => Ok(target.to_owned()),
                    _ => Err(answer["message"]
                        .as_str()
                        .unwrap_or("no target was picked")
                        .to_owned()),
                };
                self.picked(choice).await
            }
            Some((Own::TerminalPicker, answer)) => {
                let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
                if answer["success"].as_bool() == Some(true) {
                    return Ok(()); // The choice comes from the picker's file.
                }
                let why = answer["message"].as_str().unwrap_or("no reason given");
                self.picked(Err(format!(
                    "the client could not run the target picker in a terminal ({why})"
                )))
                .await
            }
        }
    }

    async fn on_adapter(&mut self, frame: Frame) -> anyhow::Result<()> {
        let Frame { mut body, envelope } = frame;
        if let Some(e) = &envelope {
            if e.is_request("runInTerminal") {
                body = self.rewrite_run_in_terminal(body);
            } else if e.is_request("startDebugging") {
                body = self.rewrite_start_debugging(body);
            }
        }
        let is_disconnect_answer = envelope.as_ref().is_some_and(|e| {
            e.is_response()
                && matches!(e.command.as_deref(), Some("disconnect"))
                && self.disconnect.is_some()
        });
        match route(
            body,
            envelope.as_ref(),
            &mut self.to_adapter,
            &mut self.to_client,
        ) {
            Routed::Forward(body) => self.client.send(&body),
            Routed::Answer(..) => {}
        }
        if is_disconnect_answer {
            self.disconnected = true;
        }
        Ok(())
    }

    /// Forwards a client message to the adapter; an answer to one of the
    /// proxy's own requests is returned instead.
    async fn forward(
        &mut self,
        body: Vec<u8>,
        envelope: Option<&Envelope>,
    ) -> anyhow::Result<Option<(Own, Vec<u8>)>> {
        match route(body, envelope, &mut self.to_client, &mut self.to_adapter) {
            Routed::Forward(body) => {
                self.adapter.send(&body);
                Ok(None)
            }
            Routed::Answer(own, body) => Ok(Some((own, body))),
        }
    }

    fn read_caps(&mut self, body: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let flag = |name: &str| message["arguments"][name].as_bool().unwrap_or(false);
        self.caps = Caps {
            run_in_terminal: flag("supportsRunInTerminalRequest"),
            progress: flag("supportsProgressReporting"),
            pick_target: flag("supportsMirrordPickTarget"),
        };
        debug!(caps = ?self.caps, "client capabilities");
    }

    async fn on_launch(&mut self, body: Vec<u8>, seq: i64) -> anyhow::Result<()> {
        let mut request: Value = serde_json::from_slice(&body)?;
        if !request["arguments"].is_object() {
            request["arguments"] = json!({});
        }
        let Some(args) = request["arguments"].as_object_mut() else {
            return Ok(());
        };
        let prepared = launch::take_mirrord(args).and_then(|setting| {
            if setting == MirrordSetting::Disabled {
                return Ok(None);
            }
            launch::load_config(&self.ctx.config, &setting, args).map(Some)
        });
        let config = match prepared {
            Ok(Some(config)) => config,
            Ok(None) => {
                info!("this launch configuration has \"mirrord\": false: forwarded as it is");
                return self.forward_rewritten(request, seq, "launch").await;
            }
            Err(e) => return self.fail_launch(seq, &format!("mirrord: {e:#}")).await,
        };
        self.launch = Some(PendingLaunch {
            seq,
            request,
            config,
        });
        if self.launch_config_has_target() {
            self.start_session().await
        } else {
            self.ask_for_target().await
        }
    }

    fn launch_config_has_target(&self) -> bool {
        self.launch
            .as_ref()
            .is_some_and(|l| l.config.target.path.is_some())
    }

    async fn on_attach(&mut self, body: Vec<u8>, seq: i64) -> anyhow::Result<()> {
        let mut request: Value = serde_json::from_slice(&body)?;
        let setting = match request["arguments"].as_object_mut() {
            Some(args) => launch::take_mirrord(args),
            None => Ok(MirrordSetting::Default),
        };
        if matches!(setting, Ok(MirrordSetting::Disabled)) {
            return self.forward_rewritten(request, seq, "attach").await;
        }
        let text = "mirrord runs the program it debugs, so it needs a `launch` configuration: \
                    `attach` cannot bring a running process into the target. Use a launch \
                    configuration, or set \"mirrord\": false in this one to attach without mirrord.";
        self.send_client(message::error_response(seq, "attach", text))
            .await
    }

    /// Forwards a client request the proxy parsed and changed.
    async fn forward_rewritten(
        &mut self,
        request: Value,
        seq: i64,
        command: &str,
    ) -> anyhow::Result<()> {
        let envelope = Envelope {
            seq: Some(seq),
            kind: Some("request".into()),
            command: Some(command.into()),
            event: None,
            request_seq: None,
        };
        // A request is never an answer to the proxy's own request.
        self.forward(message::to_bytes(&request), Some(&envelope))
            .await
            .map(drop)
    }

    async fn fail_launch(&mut self, seq: i64, text: &str) -> anyhow::Result<()> {
        warn!("{text}");
        self.launch = None;
        self.send_client(message::error_response(seq, "launch", text))
            .await
    }

    /// No target configured: ask the client, or fail with the list.
    async fn ask_for_target(&mut self) -> anyhow::Result<()> {
        let targets = crate::target::list_local();
        if self.caps.pick_target {
            let seq = self.to_client.own_request(Own::PickTarget);
            let mut request = message::reverse_request(PICK_TARGET, json!({ "targets": targets }));
            request["seq"] = json!(seq);
            self.client.send(&message::to_bytes(&request));
            return Ok(());
        }
        if self.caps.run_in_terminal {
            return self.run_terminal_picker().await;
        }
        let seq = self.launch.as_ref().map(|l| l.seq).unwrap_or(0);
        let list: Vec<String> = targets
            .iter()
            .map(|t| format!("  {}  ({})", t.path, t.description))
            .collect();
        let text = format!(
            "mirrord: no target is set for this launch. Available targets:\n{}\nSet one in the \
             launch configuration (\"mirrord\": {{\"target\": \"pid/123\"}}), in the config file \
             (\"target\": \"pid/123\"), or with `mirrord dap --target pid/123`.",
            list.join("\n")
        );
        self.fail_launch(seq, &text).await
    }

    /// Runs `mirrord pick` in the client's terminal and waits for the
    /// file it writes.
    async fn run_terminal_picker(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let cwd = std::env::current_dir()?;
        let seq = self.to_client.own_request(Own::TerminalPicker);
        let out =
            std::env::temp_dir().join(format!("mirrord-pick-{}-{seq}.json", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut request = message::reverse_request(
            "runInTerminal",
            json!({
                "kind": "integrated",
                "title": "mirrord: pick a target",
                "cwd": cwd,
                "args": [exe, "pick", "--out", out],
            }),
        );
        request["seq"] = json!(seq);
        self.client.send(&message::to_bytes(&request));
        let inputs = self.inputs.clone();
        self.picker = Some(tokio::spawn(async move {
            let choice = super::picker_file::wait(&out, PICKER_TIMEOUT).await;
            let _ = inputs.send(Input::Picked(choice)).await;
        }));
        Ok(())
    }

    /// A target was picked (or not): start the session, or fail the launch.
    async fn picked(&mut self, choice: Result<String, String>) -> anyhow::Result<()> {
        if let Some(picker) = self.picker.take() {
            picker.abort();
        }
        let Some(seq) = self.launch.as_ref().map(|l| l.seq) else {
            return Ok(());
        };
        let target = match choice {
            Ok(path) => path
                .parse::<Target>()
                .map_err(|e| format!("the picked target is not valid: {e}")),
            Err(why) => Err(why),
        };
        match target {
            Ok(target) => {
                if let Some(launch) = &mut self.launch {
                    launch.config.target.path = Some(target);
                }
                self.start_session().await
            }
            Err(why) => {
                self.fail_launch(seq, &format!("mirrord: {why}; the launch is cancelled"))
                    .await
            }
        }
    }

    async fn start_session(&mut self) -> anyhow::Result<()> {
        let Some(launch) = &self.launch else {
            return Ok(());
        };
        let config = launch.config.clone();
        let key = mirrord_config::to_json(&config);
        let joined = self.ctx.sessions.join(&key);
        let standby = self.standby.take();
        let (joined, standby) = match (joined, standby) {
            (Some(lease), None) => return self.on_started(Ok(lease)).await,
            other => other,
        };
        if joined.is_none() {
            self.progress_begin(&format!(
                "starting a session for {}",
                config
                    .target
                    .path
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
            .await?;
        }
        let ctx = self.ctx.clone();
        let inputs = self.inputs.clone();
        tokio::task::spawn_blocking(move || {
            let steps = inputs.clone();
            let progress = Progress::to_sink(Box::new(move |step: &str| {
                let _ = steps.blocking_send(Input::Step(step.to_owned()));
            }));
            let result = match joined {
                Some(lease) => Ok(lease),
                None => Session::start(&config, Some(std::process::id()), &progress)
                    .map(|session| ctx.sessions.add(key, session)),
            };
            let result = match (result, standby) {
                (Ok(lease), Some(standby)) => {
                    let session = &lease.session;
                    match standby.hand_off(&session.supervisor, session.config_json()) {
                        Ok(()) => Ok(lease),
                        Err(e) => {
                            ctx.sessions.release(lease);
                            Err(anyhow::Error::new(e)
                                .context("the Go debugger's programs cannot join the session"))
                        }
                    }
                }
                (result, _) => result,
            };
            let _ = inputs.blocking_send(Input::Started(result));
        });
        Ok(())
    }

    async fn on_started(&mut self, result: anyhow::Result<Lease>) -> anyhow::Result<()> {
        let Some(launch) = self.launch.take() else {
            if let Ok(lease) = result {
                self.ctx.sessions.release(lease);
            }
            return Ok(());
        };
        let lease = match result {
            Ok(lease) => lease,
            Err(e) => {
                self.progress_end("the session did not start").await?;
                return self
                    .fail_launch(launch.seq, &format!("mirrord: {e:#}"))
                    .await;
            }
        };
        self.progress_end(&format!("running in {}", lease.session.target))
            .await?;
        let mut request = launch.request;
        let debug_type = request["arguments"]["type"].as_str().map(str::to_owned);
        if let Some(args) = request["arguments"].as_object_mut() {
            let vars = launch::debuggee_vars(
                args,
                debug_type.as_deref(),
                self.ctx.adapter_command(),
                self.filtered,
            );
            launch::inject_env(
                args,
                debug_type.as_deref(),
                self.ctx.adapter_command(),
                &lease.session,
                vars,
            );
            let swapped = launch::sip::swap_protected(
                args,
                debug_type.as_deref(),
                self.ctx.sip_host.as_ref(),
            );
            match swapped {
                Ok(swaps) => swaps
                    .iter()
                    .for_each(|s| info!("{}: {} runs as {}", s.key, s.original, s.copy.display())),
                Err(e) => {
                    self.ctx.sessions.release(lease);
                    return self
                        .fail_launch(launch.seq, &format!("mirrord: {e:#}"))
                        .await;
                }
            }
        }
        if let Some(old) = self.lease.replace(lease) {
            self.ctx.sessions.release(old);
        }
        self.forward_rewritten(request, launch.seq, "launch").await
    }

    /// `runInTerminal`: the terminal's environment gets the session's.
    fn rewrite_run_in_terminal(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(lease) = &self.lease else {
            return body;
        };
        let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        let Some(args) = request["arguments"].as_object_mut() else {
            return body;
        };
        launch::inject_env(
            args,
            Some("runInTerminal"),
            None,
            &lease.session,
            Vars::Layer,
        );
        if let Err(e) =
            launch::sip::swap_protected(args, Some("runInTerminal"), self.ctx.sip_host.as_ref())
        {
            warn!("runInTerminal: {e:#}");
        }
        message::to_bytes(&request)
    }

    /// `startDebugging`: the child configuration runs in the same session:
    /// its environment points at this session, and the proxy that serves
    /// it (if any) is told not to start another one.
    fn rewrite_start_debugging(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(lease) = &self.lease else {
            return body;
        };
        let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        let Some(configuration) = request["arguments"]["configuration"].as_object_mut() else {
            return body;
        };
        let _ = launch::take_mirrord(configuration);
        let debug_type = configuration
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let vars = launch::debuggee_vars(
            configuration,
            debug_type.as_deref(),
            self.ctx.adapter_command(),
            self.filtered,
        );
        launch::inject_env(
            configuration,
            debug_type.as_deref(),
            self.ctx.adapter_command(),
            &lease.session,
            vars,
        );
        if let Err(e) = launch::sip::swap_protected(
            configuration,
            debug_type.as_deref(),
            self.ctx.sip_host.as_ref(),
        ) {
            warn!("startDebugging: {e:#}");
        }
        configuration.insert(launch::MIRRORD_KEY.into(), Value::Bool(false));
        message::to_bytes(&request)
    }

    async fn progress_begin(&mut self, text: &str) -> anyhow::Result<()> {
        if self.caps.progress {
            let id = format!("mirrord-{}", self.to_client.peek());
            self.progress = Some(id.clone());
            let event = message::event(
                "progressStart",
                json!({"progressId": id, "title": "mirrord", "message": text}),
            );
            self.send_client(event).await
        } else {
            self.send_client(message::output("console", &format!("mirrord: {text}")))
                .await
        }
    }

    async fn progress_step(&mut self, text: &str) -> anyhow::Result<()> {
        match self.progress.clone() {
            Some(id) => {
                let body = json!({"progressId": id, "message": text});
                self.send_client(message::event("progressUpdate", body))
                    .await
            }
            None => {
                self.send_client(message::output("console", &format!("mirrord: {text}")))
                    .await
            }
        }
    }

    async fn progress_end(&mut self, text: &str) -> anyhow::Result<()> {
        if let Some(id) = self.progress.take() {
            let body = json!({"progressId": id, "message": text});
            self.send_client(message::event("progressEnd", body))
                .await?;
        }
        self.send_client(message::output("console", &format!("mirrord: {text}")))
            .await
    }

    /// Sends a message of the proxy's own to the client.
    async fn send_client(&mut self, mut message: Value) -> anyhow::Result<()> {
        message["seq"] = json!(self.to_client.take());
        self.client.send(&message::to_bytes(&message));
        Ok(())
    }

    /// The adapter is gone: fail what it left unanswered, say why, end.
    async fn adapter_lost(&mut self, text: &str) {
        warn!("{text}");
        let unanswered: Vec<(i64, String)> = self.to_adapter.unanswered().collect();
        for (seq, command) in unanswered {
            let _ = self
                .send_client(message::error_response(seq, &command, text))
                .await;
        }
        self.tell_client_and_end(text).await;
    }

    async fn tell_client_and_end(&mut self, text: &str) {
        let _ = self.send_client(message::output("important", text)).await;
        let _ = self
            .send_client(message::event("terminated", json!({})))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::dap::framing::encode;

    fn context() -> Arc<Context> {
        Arc::new(Context {
            config: Default::default(),
            command: vec!["fake-adapter".into()],
            connect: None,
            sessions: Default::default(),
            sip_host: None,
            filtered: false,
            standby: Default::default(),
        })
    }

    /// A proxy serving in-memory streams: the test plays the client and
    /// the adapter.
    struct Running {
        client: DuplexStream,
        adapter: DuplexStream,
        task: tokio::task::JoinHandle<(End, Option<Lease>)>,
        _shutdown: tokio::sync::watch::Sender<bool>,
    }

    fn running() -> Running {
        let (client_proxy, client) = duplex(1 << 16);
        let (adapter_proxy, adapter) = duplex(1 << 16);
        let (client_in, client_out) = tokio::io::split(client_proxy);
        let (adapter_in, adapter_out) = tokio::io::split(adapter_proxy);
        let (tx, rx) = mpsc::channel(16);
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let proxy = Proxy::new(context(), Box::new(client_out), Box::new(adapter_out), tx);
        Running {
            client,
            adapter,
            task: tokio::spawn(proxy.run(Box::new(client_in), Box::new(adapter_in), rx, shutdown)),
            _shutdown: shutdown_tx,
        }
    }

    async fn read_bodies(stream: &mut DuplexStream, count: usize) -> Vec<String> {
        let mut frames = FrameReader::default();
        let mut out = Vec::new();
        for _ in 0..count {
            let frame = frames.read(stream).await.unwrap().unwrap();
            out.push(String::from_utf8(frame.body).unwrap());
        }
        out
    }

    fn texts(bodies: &[&[u8]]) -> Vec<String> {
        bodies
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn forwards_every_message_byte_for_byte_in_order() {
        let Running {
            mut client,
            mut adapter,
            task,
            _shutdown,
        } = running();

        let from_client: [&[u8]; 4] = [
            br#"{"seq":1,"type":"request","command":"initialize","arguments":{"adapterID":"x","weird":[1.50,"\u00e9"]}}"#,
            br#"{ "seq" : 2 , "type":"request","command":"myCustomThing","arguments":{"n":1e3}}"#,
            br#"{"seq":3,"type":"request","command":"threads"}"#,
            br#"{"seq":4,"type":"request","command":"stackTrace","arguments":{"threadId":1}}"#,
        ];
        // Three in one write with the start of the fourth, then its rest.
        let all: Vec<u8> = from_client.iter().flat_map(|b| encode(b)).collect();
        let cut = all.len() - 20;
        client.write_all(&all[..cut]).await.unwrap();
        tokio::task::yield_now().await;
        client.write_all(&all[cut..]).await.unwrap();
        let from_adapter: [&[u8]; 2] = [
            br#"{"seq":1,"type":"event","event":"vendorThing","body":{"x":"\u00e9"},"extra":true}"#,
            br#"{"seq":2,"type":"response","request_seq":2,"command":"myCustomThing","success":true}"#,
        ];
        for body in from_adapter {
            adapter.write_all(&encode(body)).await.unwrap();
        }
        assert_eq!(read_bodies(&mut adapter, 4).await, texts(&from_client));
        assert_eq!(read_bodies(&mut client, 2).await, texts(&from_adapter));

        client.shutdown().await.unwrap();
        let (end, lease) = task.await.unwrap();
        assert!(matches!(end, End::Normal) && lease.is_none());
        let mut rest = Vec::new();
        adapter.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    #[tokio::test]
    async fn garbage_from_the_client_ends_the_stream_with_a_message() {
        let Running {
            mut client,
            mut adapter,
            task,
            _shutdown,
        } = running();
        let ok = br#"{"seq":1,"type":"request","command":"threads"}"#;
        client.write_all(&encode(ok)).await.unwrap();
        client
            .write_all(b"Content-Length: 9\r\n\r\n{\"seq\":1,")
            .await
            .unwrap();
        let said = read_bodies(&mut client, 2).await;
        assert!(
            said[0].contains("malformed DAP message") && said[0].contains("not a JSON object"),
            "{said:?}"
        );
        assert!(said[1].contains(r#""event":"terminated""#), "{said:?}");
        let (end, _) = task.await.unwrap();
        assert!(matches!(end, End::Normal));
        let mut seen_by_adapter = Vec::new();
        adapter.read_to_end(&mut seen_by_adapter).await.unwrap();
        assert_eq!(seen_by_adapter, encode(ok));
    }

    #[tokio::test]
    async fn attach_is_answered_with_what_to_do() {
        let Running {
            mut client,
            mut adapter,
            task,
            _shutdown,
        } = running();
        let attach =
            br#"{"seq":1,"type":"request","command":"attach","arguments":{"processId":5}}"#;
        client.write_all(&encode(attach)).await.unwrap();
        let answer = read_bodies(&mut client, 1).await.remove(0);
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["request_seq"], 1);
        assert_eq!(answer["success"], false);
        assert!(answer["message"]
            .as_str()
            .unwrap()
            .contains("`launch` configuration"));
        client.shutdown().await.unwrap();
        task.await.unwrap();
        let mut seen_by_adapter = Vec::new();
        adapter.read_to_end(&mut seen_by_adapter).await.unwrap();
        assert!(
            seen_by_adapter.is_empty(),
            "the adapter never sees the attach"
        );
    }
}
