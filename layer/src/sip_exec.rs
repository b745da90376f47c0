//! macOS: the `execve`, `posix_spawn` and `posix_spawnp` hooks run a
//! protected program (SIP-protected, restricted, hardened: see
//! `mirrord-sip`) as its patched copy, so dyld keeps
//! `DYLD_INSERT_LIBRARIES` and the child loads the layer too. `argv` is
//! passed as it is, so the child still sees the name it was started by.
//!
//! The decision is [`mirrord_sip::Patcher::exec_program`], plain code
//! tested on Linux against a simulated Mac; this file only adapts it to the
//! C calls. It is type-checked on Linux
//! (`scripts/check-macos.sh`) but has never run: there is no Mac here.
//!
//! # How the hooks are installed
//!
//! dyld interposition: the `__DATA,__interpose` section lists
//! (replacement, original) pairs, and dyld points every other image's calls
//! of the original at the replacement. Our own calls of `libc::execve`
//! still reach libc, so a hook calls the real function directly.
//!
//! # Limits
//!
//! Deciding reads and hashes the program and may write a copy: that
//! allocates. `posix_spawn` runs in the parent, where that is fine; an
//! `execve` in a `fork` child of a threaded program relies on macOS's
//! fork-safe `malloc`, and in a `vfork` child it allocates in memory
//! shared with the parent. A program that cannot be patched runs as it is
//! (without the layer), with one line on stderr saying why.

use std::ffi::{c_char, c_int, c_void, CStr, CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use mirrord_sip::exec::Lookup;
use mirrord_sip::{Host, Patcher};

/// The copy to run instead of `program`; `None` runs `program` itself.
///
/// # Safety
/// `program` is NULL or a NUL-terminated string (exec's contract).
unsafe fn swap(program: *const c_char, lookup: Lookup) -> Option<CString> {
    if program.is_null() {
        return None;
    }
    let program = OsStr::from_bytes(CStr::from_ptr(program).to_bytes());
    let copy = std::panic::catch_unwind(|| {
        let host = Host::current()?;
        match Patcher::new(host).exec_program(program, lookup, None) {
            Ok(copy) => copy,
            Err(err) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "mirrord: {} runs without mirrord: cannot patch it for macOS SIP: {err}",
                    program.to_string_lossy()
                );
                None
            }
        }
    })
    .ok()??;
    CString::new(copy.into_os_string().into_vec()).ok()
}

/// Replaces libc's `execve`.
unsafe extern "C" fn execve_hook(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let copy = swap(path, Lookup::Path);
    libc::execve(copy.as_ref().map_or(path, |c| c.as_ptr()), argv, envp)
}

/// Replaces libc's `posix_spawn`.
unsafe extern "C" fn posix_spawn_hook(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let copy = swap(path, Lookup::Path);
    let path = copy.as_ref().map_or(path, |c| c.as_ptr());
    libc::posix_spawn(pid, path, actions, attr, argv, envp)
}

/// Replaces libc's `posix_spawnp`: a program found in `PATH` and swapped
/// is started by its (absolute) copy's path.
unsafe extern "C" fn posix_spawnp_hook(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    match swap(file, Lookup::Search) {
        Some(copy) => libc::posix_spawn(pid, copy.as_ptr(), actions, attr, argv, envp),
        None => libc::posix_spawnp(pid, file, actions, attr, argv, envp),
    }
}

/// One entry of `__DATA,__interpose`.
#[repr(C)]
struct Interpose {
    replacement: *const c_void,
    original: *const c_void,
}

// SAFETY: two code addresses, read only by dyld.
unsafe impl Sync for Interpose {}

#[used]
#[link_section = "__DATA,__interpose"]
static INTERPOSE: [Interpose; 3] = [
    Interpose {
        replacement: execve_hook as *const c_void,
        original: libc::execve as *const c_void,
    },
    Interpose {
        replacement: posix_spawn_hook as *const c_void,
        original: libc::posix_spawn as *const c_void,
    },
    Interpose {
        replacement: posix_spawnp_hook as *const c_void,
        original: libc::posix_spawnp as *const c_void,
    },
];
