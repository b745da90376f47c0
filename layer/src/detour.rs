//! How a hook reaches the real libc function, and the re-entrancy guard that
//! keeps the layer's own I/O out of its hooks.

use std::cell::Cell;

thread_local! {
    /// Set while this thread runs layer code: any libc call the layer makes
    /// in that time (Rust std's `open`, `socket`, `send`...) resolves to our
    /// exported hooks, which must then go straight to libc.
    ///
    /// `const` initialisation keeps the access a plain TLS load: no lazy
    /// init, no allocation, safe in a forked child.
    static IN_LAYER: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running layer code until dropped.
///
/// `DetourGuard::new()` returns `None` when the thread is already inside the
/// layer: the caller must then bypass to libc.
pub struct DetourGuard(());

impl DetourGuard {
    pub fn new() -> Option<Self> {
        IN_LAYER
            .try_with(|flag| {
                if flag.get() {
                    None
                } else {
                    flag.set(true);
                    Some(DetourGuard(()))
                }
            })
            .ok()
            .flatten()
    }
}

impl Drop for DetourGuard {
    fn drop(&mut self) {
        let _ = IN_LAYER.try_with(|flag| flag.set(false));
    }
}

/// Whether the calling thread is inside layer code right now.
pub fn in_layer() -> bool {
    IN_LAYER.try_with(Cell::get).unwrap_or(true)
}

/// Resolves the next definition of a libc symbol (`dlsym(RTLD_NEXT)`) once
/// and caches it. Use through [`real!`](crate::real).
pub fn next_symbol(cache: &std::sync::atomic::AtomicUsize, name: &'static [u8]) -> usize {
    use std::sync::atomic::Ordering;
    let cached = cache.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: `name` is a NUL-terminated literal (the macro appends `\0`).
    let ptr = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    cache.store(ptr, Ordering::Relaxed);
    ptr
}

/// The real libc function behind a hook, typed:
/// `real!(open: unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int)`.
///
/// If the symbol cannot be found the process is in a state we cannot help
/// with; the hook calls `abort` rather than jump to address 0.
#[macro_export]
macro_rules! real {
    ($name:ident : $ty:ty) => {{
        static CACHE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let ptr = $crate::detour::next_symbol(&CACHE, concat!(stringify!($name), "\0").as_bytes());
        if ptr == 0 {
            std::process::abort()
        }
        #[allow(unused_unsafe)]
        let f: $ty = unsafe { std::mem::transmute::<usize, $ty>(ptr) };
        f
    }};
}

/// Runs a hook's logic with the guard held, unless the layer is disabled or
/// the thread is already inside it.
///
/// `logic` returns `Ok(Some(v))` when the layer handled the call, `Ok(None)`
/// to bypass to libc (`fallback`), or `Err` to fail with an errno (set by
/// the caller through [`crate::error::HookError::errno`]).
pub fn run<T>(
    logic: impl FnOnce() -> Result<Option<T>, crate::error::HookError>,
    fallback: impl FnOnce() -> T,
    on_error: impl FnOnce(crate::error::HookError) -> T,
) -> T {
    if !crate::setup::enabled() {
        return fallback();
    }
    let Some(guard) = DetourGuard::new() else {
        return fallback();
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(logic));
    drop(guard);
    match outcome {
        Ok(Ok(Some(value))) => value,
        Ok(Ok(None)) => fallback(),
        Ok(Err(err)) => on_error(err),
        Err(_) => on_error(crate::error::HookError::Internal("a hook panicked")),
    }
}
