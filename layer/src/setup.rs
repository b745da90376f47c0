//! What happens when the library is loaded: read the session from the
//! environment, build the policies, connect to the intproxy, and register
//! the fork handlers. Also the global state every hook reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use mirrord_config::policy::{DnsPolicy, FsPolicy, OutgoingPolicy, Policy};
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

/// `argv[0]`'s file name (a script run by an interpreter shows up here
/// under the interpreter's name, but `skip_processes` may name either).
fn argv0_name() -> String {
    std::fs::read("/proc/self/cmdline")
        .ok()
        .and_then(|c| {
            c.split(|b| *b == 0)
                .next()
                .map(|a| String::from_utf8_lossy(a).into_owned())
        })
        .map(|a| a.rsplit('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
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
    let addr: mirrord_protocol::Endpoint = addr
        .parse()
        .map_err(|e| format!("{ENV_INTPROXY_ADDR}: {e}"))?;
    let json =
        std::env::var(ENV_LAYER_CONFIG).map_err(|_| format!("{ENV_LAYER_CONFIG} is missing"))?;
    let config = mirrord_config::from_json(&json).map_err(|e| format!("bad config: {e}"))?;
    let policy = Policy::new(&config).map_err(|e| format!("bad config: {e}"))?;
    if policy.skip.skips(process_name().as_bytes()) || policy.skip.skips(argv0_name().as_bytes()) {
        return Ok(());
    }
    let state = LayerState {
        fs: policy.fs,
        outgoing: policy.outgoing,
        dns: policy.dns,
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
