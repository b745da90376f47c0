//! `libmirrord_layer.so`: loaded into the user's process with `LD_PRELOAD`,
//! it interposes libc entry points and sends what the config marks remote to
//! the intproxy.
//!
//! # Where to start reading
//!
//! - [`setup`]: the constructor that runs at load, the global state, fork handling.
//! - [`detour`]: the re-entrancy guard and how a hook reaches the real libc function.
//! - [`client`]: the blocking connection to the intproxy.
//! - [`fdhooks`]: `close`/`dup*`/`fcntl(F_DUPFD)`, shared by every kind of managed fd.
//! - [`exec`]: keeps exec'd children in the session (environment patching).
//! - `sip_exec` (macOS only, the only part built there so far): runs
//!   SIP-protected programs as their patched copies.
//! - [`file`] and [`socket`]: one folder per domain, `hooks.rs` (thin
//!   `extern "C"` detours) and `ops.rs` (the safe logic).
//!
//! # Invariants
//!
//! - No panic crosses the FFI boundary: every hook body runs its logic in
//!   safe code that returns `Result`, and errors become `-1`/`errno`.
//! - The layer's own I/O never re-enters a hook: [`detour::DetourGuard`].
//! - A hook on the local path costs a couple of atomic loads (the fd bitmap
//!   in [`fdbits`], the enabled flag) before it calls libc.
//! - No lock is held across `fork` by another thread: locks are taken in the
//!   `pthread_atfork` prepare handler and released on both sides.

// Linux: everything below. macOS: only the SIP exec hooks so far (the
// rest uses Linux's syscalls, `LD_PRELOAD` symbol interposition and
// `.init_array`; see ARCHITECTURE.md, "macOS SIP").
#[cfg(target_os = "linux")]
pub mod client;
#[cfg(target_os = "linux")]
pub mod detour;
#[cfg(target_os = "linux")]
pub mod error;
#[cfg(target_os = "linux")]
pub mod exec;
#[cfg(target_os = "linux")]
pub mod fdbits;
#[cfg(target_os = "linux")]
pub mod fdhooks;
#[cfg(target_os = "linux")]
pub mod file;
#[cfg(target_os = "linux")]
pub mod hide;
#[cfg(target_os = "linux")]
pub mod setup;
#[cfg(target_os = "macos")]
pub mod sip_exec;
#[cfg(target_os = "linux")]
pub mod socket;
