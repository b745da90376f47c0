//! macOS System Integrity Protection (SIP) and mirrord: which executables
//! make dyld drop `DYLD_INSERT_LIBRARIES` (so the layer would not load),
//! and patched copies of them that keep it.
//!
//! dyld ignores `DYLD_*` variables for a program that is under a
//! SIP-protected directory, is setuid or setgid, has a `__RESTRICT`
//! segment, or whose code signature has the restrict flag or the hardened
//! runtime without the `allow-dyld-environment-variables` entitlement.
//! [`Patcher::check`] says which of these hold and why; [`Patcher::patch`]
//! writes a copy into a per-user cache ([`cache`]) with the slices the layer
//! can load into, `__RESTRICT` renamed, no setuid bit, and an ad hoc
//! signature computed here ([`codesign`]). A script whose interpreter is
//! protected gets a copy whose `#!` line names the patched interpreter
//! (`#!/usr/bin/env NAME` is resolved through `PATH`).
//!
//! Everything here is plain file processing and runs (and is tested) on
//! any Unix; only running the copies needs macOS. [`Host`] carries what
//! differs between a real Mac and a test: the protected directories, the
//! cache, the layer's architectures and `PATH`.
//!
//! **Architecture invariant:** no process is started and no macOS API is
//! called; damaged input is an [`Error`], never a panic.

pub mod cache;
pub mod codesign;
pub mod exec;
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
pub mod macho;
pub mod patch;
#[cfg(test)]
mod regressions;
pub mod script;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use macho::Arch;

use crate::cache::Cache;
use crate::codesign::{Signature, CS_RESTRICT};
use crate::macho::{Kind, MachO};
use crate::script::Shebang;

/// How deep `#!` interpreters may nest (the kernel's own limit is lower).
pub const MAX_INTERPRETER_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed Mach-O: {0}")]
    Malformed(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("bad code signature: {0}")]
    BadSignature(String),
    #[error("script: {0}")]
    Script(String),
    #[error("no slice the layer can load into (file: {}; layer: {})", found.join(", "), layer.join(", "))]
    NoLoadableSlice {
        found: Vec<String>,
        layer: Vec<String>,
    },
}

/// What differs between a real Mac and a simulated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Directories whose programs are SIP-protected.
    pub protected_roots: Vec<PathBuf>,
    /// Directories under those that are not (`/usr/local`).
    pub unprotected_roots: Vec<PathBuf>,
    /// Where patched copies go.
    pub cache_dir: PathBuf,
    /// The architectures the layer is built for.
    pub layer_archs: Vec<Arch>,
    /// `PATH`, for `#!/usr/bin/env NAME` and bare program names.
    pub path_var: Option<OsString>,
}

impl Host {
    /// macOS's rules, with the cache in `MIRRORD_SIP_CACHE`, else
    /// `~/Library/Caches/mirrord/sip`, else `$TMPDIR/mirrord-sip`; the
    /// layer for both architectures; this process's `PATH`.
    pub fn macos() -> Host {
        let cache_dir = std::env::var_os("MIRRORD_SIP_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join("Library/Caches/mirrord/sip"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("mirrord-sip"));
        Host {
            protected_roots: [
                "/System",
                "/usr",
                "/bin",
                "/sbin",
                "/Applications/Safari.app",
            ]
            .map(PathBuf::from)
            .to_vec(),
            unprotected_roots: vec![PathBuf::from("/usr/local")],
            cache_dir,
            layer_archs: vec![Arch::X86_64, Arch::Arm64],
            path_var: std::env::var_os("PATH"),
        }
    }

    /// The real host: macOS's rules on macOS, nothing anywhere else (there
    /// is no SIP to work around).
    pub fn current() -> Option<Host> {
        cfg!(target_os = "macos").then(Host::macos)
    }

    /// The protected directory `path` is in, if any.
    pub fn sip_root(&self, path: &Path) -> Option<&Path> {
        if self.unprotected_roots.iter().any(|r| path.starts_with(r)) {
            return None;
        }
        self.protected_roots
            .iter()
            .find(|r| path.starts_with(r))
            .map(PathBuf::as_path)
    }
}

/// Why dyld would drop `DYLD_*` variables for a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    SipPath {
        root: PathBuf,
    },
    Setuid,
    Setgid,
    RestrictFlag {
        arch: Arch,
    },
    HardenedRuntime {
        arch: Arch,
    },
    RestrictSegment {
        arch: Arch,
    },
    /// A script whose interpreter is protected.
    Interpreter {
        path: PathBuf,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::SipPath { root } => {
                write!(
                    f,
                    "it is under {}, a SIP-protected directory",
                    root.display()
                )
            }
            Reason::Setuid => f.write_str("it is setuid"),
            Reason::Setgid => f.write_str("it is setgid"),
            Reason::RestrictFlag { arch } => {
                write!(f, "its {arch} code signature has the restrict flag")
            }
            Reason::HardenedRuntime { arch } => write!(
                f,
                "its {arch} code signature enables the hardened runtime without the \
                 allow-dyld-environment-variables entitlement"
            ),
            Reason::RestrictSegment { arch } => {
                write!(f, "its {arch} slice has a __RESTRICT segment")
            }
            Reason::Interpreter { path } => {
                write!(f, "its interpreter {} is protected", path.display())
            }
        }
    }
}

/// What one slice of a Mach-O file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceInfo {
    pub arch: Arch,
    /// Signature flags (`None`: unsigned).
    pub signature_flags: Option<u32>,
    pub allows_dyld_environment: bool,
    pub restrict_segment: bool,
    /// What the slice becomes in a patched copy (`None`: left out, the
    /// layer cannot load into it).
    pub output: Option<Arch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    MachO {
        fat: bool,
        slices: Vec<SliceInfo>,
    },
    Script {
        shebang: Shebang,
        /// The interpreter's path after `env` and `PATH`.
        interpreter: PathBuf,
        interpreter_check: Box<Check>,
    },
    /// Anything else (an ELF file, a text file...): nothing to patch.
    Other,
}

/// The protection decision for one file, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The path as given.
    pub path: PathBuf,
    /// The path with symlinks resolved.
    pub resolved: PathBuf,
    pub kind: FileKind,
    pub reasons: Vec<Reason>,
}

impl Check {
    /// dyld would drop `DYLD_*` for it, and a patched copy would fix that.
    pub fn needs_patch(&self) -> bool {
        !self.reasons.is_empty() && !matches!(self.kind, FileKind::Other)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.resolved != self.path {
            write!(f, " (-> {})", self.resolved.display())?;
        }
        match &self.kind {
            FileKind::Other => writeln!(f, ": not a Mach-O file or a script")?,
            FileKind::MachO { fat, slices } => {
                writeln!(f, ": {} Mach-O", if *fat { "universal" } else { "thin" })?;
                for slice in slices {
                    let signature = match slice.signature_flags {
                        None => "unsigned".to_owned(),
                        Some(flags) => format!("signed, flags {flags:#x}"),
                    };
                    let output = match slice.output {
                        Some(a) if a == slice.arch => format!("kept as {a}"),
                        Some(a) => format!("kept, as {a}"),
                        None => "left out (no layer for it)".to_owned(),
                    };
                    writeln!(f, "  {}: {signature}; {output}", slice.arch)?;
                }
            }
            FileKind::Script {
                interpreter,
                interpreter_check,
                ..
            } => {
                writeln!(f, ": script run by {}", interpreter.display())?;
                for line in interpreter_check.to_string().lines() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        if self.reasons.is_empty() {
            writeln!(
                f,
                "  not protected: DYLD_INSERT_LIBRARIES reaches it as it is"
            )
        } else {
            writeln!(f, "  protected:")?;
            for reason in &self.reasons {
                writeln!(f, "  - {reason}")?;
            }
            if self.needs_patch() {
                let what = match self.kind {
                    FileKind::Script { .. } => "a copy of the script naming a patched interpreter",
                    _ => "a patched copy (thinned or rebuilt, ad hoc signed, no restrictions)",
                };
                writeln!(f, "  mirrord runs {what}")
            } else {
                writeln!(
                    f,
                    "  but mirrord cannot patch it (not a Mach-O file or a script)"
                )
            }
        }
    }
}

/// What [`Patcher::patch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Not protected: run the original.
    Unchanged,
    /// Run this copy (keep `argv[0]` and the working directory of the
    /// original).
    Copy { path: PathBuf, reused: bool },
}

impl Patched {
    /// The path to run instead of `original`.
    pub fn program<'a>(&'a self, original: &'a Path) -> &'a Path {
        match self {
            Patched::Unchanged => original,
            Patched::Copy { path, .. } => path,
        }
    }
}

/// Decides and patches on a [`Host`].
#[derive(Debug, Clone)]
pub struct Patcher {
    pub host: Host,
}

impl Patcher {
    pub fn new(host: Host) -> Patcher {
        Patcher { host }
    }

    pub fn cache(&self) -> Cache {
        Cache::new(&self.host.cache_dir)
    }

    /// `program` as a launch names it: a path, or a bare name looked up in
    /// `PATH`.
    pub fn resolve(&self, program: &str) -> Option<PathBuf> {
        script::resolve_in_path(program, self.host.path_var.as_deref())
    }

    /// Whether `path` is protected, and why.
    pub fn check(&self, path: &Path) -> Result<Check, Error> {
        self.check_at_depth(path, 0)
    }

    fn check_at_depth(&self, path: &Path, depth: usize) -> Result<Check, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let resolved = std::fs::canonicalize(path).map_err(io)?;
        let metadata = std::fs::metadata(&resolved).map_err(io)?;
        let data = std::fs::read(&resolved).map_err(io)?;
        let mut reasons = Vec::new();
        let kind = match macho::kind(&data) {
            Kind::Thin | Kind::Fat => {
                if let Some(root) = self.host.sip_root(&resolved) {
                    reasons.push(Reason::SipPath {
                        root: root.to_owned(),
                    });
                }
                let mode = metadata.permissions().mode();
                if mode & 0o4000 != 0 {
                    reasons.push(Reason::Setuid);
                }
                if mode & 0o2000 != 0 {
                    reasons.push(Reason::Setgid);
                }
                let (slices, slice_reasons) = self.inspect_macho(&data)?;
                reasons.extend(slice_reasons);
                FileKind::MachO {
                    fat: macho::kind(&data) == Kind::Fat,
                    slices,
                }
            }
            Kind::UnsupportedMachO => {
                return Err(Error::Unsupported("32-bit or big-endian Mach-O".into()))
            }
            Kind::Script => {
                let shebang =
                    Shebang::parse(&data)?.ok_or_else(|| Error::Script("no #!".into()))?;
                if depth >= MAX_INTERPRETER_DEPTH {
                    return Err(Error::Script(format!(
                        "more than {MAX_INTERPRETER_DEPTH} nested #! interpreters"
                    )));
                }
                let interpreter = match &shebang.env_program {
                    Some((name, _)) => self.resolve(name).ok_or_else(|| {
                        Error::Script(format!(
                            "{name} (from #!{}) is not in PATH",
                            shebang.interpreter.display()
                        ))
                    })?,
                    None => shebang.interpreter.clone(),
                };
                let interpreter_check = self.check_at_depth(&interpreter, depth + 1)?;
                if interpreter_check.needs_patch() {
                    reasons.push(Reason::Interpreter {
                        path: interpreter.clone(),
                    });
                }
                FileKind::Script {
                    shebang,
                    interpreter,
                    interpreter_check: Box::new(interpreter_check),
                }
            }
            Kind::Other => FileKind::Other,
        };
        Ok(Check {
            path: path.to_owned(),
            resolved,
            kind,
            reasons,
        })
    }

    /// What each slice of a thin or fat Mach-O file's bytes is, and the
    /// reasons its slices give dyld to drop `DYLD_*` (the file's path and
    /// mode add their own in [`Patcher::check`]).
    pub fn inspect_macho(&self, data: &[u8]) -> Result<(Vec<SliceInfo>, Vec<Reason>), Error> {
        let mut slices = Vec::new();
        let mut reasons = Vec::new();
        for (arch, bytes) in macho::slices(data)? {
            let info = self.slice_info(arch, bytes)?;
            let flags = info.signature_flags.unwrap_or(0);
            if flags & CS_RESTRICT != 0 {
                reasons.push(Reason::RestrictFlag { arch });
            }
            if flags & codesign::CS_RUNTIME != 0 && !info.allows_dyld_environment {
                reasons.push(Reason::HardenedRuntime { arch });
            }
            if info.restrict_segment {
                reasons.push(Reason::RestrictSegment { arch });
            }
            slices.push(info);
        }
        Ok((slices, reasons))
    }

    fn slice_info(&self, arch: Arch, bytes: &[u8]) -> Result<SliceInfo, Error> {
        let parsed = MachO::parse(bytes)?;
        let signature = parsed.signature_bytes().map(Signature::parse).transpose()?;
        Ok(SliceInfo {
            arch,
            signature_flags: signature.as_ref().map(Signature::flags),
            allows_dyld_environment: signature
                .as_ref()
                .is_some_and(Signature::allows_dyld_environment),
            restrict_segment: parsed.segments.iter().any(|s| s.name == "__RESTRICT"),
            output: patch::output_arch(arch, &self.host.layer_archs),
        })
    }

    /// A copy of `path` that the layer can be injected into, when `path`
    /// is protected; written to (or found in) the cache.
    pub fn patch(&self, path: &Path) -> Result<Patched, Error> {
        let check = self.check(path)?;
        self.patch_checked(&check)
    }

    /// [`Patcher::patch`] for a file already checked.
    pub fn patch_checked(&self, check: &Check) -> Result<Patched, Error> {
        if !check.needs_patch() {
            return Ok(Patched::Unchanged);
        }
        let data = std::fs::read(&check.resolved).map_err(|source| Error::Io {
            path: check.resolved.clone(),
            source,
        })?;
        let archs: Vec<u8> = self
            .host
            .layer_archs
            .iter()
            .flat_map(|a| {
                let (t, s) = a.cpu();
                [t.to_le_bytes(), s.to_le_bytes()].concat()
            })
            .collect();
        let entry = match &check.kind {
            FileKind::Script {
                shebang,
                interpreter_check,
                ..
            } => {
                let interpreter = self.patch_checked(interpreter_check)?;
                let interpreter = interpreter.program(&interpreter_check.resolved).to_owned();
                let args = match &shebang.env_program {
                    Some((_, rest)) => rest.clone(),
                    None => shebang.args.clone(),
                };
                let key = interpreter.as_os_str().as_encoded_bytes().to_vec();
                self.cache()
                    .get_or_insert(&check.resolved, &[&data, &key], || {
                        script::rewrite(&data, &interpreter, args.as_deref())
                    })?
            }
            _ => {
                let name = check
                    .resolved
                    .file_name()
                    .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
                self.cache()
                    .get_or_insert(&check.resolved, &[&data, &archs], || {
                        patch::patch_binary(&data, &self.host.layer_archs, &name)
                    })?
            }
        };
        Ok(Patched::Copy {
            path: entry.path,
            reused: entry.reused,
        })
    }

    /// Empties the cache.
    pub fn clean(&self) -> Result<(), Error> {
        self.cache().clean()
    }
}
