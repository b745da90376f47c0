//! Go configurations prepared by the IDE service (`"type": "go"`, VS Code's
//! Go extension, which starts `dlv dap` itself with the configuration's
//! `env`). Go programs make raw syscalls, so their debuggee needs the
//! syscall path: the configuration's `dlvToolPath` becomes a link named
//! `dlv` to this binary, which, run under that name, installs the seccomp
//! filter, hands its listener to the session's supervisor (named in the
//! environment) and execs the real `dlv`. The supervisor lets `dlv` and
//! `go build` run untouched and answers the debuggee from the target.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

use super::env_shape::{self, EnvShape};
use crate::session::Session;
use crate::syscall;

/// The name this binary answers to as a Go debugger.
const DLV: &str = "dlv";
/// Where the session's supervisor listens (abstract socket name).
const ENV_SUPERVISOR: &str = "MIRRORD_SUPERVISOR";
/// The real `dlv`.
const ENV_DLV: &str = "MIRRORD_DLV";
/// The session's resolved config (also what the layer reads).
const ENV_CONFIG: &str = "MIRRORD_LAYER_CONFIG";

/// Whether this process was started through the `dlv` link.
pub fn invoked_as_dlv() -> bool {
    std::env::args_os()
        .next()
        .as_deref()
        .and_then(|argv0| Path::new(argv0).file_name())
        .is_some_and(|name| name == DLV)
}

/// Runs as `dlv`: the filter, the hand-off, then the real `dlv` with the
/// same arguments. Returns only on failure.
pub fn run_as_dlv() -> anyhow::Result<()> {
    let var = |name: &str| {
        std::env::var(name).with_context(|| {
            format!(
                "{name} is not set: this `dlv` link runs only from a configuration prepared by \
                 `mirrord ide`; run the real dlv directly otherwise"
            )
        })
    };
    let supervisor = var(ENV_SUPERVISOR)?;
    let dlv = var(ENV_DLV)?;
    let config = mirrord_config::from_json(&var(ENV_CONFIG)?)
        .context("the session's config in MIRRORD_LAYER_CONFIG is not valid")?;
    syscall::filter::check_available()?;
    // Last: from here on, the listed syscalls of this process stop in the
    // supervisor.
    syscall::install_and_hand_off(&supervisor, &config)?;
    let err = std::process::Command::new(&dlv)
        .args(std::env::args_os().skip(1))
        .env_remove(ENV_SUPERVISOR)
        .env_remove(ENV_DLV)
        .exec();
    Err(err).with_context(|| format!("cannot run `{dlv}`"))
}

/// Rewrites a Go configuration (its env already injected without the
/// layer, in `shape`) to start its debugger through the `dlv` link.
pub fn route_debugger(
    args: &mut Map<String, Value>,
    shape: EnvShape,
    session: &Session,
) -> anyhow::Result<()> {
    let real = match args.get("dlvToolPath").and_then(Value::as_str) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => syscall::detect::find_program(DLV, std::env::var_os("PATH").as_deref())
            .context("cannot find `dlv` in PATH: install delve, or set dlvToolPath")?,
    };
    route_debugger_through(args, shape, session, real, &dlv_link()?);
    Ok(())
}

/// [`route_debugger`] through the `dlv` link `link` to the real `dlv`.
fn route_debugger_through(
    args: &mut Map<String, Value>,
    shape: EnvShape,
    session: &Session,
    real: PathBuf,
    link: &Path,
) {
    args.insert("dlvToolPath".into(), link.display().to_string().into());
    let vars = [
        (ENV_SUPERVISOR.to_owned(), session.supervisor.clone()),
        (ENV_DLV.to_owned(), real.display().to_string()),
        (ENV_CONFIG.to_owned(), session.config_json().to_owned()),
    ];
    env_shape::set_env(args, shape, &vars);
}

/// `~/.cache/mirrord/go/dlv` (or under `$XDG_CACHE_HOME`): a link to this
/// binary, made once and replaced atomically when it points elsewhere.
fn dlv_link() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the mirrord binary")?;
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?;
    let dir = cache.join("mirrord").join("go");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let link = dir.join(DLV);
    if std::fs::read_link(&link).is_ok_and(|to| to == exe) {
        return Ok(link);
    }
    let mut temp = OsString::from(format!(".{DLV}-{}", std::process::id()));
    temp.push(".tmp");
    let temp = dir.join(temp);
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(&exe, &temp)
        .and_then(|()| std::fs::rename(&temp, &link))
        .with_context(|| format!("cannot make {}", link.display()))?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::launch::{debuggee_vars, inject_env};

    /// What VS Code's Go extension gets from `mirrord/prepareLaunch`: its
    /// `dlv` runs through the link, and the environment it passes to `dlv`
    /// (which `dlv` passes on to the go toolchain and the debuggee) holds
    /// the target's variables, the layer's, the marker that keeps the
    /// layer inert in Go programs, and the link's own.
    #[test]
    fn a_go_configuration_gets_the_layer_for_its_debuggees_children() {
        let session = Session::for_tests(
            mirrord_config::MirrordConfig::default(),
            vec![(b"POD_NAME".to_vec(), b"standin-pod".to_vec())],
        );
        let mut args = json!({"type": "go", "request": "launch", "program": "/src/app",
            "dlvToolPath": "/opt/go/bin/dlv", "env": {"USER_VAR": "kept"}})
        .as_object()
        .cloned()
        .unwrap();
        let vars = debuggee_vars(&args, Some("go"), None, true);
        assert_eq!(vars, crate::session::Vars::LayerForChildren);
        let shape = inject_env(&mut args, Some("go"), None, &session, vars);
        let link = Path::new("/cache/mirrord/go/dlv");
        route_debugger_through(&mut args, shape, &session, "/opt/go/bin/dlv".into(), link);
        assert_eq!(args["dlvToolPath"], "/cache/mirrord/go/dlv");
        let env = &args["env"];
        assert_eq!(env["USER_VAR"], "kept");
        assert_eq!(env["POD_NAME"], "standin-pod");
        assert_eq!(env["LD_PRELOAD"], "/opt/mirrord/libmirrord_layer.so");
        assert_eq!(env["MIRRORD_INTPROXY_ADDR"], "unix:@mirrord-test");
        assert_eq!(env["MIRRORD_SYSCALL_PATH"], "1");
        assert_eq!(env[ENV_CONFIG], session.config_json());
        assert_eq!(env[ENV_SUPERVISOR], "mirrord-test-supervisor");
        assert_eq!(env[ENV_DLV], "/opt/go/bin/dlv");
    }
}
