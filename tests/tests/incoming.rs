//! Incoming traffic, end to end: the stand-in pod's own HTTP server on
//! 8080, a local Python server under `mirrord exec --steal`, and clients on
//! the pod's loopback (`nsenter` into its network namespace) or outside it
//! (a namespace joined to the pod by a veth pair). Steal,
//! port mapping, many concurrent connections, and every way a session can
//! end (`kill -9` of the agent, of the program, a normal exit) leaving the
//! pod serving its own traffic with no mirrord rule left.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirrord_tests::pod::{spec::HTTP_PORT, Pod, PodSpec};
use mirrord_tests::run::{
    agent_pids, gcc, leftovers, programs_dir, spawn_until_line, wait_with_timeout, Scratch,
};

/// What the pod's own server answers.
const POD_ANSWER: &str = "hello from standin-pod";

/// A local server under `mirrord exec`, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    _stderr: Scratch,
}

impl Server {
    /// Starts `http_echo_server.py` on local port `port`, which steals the
    /// pod's HTTP port (tests running at once need ports of their own),
    /// under `mirrord exec --steal`, and waits until it listens.
    fn start_mapped(pod: &Pod, port: u16) -> (Server, Scratch) {
        let (server, scratch) = Server::try_start_mapped(pod, port, "abort");
        (server.unwrap_or_else(|e| panic!("{e}")), scratch)
    }

    /// [`Server::start_mapped`] with `on_concurrent_steal`, or why the
    /// server did not start.
    fn try_start_mapped(
        pod: &Pod,
        port: u16,
        on_concurrent_steal: &str,
    ) -> (Result<Server, String>, Scratch) {
        let (scratch, config) = mapping_config(port, on_concurrent_steal);
        (Server::try_start(pod, Some(&config), port), scratch)
    }

    /// [`Server::start_mapped`] with the local server listening on `host`
    /// (`::` or `::1`: an IPv6 socket).
    fn start_mapped_on(pod: &Pod, port: u16, host: &str) -> (Server, Scratch) {
        let (scratch, config) = mapping_config(port, "abort");
        let program = python("http_echo_server.py", &[port.to_string(), host.to_owned()]);
        let server = Server::try_start_program(pod, true, Some(&config), &program)
            .unwrap_or_else(|e| panic!("{e}"));
        (server, scratch)
    }

    /// Starts `http_echo_server.py PORT` under `mirrord exec --steal`
    /// (plus `config`) and waits until it listens.
    fn start(pod: &Pod, config: Option<&Path>, port: u16) -> Server {
        Server::try_start(pod, config, port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Server::start`], or why the server did not start.
    fn try_start(pod: &Pod, config: Option<&Path>, port: u16) -> Result<Server, String> {
        let program = python("http_echo_server.py", &[port.to_string()]);
        Server::try_start_program(pod, true, config, &program)
    }

    /// `program` (a command that prints `listening` once it listens) under
    /// `mirrord exec` (`--steal` when `steal`, else the default mode:
    /// mirror) and waits until it listens.
    fn try_start_program(
        pod: &Pod,
        steal: bool,
        config: Option<&Path>,
        program: &[String],
    ) -> Result<Server, String> {
        Server::try_start_program_with_path(pod, steal, config, program, None)
    }

    /// [`Server::try_start_program`] with `PATH` set to `path` for
    /// `mirrord exec` and the processes it starts (the intproxy, the agent).
    fn try_start_program_with_path(
        pod: &Pod,
        steal: bool,
        config: Option<&Path>,
        program: &[String],
        path: Option<&Path>,
    ) -> Result<Server, String> {
        let env: Vec<(&str, &Path)> = path.map(|p| ("PATH", p)).into_iter().collect();
        Server::try_start_program_with_env(pod, steal, config, program, &env)
    }

    /// [`Server::try_start_program`] with `env` set for `mirrord exec` and
    /// the processes it starts.
    fn try_start_program_with_env(
        pod: &Pod,
        steal: bool,
        config: Option<&Path>,
        program: &[String],
        env: &[(&str, &Path)],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(mirrord_tests::bin_path("mirrord"));
        cmd.envs(env.iter().copied());
        cmd.arg("exec");
        if steal {
            cmd.arg("--steal");
        }
        cmd.args(["--target", &pod.target()]);
        if let Some(config) = config {
            cmd.arg("-f").arg(config);
        }
        let scratch = Scratch::new("incoming-server");
        let stderr_path = scratch.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        cmd.arg("--")
            .args(program)
            .stdin(Stdio::null())
            .stderr(stderr);
        let child =
            spawn_until_line(&mut cmd, "listening", Duration::from_secs(60)).map_err(|e| {
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                format!("the local server did not start: {e}\n{stderr}")
            })?;
        Ok(Server {
            child,
            _stderr: scratch,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `mirrord exec` and its intproxy wrote to stderr so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self._stderr.path().join("stderr")).unwrap_or_default()
    }

    fn signal(&mut self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        wait_with_timeout(&mut self.child, Duration::from_secs(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
        }
    }
}

/// A config mapping local port `port` to the pod's HTTP port; the scratch
/// directory holding it and its path.
fn mapping_config(port: u16, on_concurrent_steal: &str) -> (Scratch, std::path::PathBuf) {
    let scratch = Scratch::new("incoming-mapping");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"port_mapping": [[{port}, {HTTP_PORT}]],
                "on_concurrent_steal": "{on_concurrent_steal}"}}}}}}}}"#
        ),
    );
    (scratch, config)
}

/// `python3 SCRIPT ARGS` for a test program of the programs directory.
fn python(script: &str, args: &[String]) -> Vec<String> {
    let mut command = vec![
        "python3".to_owned(),
        programs_dir().join(script).display().to_string(),
    ];
    command.extend(args.iter().cloned());
    command
}

/// `GET path` from the pod's loopback to its HTTP port; the body, or the
/// failure.
fn pod_get(pod: &Pod, port: u16, path: &str) -> String {
    pod_get_from(pod, "127.0.0.1", port, path)
}

/// [`pod_get`] to `host` (`::1`: the pod's IPv6 loopback).
fn pod_get_from(pod: &Pod, host: &str, port: u16, path: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let out = pod
        .net_command("curl")
        .args(["-g", "-s", "-S", "-m", "2"])
        .arg(format!("http://{host}:{port}{path}"))
        .output()
        .expect("curl runs");
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        format!(
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

/// Runs the load client in the pod: `key=value` lines.
fn pod_load(pod: &Pod, port: u16, conns: u32, requests: u32) -> Vec<(String, String)> {
    pod_load_from(pod, "127.0.0.1", port, conns, requests)
}

/// [`pod_load`] to `host` (`::1`: the pod's IPv6 loopback).
fn pod_load_from(
    pod: &Pod,
    host: &str,
    port: u16,
    conns: u32,
    requests: u32,
) -> Vec<(String, String)> {
    let script = programs_dir().join("http_load.py");
    let mut args = vec![script.to_string_lossy().into_owned()];
    args.extend([u32::from(port), conns, requests].map(|n| n.to_string()));
    args.push(host.to_owned());
    pod_python(pod, &args)
}

/// Runs `python3 ARGS` in the pod; its `key=value` lines.
fn pod_python(pod: &Pod, args: &[String]) -> Vec<(String, String)> {
    let out = pod
        .net_command("python3")
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// Ends the program with SIGTERM (a normal exit): within 2 s the pod
/// serves itself with no rule left, and no process of the session is left.
fn stop_normally(server: Server, pod: &Pod) {
    let pid = server.pid();
    drop(server);
    pod_serves_itself_within(pod, Duration::from_secs(2));
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}

/// Polls until the pod's own server answers and no mirrord rule is left;
/// returns how long that took, or panics after `limit` with what it saw.
fn pod_serves_itself_within(pod: &Pod, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = pod_get(pod, HTTP_PORT, "/");
        let rules = pod.mirrord_nat_rules();
        if answer == POD_ANSWER && rules.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?} the pod answers {answer:?} and has rules {rules:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn steal_answers_the_pods_clients_from_the_local_server_and_gives_the_port_back() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    assert_eq!(pod_get(&pod, HTTP_PORT, "/"), POD_ANSWER);
    let server = Server::start(&pod, None, HTTP_PORT);
    let rules = pod.mirrord_nat_rules();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("--dport 8080") && r.contains("REDIRECT")),
        "{rules:?}"
    );
    // The program sees the real client: the load client's own port.
    let result = pod_load(&pod, HTTP_PORT, 1, 3);
    assert_eq!(value(&result, "ok"), "3", "{result:?}");
    let port = value(&result, "client_port");
    assert_eq!(
        value(&result, "first"),
        format!("local /c0/r0 peer=127.0.0.1:{port} via={HTTP_PORT}"),
        "{result:?}"
    );
    stop_normally(server, &pod);
}

#[test]
fn port_mapping_sends_the_pods_port_to_another_local_port() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _config) = Server::start_mapped(&pod, 9999);
    let answer = pod_get(&pod, HTTP_PORT, "/mapped");
    assert!(
        answer.starts_with("local /mapped peer=127.0.0.1:"),
        "{answer}"
    );
    stop_normally(server, &pod);
}

#[test]
fn many_concurrent_connections_are_all_answered_correctly() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _config) = Server::start_mapped(&pod, 18_081);
    let started = Instant::now();
    let result = pod_load(&pod, HTTP_PORT, 200, 50);
    println!("200 x 50 requests through steal in {:?}", started.elapsed());
    assert_eq!(value(&result, "ok"), "10000", "{result:?}");
    assert_eq!(value(&result, "bad"), "0", "{result:?}");
    stop_normally(server, &pod);
}

#[test]
fn kill_9_of_the_agent_mid_steal_gives_the_port_back_within_2_s() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _config) = Server::start_mapped(&pod, 18_082);
    assert!(pod_get(&pod, HTTP_PORT, "/").starts_with("local /"));
    kill_9_of_the_agent_leaves_nothing(&pod, server, "");
}

/// `kill -9` of the session's agent: within 2 s the pod serves itself
/// with no rule left (IPv4 and IPv6 tables); then the program ends
/// (SIGTERM) and no process of the session is left. `case` tags the
/// printed time.
fn kill_9_of_the_agent_leaves_nothing(pod: &Pod, mut server: Server, case: &str) {
    // SAFETY: killing the agent of our own session.
    unsafe { libc::kill(the_agent(pod), libc::SIGKILL) };
    let took = pod_serves_itself_within(pod, Duration::from_secs(2));
    println!("the pod served itself again {took:?} after kill -9 of the agent{case}");
    let pid = server.pid();
    server.signal(libc::SIGTERM);
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}

/// The PID of the session's agent itself, not its watchdog nor the
/// intproxy (both name the target).
fn the_agent(pod: &Pod) -> i32 {
    let agents: Vec<i32> = agent_pids(pod.pid)
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let program = cmdline.split('\0').next().unwrap_or_default();
            program.ends_with("mirrord-agent") && !cmdline.contains("--watchdog-chain")
        })
        .collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
    agents[0]
}

#[test]
fn kill_9_of_the_local_program_mid_steal_gives_the_port_back_within_2_s() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (mut server, _config) = Server::start_mapped(&pod, 18_083);
    assert!(pod_get(&pod, HTTP_PORT, "/").starts_with("local /"));
    // A connection open to the program while it dies.
    let mut open = pod
        .net_command("python3")
        .args([
            "-c",
            "import socket,time; s=socket.create_connection(('127.0.0.1',8080)); time.sleep(30)",
        ])
        .spawn()
        .expect("python3 runs");
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.pid();
    server.signal(libc::SIGKILL);
    let took = pod_serves_itself_within(&pod, Duration::from_secs(2));
    println!("the pod served itself again {took:?} after kill -9 of the program");
    let _ = open.kill();
    let _ = open.wait();
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}

#[test]
fn a_chain_left_by_a_dead_agent_is_removed_by_the_next_one() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    // What a crashed agent whose watchdog died too would leave: a chain
    // named after a PID that is no agent, stealing the HTTP port into a
    // port nobody listens on.
    let stale = "MIRRORD_INCOMING_999999999";
    let rules: [&[&str]; 3] = [
        &["-N", stale],
        &[
            "-A",
            stale,
            "-p",
            "tcp",
            "--dport",
            "8080",
            "-j",
            "REDIRECT",
            "--to-ports",
            "1",
        ],
        &["-I", "OUTPUT", "1", "-o", "lo", "-j", stale],
    ];
    for binary in ["iptables", "ip6tables"] {
        for args in rules {
            let status = pod
                .net_command(binary)
                .args(["-w", "-t", "nat"])
                .args(args)
                .status()
                .expect("iptables runs");
            assert!(status.success(), "{binary} {args:?}");
        }
    }
    assert!(pod_get(&pod, HTTP_PORT, "/").starts_with("curl failed"));
    assert!(pod_get_from(&pod, "::1", HTTP_PORT, "/").starts_with("curl failed"));
    let (server, _config) = Server::start_mapped(&pod, 18_084);
    let rules = pod.mirrord_nat_rules();
    assert!(!rules.iter().any(|r| r.contains(stale)), "{rules:?}");
    assert!(pod_get(&pod, HTTP_PORT, "/x").starts_with("local /x "));
    // An IPv6 client of the IPv4-only local server: no IPv4 address names
    // it, so the program sees the kernel's peer.
    let answer = pod_get_from(&pod, "::1", HTTP_PORT, "/y");
    assert!(answer.starts_with("local /y peer=127.0.0.1:"), "{answer}");
    stop_normally(server, &pod);
}

/// `requests` requests on one connection from the pod's loopback `host`
/// to its HTTP port are all answered by the local server listening on
/// `via`, which saw the client as `peer_ip` and the client's own port.
fn answered_locally_seeing_the_client(
    pod: &Pod,
    host: &str,
    requests: u32,
    peer_ip: &str,
    via: u16,
) {
    answered_locally(pod, host, requests, |port| {
        format!("local /c0/r0 peer={peer_ip}:{port} via={via}")
    });
}

/// `requests` requests on one connection from the pod's loopback `host`
/// to its HTTP port are all answered by the local server, the first with
/// `expected(the client's own port)`.
fn answered_locally(pod: &Pod, host: &str, requests: u32, expected: impl Fn(&str) -> String) {
    let result = pod_load_from(pod, host, HTTP_PORT, 1, requests);
    assert_eq!(value(&result, "ok"), requests.to_string(), "{result:?}");
    let port = value(&result, "client_port");
    assert_eq!(value(&result, "first"), expected(port), "{result:?}");
}

#[test]
fn a_dual_stack_local_server_steals_the_pods_ipv6_and_ipv4_clients() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    assert_eq!(pod_get_from(&pod, "::1", HTTP_PORT, "/"), POD_ANSWER);
    let (server, _config) = Server::start_mapped_on(&pod, 18_092, "::");
    let rules = pod.mirrord_nat_rules();
    for save in ["iptables-save", "ip6tables-save"] {
        assert!(
            rules.iter().any(|r| r.starts_with(&format!("{save}: "))
                && r.contains("--dport 8080")
                && r.contains("REDIRECT")),
            "{save}: {rules:?}"
        );
    }
    // An IPv6 client: accept and getpeername report its own address.
    answered_locally_seeing_the_client(&pod, "::1", 3, "::1", 18_092);
    // An IPv4 client of the same dual-stack listener: v4-mapped.
    answered_locally_seeing_the_client(&pod, "127.0.0.1", 1, "::ffff:127.0.0.1", 18_092);
    stop_normally(server, &pod);
    assert_eq!(pod_get_from(&pod, "::1", HTTP_PORT, "/"), POD_ANSWER);
}

#[test]
fn a_local_server_on_ipv6_loopback_gets_the_pods_ipv6_clients_and_kill_9_of_the_agent_leaves_no_rule(
) {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _config) = Server::start_mapped_on(&pod, 18_093, "::1");
    answered_locally_seeing_the_client(&pod, "::1", 5, "::1", 18_093);
    kill_9_of_the_agent_leaves_nothing(&pod, server, " (IPv6)");
    assert_eq!(pod_get_from(&pod, "::1", HTTP_PORT, "/"), POD_ANSWER);
}

/// A directory for `PATH` holding only `iptables`: the agent finds no
/// `ip6tables`, or, with `failing_ip6tables`, one that fails as it does on
/// a kernel without IPv6 NAT.
fn iptables_only(failing_ip6tables: bool) -> Scratch {
    let tools = Scratch::new("incoming-no-ip6tables");
    let iptables = which("iptables");
    std::os::unix::fs::symlink(iptables, tools.path().join("iptables")).expect("symlink iptables");
    if failing_ip6tables {
        let script = tools.write(
            "ip6tables",
            "#!/bin/sh\necho \"ip6tables v1.8.9 (nf_tables): can't initialize ip6tables table \
             \\`nat': Table does not exist (do you need to insmod?)\" >&2\nexit 3\n",
        );
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    tools
}

/// The absolute path of `program` on this test's `PATH`.
fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// The real python3 executable (not a shim script that needs `bash` on
/// `PATH`).
fn python_executable() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The local echo server on `port` (mapped to the pod's HTTP port) under
/// `mirrord exec --steal` with `PATH` = `tools` (python3 named by its
/// real executable).
fn start_with_tools(pod: &Pod, port: u16, tools: &Scratch) -> (Server, Scratch) {
    let (scratch, config) = mapping_config(port, "abort");
    let mut program = python("http_echo_server.py", &[port.to_string()]);
    program[0] = python_executable();
    let server =
        Server::try_start_program_with_path(pod, true, Some(&config), &program, Some(tools.path()))
            .unwrap_or_else(|e| panic!("{e}"));
    (server, scratch)
}

/// Steal reaches only the pod's IPv4 clients (the IPv6 ones get the pod's
/// own server), the user was told why on `mirrord exec`'s stderr, and only
/// the IPv4 table has the chain.
fn stolen_over_ipv4_only(pod: &Pod, server: &Server, via: u16, cause: &str) {
    let stderr = server.stderr();
    assert!(
        stderr.contains("port 8080: only the target's IPv4 clients are stolen")
            && stderr.contains(cause),
        "{stderr}"
    );
    let rules = pod.mirrord_nat_rules();
    assert!(
        rules.iter().any(|r| r.starts_with("iptables-save: ")
            && r.contains("--dport 8080")
            && r.contains("REDIRECT")),
        "{rules:?}"
    );
    assert!(
        !rules.iter().any(|r| r.starts_with("ip6tables-save: ")),
        "{rules:?}"
    );
    answered_locally_seeing_the_client(pod, "127.0.0.1", 3, "127.0.0.1", via);
    assert_eq!(pod_get_from(pod, "::1", HTTP_PORT, "/"), POD_ANSWER);
    // Told once, though the server's `listen` ran twice (asyncio listens
    // again on the socket it is given) by the time it answered.
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("IPv4 clients are stolen").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn without_ip6tables_steal_takes_the_ipv4_clients_warns_and_kill_9_of_the_agent_leaves_no_rule() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let tools = iptables_only(false);
    let (server, _config) = start_with_tools(&pod, 18_097, &tools);
    stolen_over_ipv4_only(&pod, &server, 18_097, "cannot run ip6tables");
    kill_9_of_the_agent_leaves_nothing(&pod, server, " (no ip6tables)");
}

#[test]
fn without_ipv6_nat_steal_takes_the_ipv4_clients_warns_and_a_normal_exit_leaves_no_rule() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let tools = iptables_only(true);
    let (server, _config) = start_with_tools(&pod, 18_098, &tools);
    stolen_over_ipv4_only(&pod, &server, 18_098, "lack IPv6 NAT");
    stop_normally(server, &pod);
}

#[test]
fn a_pod_without_ipv6_that_binds_ipv6_sockets_v6_only_is_stolen_over_ipv4() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    // The pod's own server is already listening; what the agent makes
    // from now on sees these settings.
    // (Written through /proc/sys in the pod's network namespace: no
    // `sysctl` binary needed.)
    let settings = "echo 1 > /proc/sys/net/ipv6/bindv6only && \
        for dev in all default lo; do echo 1 > /proc/sys/net/ipv6/conf/$dev/disable_ipv6; done";
    let status = pod
        .net_command("sh")
        .args(["-c", settings])
        .status()
        .expect("sh runs");
    assert!(status.success());
    let (server, _config) = Server::start_mapped(&pod, 18_099);
    answered_locally_seeing_the_client(&pod, "127.0.0.1", 3, "127.0.0.1", 18_099);
    stop_normally(server, &pod);
}

/// A `mirrord-agent` for `MIRRORD_AGENT_FILE` that runs as on a kernel
/// without IPv6: `without_ipv6.c` makes its every `socket(AF_INET6, ...)`
/// fail with `EAFNOSUPPORT`.
fn agent_without_ipv6(tools: &Scratch) -> std::path::PathBuf {
    let wrapper = tools.path().join("without_ipv6");
    gcc(&programs_dir().join("without_ipv6.c"), &wrapper, &["-O2"]);
    let agent = mirrord_tests::bin_path("mirrord-agent");
    let script = tools.write(
        "mirrord-agent",
        &format!(
            "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
            wrapper.display(),
            agent.display()
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    script
}

/// The TCP ports listening in the pod, from its `/proc/net/tcp` (`tcp6`:
/// IPv6 sockets, dual-stack ones included).
fn listening_ports(pod: &Pod, table: &str) -> Vec<u16> {
    let text =
        std::fs::read_to_string(format!("/proc/{}/net/{table}", pod.pid)).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // State 0A is LISTEN; the local address is `ADDR:PORT` in hex.
            (fields.get(3) == Some(&"0A")).then_some(())?;
            let port = fields.get(1)?.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[test]
fn a_pod_without_ipv6_is_stolen_through_the_agents_ipv4_listener_and_leaves_no_rule() {
    let spec = PodSpec {
        without_ipv6: true,
        ..PodSpec::default()
    };
    let pod = Pod::start(&spec).expect("pod");
    // The pod has no IPv6 loopback: its own server serves IPv4 only.
    assert_eq!(pod_get(&pod, HTTP_PORT, "/"), POD_ANSWER);
    assert!(pod_get_from(&pod, "::1", HTTP_PORT, "/").starts_with("curl failed"));
    let tools = Scratch::new("incoming-no-ipv6");
    let agent = agent_without_ipv6(&tools);
    let (_scratch, config) = mapping_config(18_096, "abort");
    let program = python("http_echo_server.py", &["18096".to_owned()]);
    let server = Server::try_start_program_with_env(
        &pod,
        true,
        Some(&config),
        &program,
        &[("MIRRORD_AGENT_FILE", &agent)],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The agent's fallback ran: the user is told why only IPv4 clients
    // are stolen, the chain is IPv4 only, and the port it redirects to is
    // an IPv4 listener (in `tcp`, not `tcp6`).
    let stderr = server.stderr();
    assert!(
        stderr.contains("port 8080: only the target's IPv4 clients are stolen")
            && stderr.contains("the target has no IPv6"),
        "{stderr}"
    );
    let rules = pod.mirrord_nat_rules();
    assert!(
        !rules.iter().any(|r| r.starts_with("ip6tables-save: ")),
        "{rules:?}"
    );
    let redirect_to: u16 = rules
        .iter()
        .find(|r| r.starts_with("iptables-save: ") && r.contains("--dport 8080"))
        .and_then(|r| r.split("--to-ports ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no redirect of 8080 in {rules:?}"));
    assert!(
        listening_ports(&pod, "tcp").contains(&redirect_to),
        "the agent's listener {redirect_to} is not an IPv4 socket"
    );
    assert!(!listening_ports(&pod, "tcp6").contains(&redirect_to));
    answered_locally_seeing_the_client(&pod, "127.0.0.1", 3, "127.0.0.1", 18_096);
    stop_normally(server, &pod);
}

#[test]
fn an_http_filter_steals_only_matching_requests_of_one_keep_alive_connection() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("incoming-filter");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"port_mapping": [[18085, {HTTP_PORT}]],
                "http_filter": {{"header_filter": "^(?i)x-mirrord: yes$", "ports": [{HTTP_PORT}]}}}}}}}}}}"#
        ),
    );
    let server = Server::start(&pod, Some(&config), 18_085);
    let client = r#"
import http.client
c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=5)
def get(path, **headers):
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    return r.read().decode().strip()
print("first=" + get("/a", **{"X-Mirrord": "yes"}))
sock = c.sock
print("second=" + get("/b", **{"X-Mirrord": "YES"}))
print("same_connection=%s" % (c.sock is sock))
print("third=" + get("/c", **{"X-Mirrord": "no"}))
print("still_same=%s" % (c.sock is sock))
print("fourth=" + get("/d"))
print("fifth=" + get("/e", **{"X-Mirrord": "yes"}))
c = http.client.HTTPConnection("::1", 8080, timeout=5)
print("v6_other=" + get("/f"))
print("v6_match=" + get("/g", **{"X-Mirrord": "yes"}))
"#;
    let result = pod_python(&pod, &["-c".into(), client.into()]);
    let get = |key: &str| value(&result, key).to_owned();
    let stdout = format!("{result:?}");
    assert!(
        get("first").starts_with("local /a peer=127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        get("second").starts_with("local /b peer=127.0.0.1:"),
        "{stdout}"
    );
    assert_eq!(get("third"), POD_ANSWER, "{stdout}");
    assert_eq!(get("same_connection"), "True", "{stdout}");
    // The pod's server answers `Connection: close`, which reaches the client.
    assert_eq!(get("still_same"), "False", "{stdout}");
    assert_eq!(get("fourth"), POD_ANSWER, "{stdout}");
    assert!(get("fifth").starts_with("local /e "), "{stdout}");
    // Over IPv6 too: the pass-through reaches the pod's server at [::1].
    assert_eq!(get("v6_other"), POD_ANSWER, "{stdout}");
    assert!(get("v6_match").starts_with("local /g "), "{stdout}");
    stop_normally(server, &pod);
}

#[test]
fn a_second_session_stealing_the_same_port_aborts_or_takes_over() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (first, _first_config) = Server::start_mapped(&pod, 18_086);
    assert!(pod_get(&pod, HTTP_PORT, "/").ends_with("via=18086"));
    let (refused, _config) = Server::try_start_mapped(&pod, 18_087, "abort");
    let error = refused.err().expect("abort: the second listen fails");
    assert!(error.contains("Address already in use"), "{error}");
    assert!(pod_get(&pod, HTTP_PORT, "/").ends_with("via=18086"));
    let (second, _config) = Server::try_start_mapped(&pod, 18_088, "continue");
    let second = second.unwrap_or_else(|e| panic!("{e}"));
    assert!(pod_get(&pod, HTTP_PORT, "/").ends_with("via=18088"));
    drop(second);
    // The first session steals the port again, then gives it back.
    assert!(pod_get(&pod, HTTP_PORT, "/").ends_with("via=18086"));
    stop_normally(first, &pod);
}

/// A client namespace joined to the pod by a veth pair (link-local
/// addresses between two namespaces the test made): the pod's traffic
/// from outside, which takes the `PREROUTING` path. Removed when dropped.
struct OutsideClient {
    netns: String,
}

const POD_VETH_IP: &str = "169.254.77.1";
const CLIENT_VETH_IP: &str = "169.254.77.2";
/// Unique local IPv6 addresses on the same veth pair.
const POD_VETH_IP6: &str = "fd6d:6972::1";
const POD_VETH_IP6_CIDR: &str = "fd6d:6972::1/64";
const CLIENT_VETH_IP6: &str = "fd6d:6972::2";
const CLIENT_VETH_IP6_CIDR: &str = "fd6d:6972::2/64";

impl OutsideClient {
    fn attach(pod: &Pod) -> OutsideClient {
        // Unique per attach: tests of this file run at once in one process.
        static ATTACHED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = ATTACHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let client = OutsideClient {
            netns: format!("mirrord-incoming-{id}"),
        };
        let (pod_end, client_end) = (format!("mi{id}p"), format!("mi{id}c"));
        let pid = pod.pid.to_string();
        let host: &[&str] = &[];
        let in_pod = ["nsenter", "-t", &pid, "-n"];
        let in_client = ["ip", "netns", "exec", &client.netns];
        let steps: [(&[&str], Vec<&str>); 10] = [
            (host, vec!["netns", "add", &client.netns]),
            (
                host,
                vec![
                    "link",
                    "add",
                    &pod_end,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &client_end,
                ],
            ),
            (
                host,
                vec!["link", "set", &client_end, "netns", &client.netns],
            ),
            (host, vec!["link", "set", &pod_end, "netns", &pid]),
            (
                &in_pod,
                vec!["addr", "add", "169.254.77.1/30", "dev", &pod_end],
            ),
            (
                &in_pod,
                vec!["addr", "add", POD_VETH_IP6_CIDR, "dev", &pod_end, "nodad"],
            ),
            (&in_pod, vec!["link", "set", &pod_end, "up"]),
            (
                &in_client,
                vec!["addr", "add", "169.254.77.2/30", "dev", &client_end],
            ),
            (
                &in_client,
                vec![
                    "addr",
                    "add",
                    CLIENT_VETH_IP6_CIDR,
                    "dev",
                    &client_end,
                    "nodad",
                ],
            ),
            (&in_client, vec!["link", "set", &client_end, "up"]),
        ];
        for (prefix, args) in steps {
            let mut command: Vec<&str> = prefix.to_vec();
            command.push("ip");
            command.extend(args);
            let status = Command::new(command[0])
                .args(&command[1..])
                .status()
                .expect("ip runs");
            assert!(status.success(), "{command:?}");
        }
        client
    }

    fn get(&self, path: &str) -> String {
        self.get_from(POD_VETH_IP, path)
    }

    /// `GET path` to the pod's HTTP port at `host` (an IPv6 address is
    /// bracketed).
    fn get_from(&self, host: &str, path: &str) -> String {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "curl",
                "-g",
                "-s",
                "-S",
                "-m",
                "2",
            ])
            .arg(format!("http://{host}:{HTTP_PORT}{path}"))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OutsideClient {
    fn drop(&mut self) {
        // The pod's end of the veth pair goes with either namespace.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn a_client_outside_the_pod_is_stolen_and_seen_by_its_own_address() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let outside = OutsideClient::attach(&pod);
    assert_eq!(outside.get("/"), POD_ANSWER);
    let (server, _config) = Server::start_mapped(&pod, 18_089);
    let answer = outside.get("/outside");
    assert!(
        answer.starts_with(&format!("local /outside peer={CLIENT_VETH_IP}:")),
        "{answer}"
    );
    stop_normally(server, &pod);
    assert_eq!(outside.get("/"), POD_ANSWER);
}

#[test]
fn an_ipv6_client_outside_the_pod_is_stolen_and_seen_by_its_own_address() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let outside = OutsideClient::attach(&pod);
    assert_eq!(outside.get_from(POD_VETH_IP6, "/"), POD_ANSWER);
    let (server, _config) = Server::start_mapped_on(&pod, 18_095, "::");
    let answer = outside.get_from(POD_VETH_IP6, "/outside6");
    assert!(
        answer.starts_with(&format!("local /outside6 peer={CLIENT_VETH_IP6}:")),
        "{answer}"
    );
    stop_normally(server, &pod);
    assert_eq!(outside.get_from(POD_VETH_IP6, "/"), POD_ANSWER);
}

/// `http_server.go`, built static, under `mirrord exec --steal` on local
/// `port`, mapped to the pod's HTTP port; started and listening.
fn start_go_server(pod: &Pod, port: u16) -> (Server, Scratch) {
    let scratch = Scratch::new("incoming-go");
    let exe = mirrord_tests::run::go_build(&scratch, "http_server.go", false);
    let config = scratch.write(
        "mirrord.json",
        &format!(r#"{{"feature": {{"network": {{"incoming": {{"port_mapping": [[{port}, {HTTP_PORT}]]}}}}}}}}"#),
    );
    let program = [exe, port.to_string()];
    let server = Server::try_start_program(pod, true, Some(&config), &program)
        .unwrap_or_else(|e| panic!("{e}"));
    (server, scratch)
}

/// A static Go HTTP server (the syscall path: its `listen` and `accept`
/// stop in the supervisor) answers the pod's clients under steal, with its
/// port mapped, and sees each client's own address; the pod serves itself
/// again once it exits.
#[test]
fn a_static_go_server_on_the_syscall_path_is_stolen() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _scratch) = start_go_server(&pod, 9781);
    // The program sees the real client (accept's address): the load
    // client's own port, not the intproxy's.
    answered_locally(&pod, "127.0.0.1", 2, |port| {
        format!("local /c0/r0 peer=127.0.0.1:{port} go")
    });
    // Go's `:port` listener is dual-stack: an IPv6 client is seen as itself.
    answered_locally(&pod, "::1", 2, |port| {
        format!("local /c0/r0 peer=[::1]:{port} go")
    });
    stop_normally(server, &pod);
}

/// A static Go server on the syscall path that closes its listener gives
/// the stolen port back at once: the pod's own server answers it again
/// while the Go program still runs.
#[test]
fn a_go_server_closing_its_listener_gives_the_port_back_while_it_runs() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (mut server, _scratch) = start_go_server(&pod, 9782);
    let stolen = pod_get(&pod, HTTP_PORT, "/before");
    assert!(stolen.starts_with("local /before peer="), "{stolen}");
    let closing = pod_get(&pod, HTTP_PORT, "/close");
    assert!(closing.starts_with("local /close peer="), "{closing}");
    let took = pod_serves_itself_within(&pod, Duration::from_secs(3));
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the Go program exited (after {took:?})"
    );
    // And it stays the pod's while the program runs on.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pod_get(&pod, HTTP_PORT, "/after"), POD_ANSWER);
    assert!(matches!(server.child.try_wait(), Ok(None)));
    stop_normally(server, &pod);
}

/// A local `http_record_server.py` under `mirrord exec` in the default
/// mode (mirror), listening on `local` and mirroring the pod's `remote`
/// port; the file it records requests in.
fn start_recorder(pod: &Pod, local: u16, remote: u16) -> (Server, Scratch, std::path::PathBuf) {
    start_recorder_on(pod, local, remote, "0.0.0.0")
}

/// [`start_recorder`] with the local server listening on `host`.
fn start_recorder_on(
    pod: &Pod,
    local: u16,
    remote: u16,
    host: &str,
) -> (Server, Scratch, std::path::PathBuf) {
    let scratch = Scratch::new("incoming-mirror");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"port_mapping": [[{local}, {remote}]]}}}}}}}}"#
        ),
    );
    let record = scratch.path().join("record");
    let args = [
        local.to_string(),
        record.to_string_lossy().into_owned(),
        host.to_owned(),
    ];
    let server = Server::try_start_program(
        pod,
        false,
        Some(&config),
        &python("http_record_server.py", &args),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (server, scratch, record)
}

/// The recorded requests (`path length sha256 peer`), once `count` are in.
fn recorded(record: &Path, count: usize) -> Vec<Vec<String>> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(record).unwrap_or_default();
        let lines: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split(' ').map(str::to_owned).collect())
            .collect();
        if lines.len() >= count || started.elapsed() > Duration::from_secs(20) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Packet sockets open in the pod's network namespace.
fn packet_sockets(pod: &Pod) -> usize {
    let out = pod
        .net_command("cat")
        .arg("/proc/net/packet")
        .output()
        .expect("cat runs");
    String::from_utf8_lossy(&out.stdout).lines().skip(1).count()
}

/// POSTs a 1-byte and a 10 MiB body from the pod's loopback to `port`
/// (at `host`, 127.0.0.1 unless given; with a third argument, from a
/// socket whose every packet carries an IPv6 hop-by-hop options header);
/// for each, `path=answer length sha256`.
const POST_BODIES: &str = r#"
import hashlib, http.client, socket, sys
port = int(sys.argv[1])
host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
class HopByHop(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_INET6)
        # An 8-byte hop-by-hop header holding one PadN option.
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
connection = HopByHop if len(sys.argv) > 3 else http.client.HTTPConnection
for path, body in [("/one", b"x"), ("/big", bytes(range(256)) * 40960)]:
    c = connection(host, port, timeout=30)
    c.request("POST", path, body=body)
    answer = c.getresponse().read().decode().strip()
    c.close()
    print("%s=%s|%d %s" % (path, answer, len(body), hashlib.sha256(body).hexdigest()))
"#;

/// POSTs [`POST_BODIES`] to the pod's HTTP port at `host`: the pod's
/// server answers each, and the local recorder got an intact copy of each
/// body, in order, from a peer starting with `peer_prefix` (not port 0).
fn mirrored_intact(pod: &Pod, host: &str, record: &Path, peer_prefix: &str) {
    mirrored_intact_from(pod, &[host], record, peer_prefix);
}

/// [`mirrored_intact`] with [`POST_BODIES`]'s arguments after the port.
fn mirrored_intact_from(pod: &Pod, args: &[&str], record: &Path, peer_prefix: &str) {
    let mut script = vec!["-c".to_owned(), POST_BODIES.into(), HTTP_PORT.to_string()];
    script.extend(args.iter().map(|a| (*a).to_owned()));
    let sent = pod_python(pod, &script);
    let mut expected = Vec::new();
    for path in ["/one", "/big"] {
        let (answer, body) = value(&sent, path)
            .split_once('|')
            .unwrap_or_else(|| panic!("{sent:?}"));
        assert_eq!(answer, POD_ANSWER, "the pod's server answers {path}");
        let (length, sha) = body.split_once(' ').expect("length and hash");
        expected.push((path, length.to_owned(), sha.to_owned()));
    }
    let lines = recorded(record, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, (path, length, sha)) in lines.iter().zip(&expected) {
        assert_eq!(line[0], *path, "{lines:?}");
        assert_eq!(line[1], *length, "{path}: the copy's length");
        assert_eq!(line[2], *sha, "{path}: the copy's bytes");
        assert!(line[3].starts_with(peer_prefix), "the real peer: {line:?}");
        assert!(!line[3].ends_with(":0"), "the real peer: {line:?}");
    }
}

/// A burst of short connections to the pod's server, arriving faster
/// than the local program accepts its copies, is copied whole: the
/// intproxy keeps the copies the program's accept queue has no room for
/// instead of connecting them all at once (when it did, the queue
/// overflowed, the kernel dropped handshakes, and a third to a half of
/// these copies were lost without a word).
#[test]
fn a_burst_of_short_connections_is_copied_whole() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _scratch, record) = start_recorder(&pod, 18_101, HTTP_PORT);
    let tools = Scratch::new("mirror-burst");
    let load = tools.path().join("http_close_load");
    gcc(
        &programs_dir().join("http_close_load.c"),
        &load,
        &["-O2", "-pthread"],
    );
    // 20 clients at once, 100 connections each, one request a connection.
    let out = pod
        .net_command(&load.to_string_lossy())
        .args([HTTP_PORT.to_string(), "20".into(), "100".into()])
        .output()
        .expect("the load client runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("ok=2000\nbad=0\n"),
        "the pod answers every request: {report}"
    );
    let lines = recorded(&record, 2000);
    let mut paths: Vec<&str> = lines.iter().map(|line| line[0].as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(
        (lines.len(), paths.len()),
        (2000, 2000),
        "every request's copy, once each"
    );
    stop_normally(server, &pod);
}

#[test]
fn mirror_copies_each_request_to_the_local_server_while_the_pod_answers() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    assert_eq!(packet_sockets(&pod), 0);
    let (server, _scratch, record) = start_recorder(&pod, 18_090, HTTP_PORT);
    assert_eq!(
        packet_sockets(&pod),
        2,
        "the IPv4 and IPv6 capture sockets are open"
    );
    // Mirror changes no rule: the pod's server is still the one answering.
    assert!(pod.mirrord_nat_rules().is_empty());
    mirrored_intact(&pod, "127.0.0.1", &record, "127.0.0.1:");
    let pid = server.pid();
    drop(server);
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
    assert_eq!(packet_sockets(&pod), 0, "the capture sockets are closed");
    assert_eq!(pod_get(&pod, HTTP_PORT, "/"), POD_ANSWER);
}

#[test]
fn mirror_copies_the_pods_ipv6_clients_to_a_dual_stack_local_server() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _scratch, record) = start_recorder_on(&pod, 18_094, HTTP_PORT, "::");
    // The program sees the IPv6 client's own address.
    mirrored_intact(&pod, "::1", &record, "::1:");
    let pid = server.pid();
    drop(server);
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
    assert_eq!(packet_sockets(&pod), 0, "the capture sockets are closed");
}

#[test]
fn mirror_copies_ipv6_clients_whose_packets_carry_a_hop_by_hop_header() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _scratch, record) = start_recorder_on(&pod, 18_100, HTTP_PORT, "::");
    // Every packet of the client has an extension header before TCP,
    // which the capture filter and the parser walk past.
    mirrored_intact_from(&pod, &["::1", "hop-by-hop"], &record, "::1:");
    let pid = server.pid();
    drop(server);
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}

#[test]
fn mirroring_a_port_nobody_serves_breaks_nothing() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let (server, _scratch, record) = start_recorder(&pod, 18_091, 18_091);
    // The pod refuses the connection (SYN, RST): nothing reaches the copy.
    let refused = pod_get(&pod, 18_091, "/nobody");
    assert!(refused.starts_with("curl failed"), "{refused}");
    // Local clients still reach the local listener, and the pod serves.
    let local = Command::new("curl")
        .args(["-s", "-m", "5", "http://127.0.0.1:18091/local"])
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&local.stdout).trim(),
        "local /local"
    );
    assert_eq!(pod_get(&pod, HTTP_PORT, "/"), POD_ANSWER);
    let lines = recorded(&record, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0][0], "/local");
    let pid = server.pid();
    drop(server);
    assert!(leftovers(pid, Some(pod.pid), Duration::from_secs(5)).is_empty());
}
