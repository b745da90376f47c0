//! Which interception path a program gets: its executable is read (the
//! ELF program and section headers only) and `feature.interception`
//! decides.
//!
//! Go binaries make raw syscalls even when dynamically linked (cgo), and a
//! static binary (no `PT_INTERP`) never runs the dynamic loader that
//! `LD_PRELOAD` needs: both get the syscall path under `auto`.

use std::path::{Path, PathBuf};

pub use mirrord_config::policy::executable::{self, Executable};
use mirrord_config::Interception;

/// How the program's calls are intercepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Layer,
    Syscall,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot find `{0}` in PATH")]
    NotFound(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The path `mode` gives to `exe`.
pub fn choose(mode: Interception, exe: Executable) -> Route {
    match mode {
        Interception::Layer => Route::Layer,
        Interception::Syscall => Route::Syscall,
        Interception::Auto => match exe {
            Executable::Go { .. } | Executable::Static => Route::Syscall,
            Executable::Dynamic | Executable::Other => Route::Layer,
        },
    }
}

/// Whether a program on the syscall path gets the layer's variables, for
/// its exec'd dynamic children: yes for a static or Go program, which
/// never runs the layer itself; not for a dynamic program forced onto the
/// path (`--interception syscall`), which would load it and leave the path.
pub fn layer_for_children(exe: Executable) -> bool {
    matches!(exe, Executable::Static | Executable::Go { .. })
}

/// Finds `program` as `execvp` would: a name with a `/` is used as is,
/// anything else is looked up in `path` (the program's `PATH`).
pub fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Result<PathBuf, DetectError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(std::ffi::OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| DetectError::NotFound(program.to_owned()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Reads the headers of the executable at `path`.
pub fn inspect(path: &Path) -> Result<Executable, DetectError> {
    executable::inspect(path).map_err(|source| DetectError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_system_binary_gets_the_layer() {
        let sh = find_program("sh", None).unwrap();
        let exe = inspect(&std::fs::canonicalize(sh).unwrap()).unwrap();
        assert_eq!(exe, Executable::Dynamic);
        assert_eq!(choose(Interception::Auto, exe), Route::Layer);
        assert_eq!(choose(Interception::Syscall, exe), Route::Syscall);
        assert!(matches!(
            find_program("no-such-program-here", None),
            Err(DetectError::NotFound(_))
        ));
    }

    #[test]
    fn auto_sends_go_and_static_binaries_to_the_syscall_path() {
        for exe in [
            Executable::Go { dynamic: true },
            Executable::Go { dynamic: false },
            Executable::Static,
        ] {
            assert_eq!(choose(Interception::Auto, exe), Route::Syscall);
            assert_eq!(choose(Interception::Layer, exe), Route::Layer);
        }
    }
}
