//! What an exec hook runs instead of the program a process asked for: the
//! decision the layer's `execve`/`posix_spawn` hooks make on macOS (see
//! `layer/src/sip_exec.rs`), kept here as plain code so it is tested on any
//! host against a simulated Mac. `mirrord exec` and the launch rewrite find
//! their programs the same way ([`Patcher::locate`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::{script, Error, Patched, Patcher};

/// How an exec call finds its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `execve`, `posix_spawn`: the path as given (relative to the working
    /// directory).
    Path,
    /// `execvp`, `posix_spawnp`, a launch configuration: a name without `/`
    /// is looked up in `PATH`.
    Search,
}

/// `PATH` when the environment has none (what macOS's `execvp` searches).
pub const DEFAULT_PATH: &str = "/usr/bin:/bin";

impl Patcher {
    /// The regular file `program` names: relative to `cwd` (else to the
    /// working directory), or with [`Lookup::Search`] a bare name looked up
    /// in the host's `PATH` ([`DEFAULT_PATH`] without one). `None` when
    /// there is no such file.
    pub fn locate(&self, program: &OsStr, lookup: Lookup, cwd: Option<&Path>) -> Option<PathBuf> {
        if program.is_empty() {
            return None;
        }
        let bare = !program.as_encoded_bytes().contains(&b'/');
        let path = if bare && lookup == Lookup::Search {
            let path_var = self
                .host
                .path_var
                .as_deref()
                .unwrap_or(OsStr::new(DEFAULT_PATH));
            script::resolve_in_path(program.to_str()?, Some(path_var))?
        } else {
            match cwd {
                Some(cwd) => cwd.join(program),
                None => PathBuf::from(program),
            }
        };
        path.is_file().then_some(path)
    }

    /// What an exec of `program` should run instead: its patched copy when
    /// it is protected. `None` runs it as it is: not protected, no such
    /// file (the real call reports that), or already a copy in the cache.
    pub fn exec_program(
        &self,
        program: &OsStr,
        lookup: Lookup,
        cwd: Option<&Path>,
    ) -> Result<Option<PathBuf>, Error> {
        let Some(path) = self.locate(program, lookup, cwd) else {
            return Ok(None);
        };
        if path.starts_with(&self.host.cache_dir) {
            return Ok(None);
        }
        match self.patch(&path)? {
            Patched::Copy { path, .. } => Ok(Some(path)),
            Patched::Unchanged => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;
    use crate::codesign::{self, CS_RUNTIME};
    use crate::fixtures::Fixture;
    use crate::macho::{self, Arch};
    use crate::tests::Mac;

    fn exec(mac: &Mac, program: &str, lookup: Lookup) -> Option<PathBuf> {
        mac.patcher
            .exec_program(OsStr::new(program), lookup, Some(mac.root()))
            .expect("exec decision")
    }

    #[test]
    fn a_protected_program_is_swapped_whichever_way_it_is_named() {
        let mac = Mac::new();
        let sh = mac.put("usr/bin/sh", &Fixture::new(Arch::Arm64).build(), 0o755);
        let by_path = exec(&mac, sh.to_str().unwrap(), Lookup::Path).expect("a copy");
        assert!(by_path.starts_with(&mac.patcher.host.cache_dir));
        assert_eq!(by_path.file_name(), sh.file_name());
        for (_, slice) in macho::slices(&std::fs::read(&by_path).unwrap()).unwrap() {
            codesign::verify_adhoc(slice).unwrap();
        }
        // posix_spawnp("sh"): found in PATH, the same copy.
        assert_eq!(exec(&mac, "sh", Lookup::Search), Some(by_path.clone()));
        // Relative to the working directory.
        assert_eq!(
            exec(&mac, "usr/bin/sh", Lookup::Path),
            Some(by_path.clone())
        );
        // execve("sh") does not search PATH: no file here, the real call
        // reports ENOENT.
        assert_eq!(exec(&mac, "sh", Lookup::Path), None);
        // The copy itself is run as it is (no copy of a copy).
        assert_eq!(exec(&mac, by_path.to_str().unwrap(), Lookup::Path), None);
    }

    #[test]
    fn unprotected_and_missing_programs_run_as_they_are() {
        let mac = Mac::new();
        let binary = Fixture::new(Arch::X86_64).build();
        mac.put("usr/local/bin/tool", &binary, 0o755);
        let home = mac.put("home/tool", &binary, 0o755);
        assert_eq!(exec(&mac, "tool", Lookup::Search), None);
        assert_eq!(exec(&mac, home.to_str().unwrap(), Lookup::Path), None);
        assert_eq!(exec(&mac, "missing", Lookup::Search), None);
        assert_eq!(exec(&mac, "", Lookup::Search), None);
        // Hardened without the entitlement: protected wherever it is.
        let hardened = mac.put(
            "home/hardened",
            &Fixture::new(Arch::X86_64).signed(CS_RUNTIME).build(),
            0o755,
        );
        assert!(exec(&mac, hardened.to_str().unwrap(), Lookup::Path).is_some());
    }

    #[test]
    fn a_script_run_by_a_protected_interpreter_becomes_a_copy_naming_the_patched_one() {
        let mac = Mac::new();
        let bash = mac.put("usr/bin/bash", &Fixture::new(Arch::Arm64).build(), 0o755);
        let script = mac.put(
            "home/run.sh",
            format!("#!{} -e\necho hi\n", bash.display()).as_bytes(),
            0o755,
        );
        let copy = exec(&mac, script.to_str().unwrap(), Lookup::Path).expect("a copy");
        let bash_copy = exec(&mac, bash.to_str().unwrap(), Lookup::Path).unwrap();
        assert_eq!(
            std::fs::read_to_string(copy).unwrap(),
            format!("#!{} -e\necho hi\n", bash_copy.display())
        );
    }

    #[test]
    fn a_protected_program_that_cannot_be_patched_is_an_error_naming_it() {
        let mac = Mac::new();
        let mut bytes = Fixture::new(Arch::X86_64).build();
        bytes[0..4].copy_from_slice(&macho::MH_MAGIC.to_le_bytes());
        let old = mac.put("usr/bin/old", &bytes, 0o755);
        let err = mac
            .patcher
            .exec_program(old.as_os_str(), Lookup::Path, None)
            .unwrap_err();
        assert!(err.to_string().contains("32-bit"), "{err}");
    }
}
