//! What happens when the library is loaded: read the session from the
//! environment, build the policies, stay inert in skipped processes and
//! debugger helpers (`mirrord_config::policy::debugger`) and in a Go
//! program on the syscall path, collect the
//! debugger's local ports, connect to the intproxy, and register the fork
//! handlers. Also the global state every hook reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use mirrord_config::policy::{
    executable, is_debugger_helper, is_helper_by_parent, needs_parent, DnsPolicy, FsPolicy,
    LocalPorts, OutgoingPolicy, Policy,
};
use mirrord_config::MirrordConfig;

use crate::detour::DetourGuard;

/// The intproxy's address (`IP:PORT`), set by `mirrord exec`.
pub const ENV_INTPROXY_ADDR: &str = "MIRRORD_INTPROXY_ADDR";
/// The resolved config as JSON, set by `mirrord exec`.
pub const ENV_LAYER_CONFIG: &str = "MIRRORD_LAYER_CONFIG";
/// How long a remote call may take before it fails with `ETIMEDOUT`.
pub const ENV_REQUEST_TIMEOUT_MS: &str = "MIRRORD_LAYER_REQUEST_TIMEOUT_MS";

/// Everything the hooks consult, built once at load.
pub struct LayerState {
    pub config: MirrordConfig,
    pub fs: FsPolicy,
    pub outgoing: OutgoingPolicy,
    pub dns: DnsPolicy,
    /// The debugger's loopback ports, which stay local.
    pub local_ports: LocalPorts,
}

static STATE: OnceLock<LayerState> = OnceLock::new();
/// False until the layer is set up and connected, and for skipped
/// processes: every hook then goes straight to libc.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The state, once the layer is enabled.
pub fn state() -> Option<&'static LayerState> {
    STATE.get()
}

/// The executable's file name, for `skip_processes` and logs.
pub fn process_name() -> String {
    std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// Whether a connection or datagram to `dest` stays local because it goes
/// to the debugger (a loopback address on a [`LocalPorts`] port). A couple
/// of loads: no allocation, no lock.
#[inline]
pub fn keeps_local(dest: std::net::SocketAddr) -> bool {
    enabled() && STATE.get().is_some_and(|s| s.local_ports.keeps_local(dest))
}

/// The process's executable and command line, read once at load.
struct Process {
    /// The target of `/proc/self/exe` (empty when unreadable).
    exe: Vec<u8>,
    /// `/proc/self/cmdline`: the arguments, NUL-separated.
    cmdline: Vec<u8>,
}

impl Process {
    fn read() -> Process {
        Process::read_at("/proc/self")
    }

    /// The process whose `/proc` directory is `dir`.
    fn read_at(dir: &str) -> Process {
        use std::os::unix::ffi::OsStringExt;
        Process {
            exe: std::fs::read_link(format!("{dir}/exe"))
                .map(|p| p.into_os_string().into_vec())
                .unwrap_or_default(),
            cmdline: std::fs::read(format!("{dir}/cmdline")).unwrap_or_default(),
        }
    }

    /// `argv`, `argv[0]` included.
    fn argv(&self) -> Vec<&[u8]> {
        let cmdline = self.cmdline.strip_suffix(b"\0").unwrap_or(&self.cmdline);
        if cmdline.is_empty() {
            return Vec::new();
        }
        cmdline.split(|b| *b == 0).collect()
    }
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = layer_init;

extern "C" fn layer_init() {
    let Some(_guard) = DetourGuard::new() else {
        return;
    };
    let _ = std::panic::catch_unwind(|| {
        if let Err(message) = init() {
            eprintln!("mirrord layer: {message}; this process runs without mirrord");
        }
    });
}

fn init() -> Result<(), String> {
    let Ok(addr) = std::env::var(ENV_INTPROXY_ADDR) else {
        return Ok(()); // Loaded outside a mirrord session: stay inert.
    };
    // Helpers first, before the config is parsed and its policies built:
    // every process of a debugger's toolchain (each `cc1`, `as`, `ld` of a
    // cgo build) loads the layer and pays for what runs before this.
    let process = Process::read();
    let argv = process.argv();
    let argv0 = argv.first().copied().unwrap_or_default();
    if is_debugger_helper(&process.exe, &argv)
        || started_by_a_helper(&process, &argv)
        || go_under_a_filter()
    {
        return Ok(()); // Inert; exec'd children load a fresh layer.
    }
    let addr: mirrord_protocol::Endpoint = addr
        .parse()
        .map_err(|e| format!("{ENV_INTPROXY_ADDR}: {e}"))?;
    let json =
        std::env::var(ENV_LAYER_CONFIG).map_err(|_| format!("{ENV_LAYER_CONFIG} is missing"))?;
    let config = mirrord_config::from_json(&json).map_err(|e| format!("bad config: {e}"))?;
    let policy = Policy::new(&config).map_err(|e| format!("bad config: {e}"))?;
    if policy.skip.skips(&process.exe) || policy.skip.skips(argv0) {
        return Ok(()); // Inert, as a helper.
    }
    let local_ports = LocalPorts::from_process(&argv, |name| {
        std::env::var_os(name).map(std::os::unix::ffi::OsStringExt::into_vec)
    });
    let state = LayerState {
        fs: policy.fs,
        outgoing: policy.outgoing,
        dns: policy.dns,
        local_ports,
        config,
    };
    let timeout = std::env::var(ENV_REQUEST_TIMEOUT_MS)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(30));
    crate::client::connect(addr, None, timeout).map_err(|e| format!("{e:?}"))?;
    let _ = STATE.set(state);
    // SAFETY: registering plain `extern "C"` functions.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    ENABLED.store(true, Ordering::Release);
    Ok(())
}

/// Whether this process is a helper because a debugger or its toolchain
/// started it (`git`, run by `go build` to stamp the binary). The parent
/// is read only for the few programs where it matters.
fn started_by_a_helper(process: &Process, argv: &[&[u8]]) -> bool {
    if !needs_parent(&process.exe, argv) {
        return false;
    }
    // SAFETY: plain syscall.
    let parent = Process::read_at(&format!("/proc/{}", unsafe { libc::getppid() }));
    is_helper_by_parent(&process.exe, argv, &parent.exe, &parent.argv())
}

/// Whether this is a Go program on the syscall path: its raw syscalls
/// never reach a hook, so the layer stays inert and does not connect, and
/// the seccomp supervisor (which leaves a process with a connected layer
/// alone) serves it.
fn go_under_a_filter() -> bool {
    std::env::var_os(executable::ENV_SYSCALL_PATH).is_some()
        && matches!(
            executable::inspect(std::path::Path::new("/proc/self/exe")),
            Ok(executable::Executable::Go { .. })
        )
}

// Every lock a hook may hold is taken before fork and released on both
// sides, so a child never inherits a lock held by a thread that is gone.
// A domain that adds a lock adds it here.

extern "C" fn fork_prepare() {
    crate::file::fork_prepare();
    crate::socket::fork_prepare();
    crate::client::fork_prepare();
}

extern "C" fn fork_parent() {
    crate::client::fork_parent();
    crate::socket::fork_parent();
    crate::file::fork_parent();
}

extern "C" fn fork_child() {
    let _guard = DetourGuard::new();
    crate::client::fork_child();
    crate::socket::fork_child();
    crate::file::fork_child();
}
