//! Keeps exec'd children in the session: `execve`, `execv`, `execvp`,
//! `execvpe`, `fexecve`, `posix_spawn` and `posix_spawnp` put our
//! `LD_PRELOAD` entry and the session variables (`MIRRORD_INTPROXY_ADDR`,
//! `MIRRORD_LAYER_CONFIG`, the request timeout and `MIRRORD_SYSCALL_PATH`
//! when set) back into an environment the program built without them, so
//! the child loads the layer and joins the same intproxy.
//!
//! # vfork
//!
//! These hooks may run in a `vfork` child (CPython's `subprocess` does
//! that), which shares the parent's memory while the parent's other threads
//! keep running: no lock may be taken and `malloc` must not be called. So:
//! the values are saved at load into a [`OnceLock`] (reading it is an atomic
//! load), the real functions are resolved at load, an environment that
//! already has everything is passed through untouched, and a patched one is
//! built in an anonymous `mmap` (a plain syscall), unmapped again if the
//! exec fails.
//!
//! Variadic `execl*` build their `argv` and call libc's internal `execve`,
//! so they are not seen here; they use `environ`, which normally still has
//! our entries.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::AtomicUsize;
use std::sync::OnceLock;

use crate::detour::next_symbol;
use crate::error::{errno, set_errno};
use crate::setup::{ENV_INTPROXY_ADDR, ENV_LAYER_CONFIG, ENV_REQUEST_TIMEOUT_MS};
use mirrord_config::policy::executable::ENV_SYSCALL_PATH;

const PRELOAD: &[u8] = b"LD_PRELOAD=";

/// What a child's environment must hold, saved at load.
struct Saved {
    /// Our library as `LD_PRELOAD` named it (a path).
    layer: Vec<u8>,
    /// Its file name, to recognise it in another `LD_PRELOAD` value.
    layer_name: Vec<u8>,
    /// `LD_PRELOAD=<layer>`, for an environment without `LD_PRELOAD`.
    preload_entry: CString,
    /// `NAME=value` entries, with the length of `NAME=`.
    entries: Vec<(CString, usize)>,
}

static SAVED: OnceLock<Saved> = OnceLock::new();

static REAL_EXECVE: AtomicUsize = AtomicUsize::new(0);
static REAL_EXECVPE: AtomicUsize = AtomicUsize::new(0);
static REAL_EXECVP: AtomicUsize = AtomicUsize::new(0);
static REAL_FEXECVE: AtomicUsize = AtomicUsize::new(0);
static REAL_POSIX_SPAWN: AtomicUsize = AtomicUsize::new(0);
static REAL_POSIX_SPAWNP: AtomicUsize = AtomicUsize::new(0);

type Env = *const *const c_char;
type ExecveFn = unsafe extern "C" fn(*const c_char, Env, Env) -> c_int;
type ExecvpFn = unsafe extern "C" fn(*const c_char, Env) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, Env, Env) -> c_int;
type SpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    Env,
    Env,
) -> c_int;

extern "C" {
    static environ: Env;
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = exec_init;

/// Saves the session's variables and resolves the real functions, so the
/// hooks never need `dlsym` (which locks) in a vfork child.
extern "C" fn exec_init() {
    let Some(_guard) = crate::detour::DetourGuard::new() else {
        return;
    };
    let _ = std::panic::catch_unwind(|| {
        for (cache, name) in [
            (&REAL_EXECVE, &b"execve\0"[..]),
            (&REAL_EXECVPE, b"execvpe\0"),
            (&REAL_EXECVP, b"execvp\0"),
            (&REAL_FEXECVE, b"fexecve\0"),
            (&REAL_POSIX_SPAWN, b"posix_spawn\0"),
            (&REAL_POSIX_SPAWNP, b"posix_spawnp\0"),
        ] {
            let name: &'static [u8] = name;
            next_symbol(cache, name);
        }
        if let Some(saved) = saved_from_env(|name| std::env::var_os(name)) {
            let _ = SAVED.set(saved);
        }
    });
}

fn saved_from_env(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Saved> {
    use std::os::unix::ffi::OsStrExt;
    get(ENV_INTPROXY_ADDR)?;
    let preload = get("LD_PRELOAD")?;
    let layer = preload
        .as_bytes()
        .split(|b| *b == b':' || *b == b' ')
        .find(|entry| file_name(entry).starts_with(b"libmirrord_layer"))?
        .to_vec();
    let layer_name = file_name(&layer).to_vec();
    let mut preload_entry = PRELOAD.to_vec();
    preload_entry.extend_from_slice(&layer);
    let mut entries = Vec::new();
    for name in [
        ENV_INTPROXY_ADDR,
        ENV_LAYER_CONFIG,
        ENV_REQUEST_TIMEOUT_MS,
        ENV_SYSCALL_PATH,
    ] {
        if let Some(value) = get(name) {
            let mut entry = format!("{name}=").into_bytes();
            entry.extend_from_slice(value.as_bytes());
            entries.push((CString::new(entry).ok()?, name.len() + 1));
        }
    }
    Some(Saved {
        layer,
        layer_name,
        preload_entry: CString::new(preload_entry).ok()?,
        entries,
    })
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// An environment with our entries added, in an anonymous mapping that is
/// unmapped on drop (when the exec failed).
struct Patched {
    map: *mut c_void,
    len: usize,
}

impl Patched {
    fn envp(&self) -> Env {
        self.map.cast_const().cast()
    }
}

impl Drop for Patched {
    fn drop(&mut self) {
        let saved = errno();
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.map, self.len) };
        set_errno(saved);
    }
}

/// Iterates a NULL-terminated `envp` (none when it is NULL).
unsafe fn entries<'a>(envp: Env) -> impl Iterator<Item = &'a CStr> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if envp.is_null() {
            return None;
        }
        let entry = *envp.add(i);
        if entry.is_null() {
            return None;
        }
        i += 1;
        Some(CStr::from_ptr(entry))
    })
}

/// `envp` with what is missing added, or `None` when nothing is (or the
/// process is not in a session). Allocates nothing in the `None` case,
/// and never calls `malloc`.
unsafe fn patch(envp: Env) -> Option<Patched> {
    let saved = SAVED.get()?;
    let mut count = 0usize;
    let mut preload: Option<&[u8]> = None;
    let mut present = [false; 3];
    for entry in entries(envp) {
        count += 1;
        let bytes = entry.to_bytes();
        if let Some(value) = bytes.strip_prefix(PRELOAD) {
            preload = Some(value);
        }
        for (i, (want, name_len)) in saved.entries.iter().enumerate() {
            if bytes.starts_with(&want.to_bytes()[..*name_len]) {
                present[i] = true;
            }
        }
    }
    let has_layer = preload.is_some_and(|value| {
        value
            .split(|b| *b == b':' || *b == b' ')
            .any(|entry| file_name(entry) == saved.layer_name.as_slice())
    });
    let missing = saved.entries.len()
        - present[..saved.entries.len()]
            .iter()
            .filter(|p| **p)
            .count();
    if has_layer && missing == 0 {
        return None;
    }
    // Layout: the pointer array, then a new LD_PRELOAD entry if the
    // program has one without us.
    let slots = count + missing + 2;
    let ptr_bytes = slots * std::mem::size_of::<*const c_char>();
    let merged_len = match preload {
        Some(value) if !has_layer => PRELOAD.len() + saved.layer.len() + 1 + value.len() + 1,
        _ => 0,
    };
    let len = ptr_bytes + merged_len;
    let map = libc::mmap(
        std::ptr::null_mut(),
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if map == libc::MAP_FAILED {
        return None;
    }
    let patched = Patched { map, len };
    let array = map.cast::<*const c_char>();
    let mut n = 0;
    let merged = map.cast::<u8>().add(ptr_bytes);
    if merged_len != 0 {
        let mut at = merged;
        for part in [
            PRELOAD,
            saved.layer.as_slice(),
            b":",
            preload.unwrap_or_default(),
        ] {
            std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
            at = at.add(part.len());
        }
        *at = 0;
    }
    for entry in entries(envp) {
        let ptr = if merged_len != 0 && entry.to_bytes().starts_with(PRELOAD) {
            merged.cast_const().cast()
        } else {
            entry.as_ptr()
        };
        *array.add(n) = ptr;
        n += 1;
    }
    if preload.is_none() {
        *array.add(n) = saved.preload_entry.as_ptr();
        n += 1;
    }
    for (i, (entry, _)) in saved.entries.iter().enumerate() {
        if !present[i] {
            *array.add(n) = entry.as_ptr();
            n += 1;
        }
    }
    *array.add(n) = std::ptr::null();
    Some(patched)
}

/// Calls `real` with `envp`, patched when needed.
unsafe fn with_env(envp: Env, real: impl FnOnce(Env) -> c_int) -> c_int {
    match patch(envp) {
        Some(patched) => real(patched.envp()),
        None => real(envp),
    }
}

fn real_fn(cache: &AtomicUsize, name: &'static [u8]) -> usize {
    let ptr = next_symbol(cache, name);
    if ptr == 0 {
        std::process::abort();
    }
    ptr
}

/// # Safety
/// libc's `execve`.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Env, envp: Env) -> c_int {
    let real: ExecveFn = std::mem::transmute(real_fn(&REAL_EXECVE, b"execve\0"));
    with_env(envp, |envp| real(path, argv, envp))
}

/// # Safety
/// libc's `execv`.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Env) -> c_int {
    execve(path, argv, environ)
}

/// # Safety
/// libc's `execvpe`.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Env, envp: Env) -> c_int {
    let real: ExecveFn = std::mem::transmute(real_fn(&REAL_EXECVPE, b"execvpe\0"));
    with_env(envp, |envp| real(file, argv, envp))
}

/// # Safety
/// libc's `execvp`.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Env) -> c_int {
    match patch(environ) {
        Some(patched) => {
            let real: ExecveFn = std::mem::transmute(real_fn(&REAL_EXECVPE, b"execvpe\0"));
            real(file, argv, patched.envp())
        }
        None => {
            let real: ExecvpFn = std::mem::transmute(real_fn(&REAL_EXECVP, b"execvp\0"));
            real(file, argv)
        }
    }
}

/// # Safety
/// libc's `fexecve`.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Env, envp: Env) -> c_int {
    let real: FexecveFn = std::mem::transmute(real_fn(&REAL_FEXECVE, b"fexecve\0"));
    with_env(envp, |envp| real(fd, argv, envp))
}

/// # Safety
/// libc's `posix_spawn`.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Env,
    envp: Env,
) -> c_int {
    let real: SpawnFn = std::mem::transmute(real_fn(&REAL_POSIX_SPAWN, b"posix_spawn\0"));
    with_env(envp, |envp| real(pid, path, actions, attr, argv, envp))
}

/// # Safety
/// libc's `posix_spawnp`.
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Env,
    envp: Env,
) -> c_int {
    let real: SpawnFn = std::mem::transmute(real_fn(&REAL_POSIX_SPAWNP, b"posix_spawnp\0"));
    with_env(envp, |envp| real(pid, file, actions, attr, argv, envp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn saved() -> &'static Saved {
        SAVED.get_or_init(|| {
            saved_from_env(|name| {
                Some(OsString::from(match name {
                    "LD_PRELOAD" => "/opt/other.so:/x/target/debug/libmirrord_layer.so",
                    ENV_INTPROXY_ADDR => "127.0.0.1:1234",
                    ENV_LAYER_CONFIG => "{}",
                    _ => return None,
                }))
            })
            .expect("a session environment")
        })
    }

    fn run_patch(env: &[&str]) -> Option<Vec<String>> {
        saved();
        let owned: Vec<CString> = env.iter().map(|e| CString::new(*e).unwrap()).collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a NULL-terminated array of C strings.
        let patched = unsafe { patch(ptrs.as_ptr()) }?;
        // SAFETY: the array `patch` built.
        let out = unsafe { entries(patched.envp()) }
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        Some(out)
    }

    #[test]
    fn a_complete_environment_is_left_alone() {
        assert_eq!(
            run_patch(&[
                "A=1",
                "LD_PRELOAD=/elsewhere/libmirrord_layer.so",
                "MIRRORD_INTPROXY_ADDR=127.0.0.1:9",
                "MIRRORD_LAYER_CONFIG={\"x\":1}",
            ]),
            None
        );
    }

    #[test]
    fn missing_entries_are_added() {
        assert_eq!(
            run_patch(&["A=1"]).unwrap(),
            [
                "A=1",
                "LD_PRELOAD=/x/target/debug/libmirrord_layer.so",
                "MIRRORD_INTPROXY_ADDR=127.0.0.1:1234",
                "MIRRORD_LAYER_CONFIG={}",
            ]
        );
        assert_eq!(saved().layer_name, b"libmirrord_layer.so");
    }

    #[test]
    fn our_library_is_put_in_front_of_another_preload() {
        assert_eq!(
            run_patch(&[
                "LD_PRELOAD=/usr/lib/libfoo.so",
                "B=2",
                "MIRRORD_INTPROXY_ADDR=127.0.0.1:9",
            ])
            .unwrap(),
            [
                "LD_PRELOAD=/x/target/debug/libmirrord_layer.so:/usr/lib/libfoo.so",
                "B=2",
                "MIRRORD_INTPROXY_ADDR=127.0.0.1:9",
                "MIRRORD_LAYER_CONFIG={}",
            ]
        );
    }

    #[test]
    fn a_null_environment_gets_the_session() {
        saved();
        // SAFETY: a NULL envp is accepted.
        let patched = unsafe { patch(std::ptr::null()) }.unwrap();
        // SAFETY: as above.
        let count = unsafe { entries(patched.envp()) }.count();
        assert_eq!(count, 3);
    }

    #[test]
    fn no_session_means_no_saved_state() {
        assert!(saved_from_env(|_| None).is_none());
        assert!(saved_from_env(
            |name| (name == ENV_INTPROXY_ADDR).then(|| OsString::from("127.0.0.1:1"))
        )
        .is_none());
    }
}
