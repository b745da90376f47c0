//! `mirrord sip check PATH` and `mirrord sip clean`: the macOS SIP patcher
//! (`mirrord-sip`) from the command line. `check` applies macOS's rules on
//! any system and to any file, so it can be tried anywhere.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use mirrord_sip::{Host, Patcher};

#[derive(Subcommand, Debug)]
pub enum SipCommand {
    /// Explain whether macOS would strip DYLD_INSERT_LIBRARIES from a
    /// program (SIP directory, setuid, restrict flag, hardened runtime,
    /// __RESTRICT segment, protected #! interpreter), and what mirrord
    /// would patch.
    Check {
        /// The program: a path, or a name looked up in PATH.
        path: PathBuf,
    },
    /// Remove every patched copy from the cache.
    Clean,
}

pub fn run(command: SipCommand) -> anyhow::Result<()> {
    let patcher = Patcher::new(Host::macos());
    match command {
        SipCommand::Check { path } => {
            print!("{}", check_text(&patcher, &path)?);
            Ok(())
        }
        SipCommand::Clean => {
            patcher
                .clean()
                .context("cannot empty the cache of patched programs")?;
            println!("removed {}", patcher.host.cache_dir.display());
            Ok(())
        }
    }
}

/// What `check` prints for `path`.
fn check_text(patcher: &Patcher, path: &Path) -> anyhow::Result<String> {
    let name = path.to_string_lossy();
    let resolved = if path.exists() {
        path.to_owned()
    } else {
        patcher
            .resolve(&name)
            .with_context(|| format!("{name}: no such file, and not in PATH"))?
    };
    let check = patcher.check(&resolved)?;
    Ok(check.to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use clap::Parser;
    use mirrord_sip::codesign::CS_RUNTIME;
    use mirrord_sip::fixtures::Fixture;
    use mirrord_sip::Arch;

    use super::*;
    use crate::cli::{Cli, Commands};

    #[test]
    fn the_subcommands_parse() {
        let cli = Cli::try_parse_from(["mirrord", "sip", "check", "/bin/sh"]).unwrap();
        assert!(matches!(
            cli.command,
            Commands::Sip(SipCommand::Check { path }) if path == Path::new("/bin/sh")
        ));
        let cli = Cli::try_parse_from(["mirrord", "sip", "clean"]).unwrap();
        assert!(matches!(cli.command, Commands::Sip(SipCommand::Clean)));
    }

    #[test]
    fn check_explains_a_fixture_and_any_other_file() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, Fixture::new(Arch::Arm64).signed(CS_RUNTIME).build()).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let mut host = Host::macos();
        host.path_var = Some(dir.path().as_os_str().to_owned());
        let patcher = Patcher::new(host);
        let text = check_text(&patcher, &tool).unwrap();
        assert!(text.contains("it is setuid"), "{text}");
        assert!(text.contains("hardened runtime"), "{text}");
        let by_name = check_text(&patcher, Path::new("tool")).unwrap();
        assert!(by_name.contains("hardened runtime"), "{by_name}");
        let own = std::env::current_exe().unwrap();
        let text = check_text(&patcher, &own).unwrap();
        assert!(text.contains("not a Mach-O file or a script"), "{text}");
        let err = check_text(&patcher, Path::new("no-such-program-here")).unwrap_err();
        assert!(format!("{err:#}").contains("not in PATH"), "{err:#}");
    }
}
