//! Turning a debug launch configuration into one that runs under mirrord,
//! for any debug adapter: the DAP proxy uses it for `launch`,
//! `runInTerminal` and `startDebugging`, and the IDE service for its
//! `prepareLaunch`.
//!
//! A configuration may carry a `mirrord` object: `{"configFile": "...",
//! "target": "pod/x"}`, or an inline config (`{"target": ..., "feature":
//! ...}`), or `false` to run this configuration without mirrord. It is
//! removed before the adapter sees the configuration.

pub mod env_shape;
pub mod go;
pub mod sip;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mirrord_config::{MirrordConfig, Target};
use serde_json::{Map, Value};

use self::env_shape::EnvShape;
use crate::cli::ConfigArgs;
use crate::session::{self, Session, Vars};

/// The key of the mirrord object in a launch configuration.
pub const MIRRORD_KEY: &str = "mirrord";

/// What a launch configuration says about mirrord.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrordSetting {
    /// No `mirrord` object: the proxy's own flags decide.
    Default,
    /// `"mirrord": false`.
    Disabled,
    /// `{"configFile": "...", "target": "..."}` (either may be absent).
    File {
        path: Option<PathBuf>,
        target: Option<Target>,
    },
    /// An inline config.
    Inline(Value),
}

/// Removes the `mirrord` object from `args` and says what it asked for.
pub fn take_mirrord(args: &mut Map<String, Value>) -> anyhow::Result<MirrordSetting> {
    let Some(value) = args.remove(MIRRORD_KEY) else {
        return Ok(MirrordSetting::Default);
    };
    match value {
        Value::Bool(false) | Value::Null => Ok(MirrordSetting::Disabled),
        Value::Bool(true) => Ok(MirrordSetting::Default),
        Value::Object(object) => {
            let is_file_form = object.contains_key("configFile")
                || (object.len() == 1 && object.contains_key("target"));
            if !is_file_form {
                return Ok(MirrordSetting::Inline(Value::Object(object)));
            }
            if let Some(extra) = object.keys().find(|k| *k != "configFile" && *k != "target") {
                bail!(
                    "the launch configuration's `mirrord` object has `configFile` and `{extra}`: \
                     give either a config file (with an optional `target`) or an inline config"
                );
            }
            let path = match object.get("configFile") {
                None => None,
                Some(Value::String(p)) => Some(PathBuf::from(p)),
                Some(other) => bail!("`mirrord.configFile` must be a path, not {other}"),
            };
            let target = match object.get("target") {
                None => None,
                Some(Value::String(t)) => Some(
                    t.parse::<Target>()
                        .map_err(|e| anyhow::anyhow!("`mirrord.target`: {e}"))?,
                ),
                Some(other) => {
                    bail!("`mirrord.target` must be a string such as \"pid/123\", not {other}")
                }
            };
            Ok(MirrordSetting::File { path, target })
        }
        other => bail!(
            "the launch configuration's `mirrord` must be an object (`{{\"configFile\": ...}}` or \
             an inline config) or false, not {other}"
        ),
    }
}

/// The config for a launch: the proxy's flags, replaced by what the launch
/// configuration says; relative paths are resolved in `cwd`. The
/// debuggee's working directory and program directory stay local.
pub fn load_config(
    base: &ConfigArgs,
    setting: &MirrordSetting,
    args: &Map<String, Value>,
) -> anyhow::Result<MirrordConfig> {
    let own = std::env::current_dir().context("cannot read the working directory")?;
    load_config_in(base, setting, args, &own)
}

/// [`load_config`] for a launch whose relative `cwd` is relative to
/// `base_dir` (the IDE service: the workspace folder) instead of ours.
pub fn load_config_in(
    base: &ConfigArgs,
    setting: &MirrordSetting,
    args: &Map<String, Value>,
    base_dir: &Path,
) -> anyhow::Result<MirrordConfig> {
    let cwd = working_dir(args, base_dir);
    let mut cli = base.clone();
    let mut inline = None;
    match setting {
        MirrordSetting::File { path, target } => {
            if path.is_some() {
                cli.config_file = path.clone();
            }
            if target.is_some() {
                cli.target = target.clone();
            }
        }
        MirrordSetting::Inline(value) => inline = Some(value.clone()),
        MirrordSetting::Default | MirrordSetting::Disabled => {}
    }
    let options = mirrord_config::LoadOptions {
        file: cli.config_file.clone(),
        cwd: cwd.clone(),
        env: std::env::vars().collect(),
        cli: cli.overrides(),
        inline,
    };
    let mut config = mirrord_config::load(&options)?;
    session::keep_local(&mut config, &cwd);
    if let Some(dir) = program_dir(args, &cwd) {
        session::keep_local(&mut config, &dir);
    }
    Ok(config)
}

/// The debuggee's working directory: `cwd` of the configuration (relative
/// to `base_dir`), else `base_dir`.
fn working_dir(args: &Map<String, Value>, base_dir: &Path) -> PathBuf {
    match args.get("cwd").and_then(Value::as_str) {
        Some(dir) if !dir.is_empty() => base_dir.join(dir),
        _ => base_dir.to_owned(),
    }
}

/// The directory of the program being debugged, when the configuration
/// names one (`program`), so its sources and neighbours stay local.
fn program_dir(args: &Map<String, Value>, cwd: &Path) -> Option<PathBuf> {
    let program = args.get("program")?.as_str()?;
    let dir = cwd.join(program).parent()?.to_owned();
    (dir != Path::new("/")).then_some(dir)
}

/// Writes the session's environment into the configuration, in the shape
/// its adapter reads, keeping the user's variables; returns the shape.
/// `vars`: what the debuggee needs of the layer ([`debuggee_vars`]).
pub fn inject_env(
    args: &mut Map<String, Value>,
    debug_type: Option<&str>,
    adapter_command: Option<&str>,
    session: &Session,
    vars: Vars,
) -> EnvShape {
    let shape = env_shape::shape_of(debug_type, adapter_command, args);
    let user = env_shape::user_env(args, shape);
    let preload = match user.iter().find(|(k, _)| k == "LD_PRELOAD") {
        Some((_, value)) => value.clone().map(Into::into),
        None => std::env::var_os("LD_PRELOAD"),
    };
    let vars: Vec<(String, String)> = session
        .vars(vars, preload.as_deref())
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    env_shape::set_env(args, shape, &vars);
    shape
}

/// What the debuggee of a configuration needs of the layer. Under a
/// debugger that runs on the syscall path (`filtered`): a Go debuggee
/// (`"type": "go"`, or the adapter is `dlv`) or a `program` that is a
/// static or Go executable gets the layer's variables for its dynamic
/// children, exactly as `mirrord exec` gives them; any other debuggee the
/// target's variables only. Otherwise the layer.
pub fn debuggee_vars(
    args: &Map<String, Value>,
    debug_type: Option<&str>,
    adapter_command: Option<&str>,
    filtered: bool,
) -> Vars {
    if !filtered {
        return Vars::Layer;
    }
    let dlv = adapter_command
        .and_then(|c| Path::new(c).file_name())
        .is_some_and(|name| name == "dlv" || name == "dlv-dap");
    if debug_type == Some("go") || dlv {
        return Vars::LayerForChildren;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let program = args
        .get("program")
        .and_then(Value::as_str)
        .map(|p| working_dir(args, &cwd).join(p));
    let exe = program.map(|p| {
        crate::syscall::detect::inspect(&p).unwrap_or(crate::syscall::detect::Executable::Other)
    });
    if exe.is_some_and(crate::syscall::detect::layer_for_children) {
        Vars::LayerForChildren
    } else {
        Vars::TargetOnly
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn take(v: Value) -> anyhow::Result<(MirrordSetting, Map<String, Value>)> {
        let mut args = v.as_object().cloned().unwrap();
        let setting = take_mirrord(&mut args)?;
        Ok((setting, args))
    }

    #[test]
    fn the_mirrord_object_is_removed_and_read() {
        let (setting, args) = take(
            json!({"program": "a.py", "mirrord": {"configFile": "m.json", "target": "pid/7"}}),
        )
        .unwrap();
        assert_eq!(
            args,
            json!({"program": "a.py"}).as_object().cloned().unwrap()
        );
        assert_eq!(
            setting,
            MirrordSetting::File {
                path: Some("m.json".into()),
                target: Some(Target::Pid(7))
            }
        );
        let (setting, _) = take(json!({"mirrord": {"target": "targetless"}})).unwrap();
        assert_eq!(
            setting,
            MirrordSetting::File {
                path: None,
                target: Some(Target::Targetless)
            }
        );
        let inline = json!({"target": "pid/1", "feature": {"fs": "local"}});
        let (setting, _) = take(json!({"mirrord": inline.clone()})).unwrap();
        assert_eq!(setting, MirrordSetting::Inline(inline));
        assert_eq!(
            take(json!({"mirrord": false})).unwrap().0,
            MirrordSetting::Disabled
        );
        assert_eq!(take(json!({})).unwrap().0, MirrordSetting::Default);
    }

    #[test]
    fn bad_mirrord_objects_say_what_is_wrong() {
        let rows = [
            (json!({"mirrord": "pid/1"}), "must be an object"),
            (json!({"mirrord": {"configFile": 3}}), "must be a path"),
            (json!({"mirrord": {"target": "pot/x"}}), "mirrord.target"),
            (
                json!({"mirrord": {"configFile": "a", "feature": {}}}),
                "either a config file",
            ),
        ];
        for (input, expected) in rows {
            let err = format!("{:#}", take(input.clone()).unwrap_err());
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    /// Under a debugger on the syscall path, a Go or static debuggee gets
    /// the layer for its dynamic children, a dynamic one (forced onto the
    /// path) the target's variables only; without the filter, the layer.
    #[test]
    fn what_a_debuggee_gets_of_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("main.c");
        std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let static_exe = dir.path().join("static");
        let built = std::process::Command::new("gcc")
            .args(["-static", "-o"])
            .arg(&static_exe)
            .arg(&source)
            .status()
            .is_ok_and(|s| s.success());
        assert!(built, "gcc -static");
        let config = |program: &Path| {
            json!({"program": program, "cwd": dir.path()})
                .as_object()
                .cloned()
                .unwrap()
        };
        let dynamic = config(Path::new("/bin/sh"));
        let rows = [
            (
                config(&static_exe),
                None,
                None,
                true,
                Vars::LayerForChildren,
            ),
            (
                config(Path::new("static")),
                None,
                None,
                true,
                Vars::LayerForChildren,
            ),
            (dynamic.clone(), None, None, true, Vars::TargetOnly),
            (
                dynamic.clone(),
                Some("go"),
                None,
                true,
                Vars::LayerForChildren,
            ),
            (
                dynamic.clone(),
                None,
                Some("/usr/bin/dlv"),
                true,
                Vars::LayerForChildren,
            ),
            (Map::new(), Some("lldb"), None, true, Vars::TargetOnly),
            (
                config(&static_exe),
                Some("go"),
                Some("dlv"),
                false,
                Vars::Layer,
            ),
        ];
        for (args, debug_type, adapter, filtered, expected) in rows {
            assert_eq!(
                debuggee_vars(&args, debug_type, adapter, filtered),
                expected,
                "{args:?} {debug_type:?} {adapter:?} {filtered}"
            );
        }
    }

    #[test]
    fn launch_config_wins_over_the_proxy_flags_and_keeps_cwd_local() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.json");
        // A configFile is read like any config file: comments and trailing commas are fine.
        std::fs::write(
            &file,
            "// the launch's config\n{\"feature\": {\"fs\": \"write\",},}",
        )
        .unwrap();
        let base = ConfigArgs {
            target: Some(Target::Pid(1)),
            ..Default::default()
        };
        let args = json!({"cwd": dir.path(), "program": "/srv/app/main.py"});
        let args = args.as_object().unwrap();
        let setting = MirrordSetting::File {
            path: Some("m.json".into()),
            target: Some(Target::Targetless),
        };
        let config = load_config(&base, &setting, args).unwrap();
        assert_eq!(config.target.path, Some(Target::Targetless));
        assert_eq!(config.feature.fs.mode, mirrord_config::FsMode::Write);
        let policy = mirrord_config::policy::FsPolicy::new(&config.feature.fs).unwrap();
        for local in [file.to_str().unwrap(), "/srv/app/util.py"] {
            assert_eq!(
                policy.route(local.as_bytes(), false),
                mirrord_config::policy::FileRoute::Local,
                "{local}"
            );
        }
        let config = load_config(&base, &MirrordSetting::Default, args).unwrap();
        assert_eq!(config.target.path, Some(Target::Pid(1)));
    }
}
