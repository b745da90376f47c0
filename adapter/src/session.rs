//! One mirrord session: the config, the target, the intproxy (which starts
//! and owns the agent), and the environment a program needs to run inside
//! it. `mirrord exec` uses it now; the DAP proxy and the IDE service hand
//! the same environment to a debuggee.
//!
//! The session's processes end on their own: the intproxy exits once no
//! layer is connected and the watched program is gone, and takes the agent
//! with it. Nothing here needs a destructor.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use mirrord_config::MirrordConfig;

use crate::intproxy::Announce;
use crate::progress::Progress;
use crate::target::{self, LocalTarget};

/// The layer library's file name.
pub const LAYER_FILE: &str = "libmirrord_layer.so";
/// The agent binary's file name.
pub const AGENT_FILE: &str = "mirrord-agent";
/// Overrides where the layer library is found.
pub const ENV_LAYER_FILE: &str = "MIRRORD_LAYER_FILE";
/// Overrides where the agent binary is found.
pub const ENV_AGENT_FILE: &str = "MIRRORD_AGENT_FILE";

/// A started session.
pub struct Session {
    /// What the session runs in, for messages: `pid/42`, or the resolved
    /// Kubernetes target.
    pub target: String,
    /// Where layers connect (`unix:@NAME`).
    pub intproxy: String,
    /// Where the syscall path hands its seccomp listener (abstract name).
    pub supervisor: String,
    pub remote_env: Vec<(Vec<u8>, Vec<u8>)>,
    intproxy_pid: u32,
    layer: PathBuf,
    config_json: String,
    config: MirrordConfig,
}

impl Session {
    /// Resolves the target, starts the intproxy and the agent, and waits
    /// until layers can connect. `watch_pid` keeps the intproxy up while
    /// that process lives.
    pub fn start(
        config: &MirrordConfig,
        watch_pid: Option<u32>,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        Self::launch(config, watch_pid, None, progress)
    }

    /// Starts a session for a program started later by someone else (the
    /// IDE service's launches): the intproxy waits for its first layer
    /// while `owner_pid` lives, and exits after its last layer is gone.
    pub fn start_owned(
        config: &MirrordConfig,
        owner_pid: u32,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        Self::launch(config, None, Some(owner_pid), progress)
    }

    fn launch(
        config: &MirrordConfig,
        watch_pid: Option<u32>,
        owner_pid: Option<u32>,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let kube_target = config
            .target
            .path
            .as_ref()
            .filter(|t| target::is_kubernetes(t));
        let (mut target, local, resolved) = match kube_target {
            Some(kube_target) => {
                progress.step(&format!("resolving {kube_target}"));
                let started = std::time::Instant::now();
                let resolved = crate::kube::resolve_blocking(config, kube_target)?;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(target: "mirrord::timing", "phase resolve: {ms:.1} ms");
                progress.step(&format!(
                    "{}; starting the agent in the cluster",
                    resolved.summary()
                ));
                (resolved.summary(), None, Some(resolved))
            }
            None if target::targetless_in_cluster(config) => {
                progress.step("targetless: starting the agent in the cluster");
                ("targetless (in the cluster)".to_owned(), None, None)
            }
            None => {
                let local = target::resolve(config.target.path.as_ref())?;
                progress.step(&format!("starting the agent for {local}"));
                (local.to_string(), Some(local), None)
            }
        };
        let layer = sibling(ENV_LAYER_FILE, LAYER_FILE)?;
        // The dynamic loader opens the layer under the seccomp filter
        // (a static or Go program's dynamic child) before the layer runs:
        // the supervisor keeps it local.
        let mut config = config.clone();
        keep_file_local(&mut config, &layer);
        let config = &config;
        let agent = sibling(ENV_AGENT_FILE, AGENT_FILE)?;
        let mut cmd =
            Command::new(std::env::current_exe().context("cannot find the mirrord binary")?);
        cmd.arg("intproxy")
            .arg("--detach")
            .arg("--agent-path")
            .arg(&agent)
            .args(["--agent-log-level", &config.agent.log_level.to_string()])
            .args([
                "--agent-startup-timeout",
                &config.agent.startup_timeout.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match local {
            Some(LocalTarget::Pid(pid)) => {
                cmd.args(["--target-pid", &pid.to_string()]);
            }
            Some(LocalTarget::Targetless) => {}
            // The intproxy starts the agent in the cluster, for the pod
            // resolved here (none: targetless).
            None => {
                cmd.arg("--kube-config-json")
                    .arg(mirrord_config::to_json(config));
                if let Some(resolved) = &resolved {
                    let resolved = serde_json::to_string(resolved)
                        .context("cannot pass the resolved target to the intproxy")?;
                    cmd.arg("--kube-resolved-json").arg(resolved);
                }
            }
        }
        if let Some(pid) = watch_pid {
            cmd.args(["--watch-pid", &pid.to_string()]);
        }
        if let Some(pid) = owner_pid {
            cmd.args(["--owner-pid", &pid.to_string()]);
        }
        let mut child = cmd.spawn().context("cannot start the intproxy")?;
        let stdout = child.stdout.take().context("intproxy stdout")?;
        // The first process exits as soon as it has detached the real one.
        let _ = child.wait();
        let timeout = Duration::from_secs(config.agent.startup_timeout + 5);
        let ready = read_ready(stdout, timeout, progress, &mut target)?;
        let (intproxy, remote_env, intproxy_pid, supervisor) = match ready {
            Announce::Ready {
                addr,
                env,
                pid,
                supervisor,
                ..
            } => (addr, env, pid, supervisor),
            Announce::Error { message } => {
                bail!("cannot start the session for {target}: {message}")
            }
            Announce::Progress { .. } | Announce::Repicked { .. } => {
                bail!("the intproxy stopped after a progress line")
            }
        };
        Ok(Session {
            target,
            intproxy,
            supervisor,
            intproxy_pid,
            remote_env,
            layer,
            config_json: mirrord_config::to_json(config),
            config: config.clone(),
        })
    }

    /// Ends the session now (the intproxy stops the agent), for callers that
    /// outlive their programs, such as the DAP proxy. Layers still connected
    /// see their remote calls fail.
    pub fn end(&self) {
        if self.is_running() {
            // SAFETY: plain syscall.
            unsafe { libc::kill(self.intproxy_pid as i32, libc::SIGTERM) };
        }
    }

    /// The resolved config, as the syscall path's supervisor takes it
    /// (the layer's file kept local).
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// The resolved config [`Session::config_json`] holds.
    pub fn config(&self) -> &MirrordConfig {
        &self.config
    }

    /// The intproxy's PID (it owns the agent).
    pub fn intproxy_pid(&self) -> u32 {
        self.intproxy_pid
    }

    /// Whether the session's intproxy still runs: with no watched PID it
    /// exits once the last layer (the debuggee and its children) is gone.
    pub fn is_running(&self) -> bool {
        // The PID may have been reused if the intproxy has already exited.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.intproxy_pid));
        let zombie = stat.is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        });
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.intproxy_pid));
        !zombie && cmdline.is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"intproxy"))
    }

    /// The environment for a program of this session: `local` merged with
    /// the target's (by `feature.env`), plus what `vars` says the program
    /// needs of the layer. `local`'s own `LD_PRELOAD` is kept after the
    /// layer.
    pub fn environment(
        &self,
        local: Vec<(OsString, OsString)>,
        vars: Vars,
    ) -> Vec<(OsString, OsString)> {
        let preload = local
            .iter()
            .find(|(k, _)| k == "LD_PRELOAD")
            .map(|(_, v)| v.clone());
        let mut env = local;
        for (key, value) in self.vars(vars, preload.as_deref()) {
            set(&mut env, key, value);
        }
        env
    }

    /// The target's variables a program of this session gets on top of its
    /// own (by `feature.env`, overrides included).
    pub fn remote_vars(&self) -> Vec<(OsString, OsString)> {
        mirrord_config::policy::env::merge(&[], &self.remote_env, &self.config.feature.env)
    }

    /// The variables a program of this session needs on top of its own:
    /// the target's ([`Session::remote_vars`]) and, as `vars` says, the
    /// layer's. `preload` is the program's own `LD_PRELOAD`, kept after
    /// the layer.
    pub fn vars(&self, vars: Vars, preload: Option<&std::ffi::OsStr>) -> Vec<(OsString, OsString)> {
        let mut env = self.remote_vars();
        if vars == Vars::TargetOnly {
            return env;
        }
        let mut value = self.layer.clone().into_os_string();
        if let Some(existing) = preload.filter(|p| !p.is_empty()) {
            value.push(":");
            value.push(existing);
        }
        env.push(("LD_PRELOAD".into(), value));
        env.push(("MIRRORD_INTPROXY_ADDR".into(), self.intproxy.clone().into()));
        env.push((
            "MIRRORD_LAYER_CONFIG".into(),
            self.config_json.clone().into(),
        ));
        if vars == Vars::LayerForChildren {
            env.push((
                mirrord_config::policy::executable::ENV_SYSCALL_PATH.into(),
                "1".into(),
            ));
        }
        env
    }
}

#[cfg(test)]
impl Session {
    /// A session that was never started, for tests of what programs get.
    pub fn for_tests(config: MirrordConfig, remote_env: Vec<(Vec<u8>, Vec<u8>)>) -> Session {
        Session {
            target: "pid/1".into(),
            intproxy: "unix:@mirrord-test".into(),
            supervisor: "mirrord-test-supervisor".into(),
            remote_env,
            intproxy_pid: 0,
            layer: PathBuf::from("/opt/mirrord/libmirrord_layer.so"),
            config_json: mirrord_config::to_json(&config),
            config,
        }
    }
}

/// What a program of a session gets besides the target's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vars {
    /// The layer's variables: a dynamic program, which loads the layer.
    Layer,
    /// A static or Go program on the syscall path: the layer's variables
    /// and the marker (`MIRRORD_SYSCALL_PATH=1`) that keeps the layer
    /// inert in a Go program. The program never runs the layer; a dynamic
    /// program it execs does, and is then served by it.
    LayerForChildren,
    /// The target's variables only: a dynamic program forced onto the
    /// syscall path, which would load the layer and leave the path.
    TargetOnly,
}

/// Keeps `dir` (the program's working directory, a workspace folder) and
/// everything below it local, and its ancestors too (so `realpath` of it
/// works): the program's own sources and relative paths live there, not in
/// the target. The root directory is never added.
pub fn keep_local(config: &mut MirrordConfig, dir: &Path) {
    let Some(dir) = dir
        .to_str()
        .map(|d| d.trim_end_matches('/'))
        .filter(|d| !d.is_empty())
    else {
        return;
    };
    let mut patterns = vec![format!("^{}(/|$)", regex::escape(dir))];
    let mut ancestor = Path::new(dir).parent();
    while let Some(a) = ancestor.and_then(Path::to_str).filter(|a| *a != "/") {
        patterns.push(format!("^{}/?$", regex::escape(a)));
        ancestor = Path::new(a).parent();
    }
    for pattern in patterns {
        if let Ok(pattern) = mirrord_config::PathPattern::new(&pattern) {
            config.feature.fs.local.push(pattern);
        }
    }
}

/// Keeps the file at `path` local (the layer library, which the dynamic
/// loader opens under the seccomp filter before the layer runs).
pub fn keep_file_local(config: &mut MirrordConfig, path: &Path) {
    let Some(path) = path.to_str() else {
        return;
    };
    if let Ok(pattern) = mirrord_config::PathPattern::new(&format!("^{}$", regex::escape(path))) {
        config.feature.fs.local.push(pattern);
    }
}

/// Replaces `key` in place, or appends it.
fn set(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

/// Reads the intproxy's lines until `Ready` or `Error`, within `timeout`,
/// showing its progress steps. A target pod picked again replaces `target`
/// and is said on stderr (it is not the pod the user was told of).
fn read_ready(
    stdout: std::process::ChildStdout,
    timeout: Duration,
    progress: &Progress,
    target: &mut String,
) -> anyhow::Result<Announce> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Until the intproxy closes its stdout (after `Ready`) or exits.
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            let result = reader.read_line(&mut line).map(|_| line);
            let end = !matches!(&result, Ok(l) if !l.is_empty());
            if tx.send(result).is_err() || end {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            Ok(Ok(_)) => bail!("the intproxy exited before it was ready (see the messages above)"),
            Ok(Err(e)) => bail!("cannot read from the intproxy: {e}"),
            Err(_) => bail!("the intproxy was not ready within {} s", timeout.as_secs()),
        };
        let ready: Announce = serde_json::from_str(&line)
            .with_context(|| format!("unexpected line from the intproxy: {line:?}"))?;
        match ready {
            Announce::Progress { step } => progress.step(&step),
            Announce::Repicked { change, summary } => {
                let message = format!("{change}; picked again: {summary}");
                eprintln!("mirrord: {message}");
                progress.step(&message);
                *target = summary;
            }
            other => return Ok(other),
        }
    }
}

/// Finds one of mirrord's files: the override variable, else next to this
/// binary.
fn sibling(env_var: &str, file: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if !path.exists() {
            bail!("{env_var}={} does not exist", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find the mirrord binary")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let path = dir.join(file);
    if !path.exists() {
        bail!(
            "cannot find {file} next to {}: build the whole workspace (`cargo build --workspace`) or set {env_var}",
            exe.display()
        );
    }
    Ok(path)
}

/// The current process's environment as pairs.
pub fn current_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_intproxys_progress_steps_are_shown_until_it_is_ready() {
        let script = r#"echo '{"Progress":{"step":"creating the agent"}}'
echo '{"Repicked":{"change":"the pod is gone","summary":"deployment/web → pod web-2"}}'
echo '{"Progress":{"step":"waiting for the agent pod"}}'
echo '{"Error":{"message":"boom"}}'"#;
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let stdout = child.stdout.take().expect("stdout");
        let steps = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = steps.clone();
        let progress = Progress::to_sink(Box::new(move |s: &str| {
            seen.lock().unwrap().push(s.to_owned());
        }));
        let mut target = "deployment/web → pod web-1".to_owned();
        let ready = read_ready(stdout, Duration::from_secs(10), &progress, &mut target)
            .expect("a last line");
        let _ = child.wait();
        assert!(matches!(ready, Announce::Error { message } if message == "boom"));
        assert_eq!(
            *steps.lock().unwrap(),
            [
                "creating the agent",
                "the pod is gone; picked again: deployment/web → pod web-2",
                "waiting for the agent pod"
            ]
        );
        assert_eq!(target, "deployment/web → pod web-2");
    }
}
