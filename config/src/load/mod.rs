//! Loading the config: the file, then `MIRRORD_*` environment overrides,
//! then CLI overrides, then validation, reporting every problem at once.

mod collect;
pub(crate) mod file;
mod jsonc;
mod overrides;

use std::path::{Path, PathBuf};

pub use self::file::Format;
pub use self::overrides::{CliOverrides, ENV_OVERRIDES};
use self::{
    collect::deserialize_all,
    file::{parse_tree, read_tree},
    overrides::{apply, from_env, Setters, Source},
};
use crate::{
    error::{ConfigError, Origin, Problem},
    model::MirrordConfig,
};

/// The config file looked for in the working directory when none is given.
pub const DEFAULT_CONFIG_FILE: &str = ".mirrord/mirrord.json";

/// Everything [`load`] reads. The environment is passed in rather than read
/// from the process, so callers (and tests) decide what it is.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The config file (`-f`); when `None`, [`DEFAULT_CONFIG_FILE`] under
    /// `cwd` is used if it exists, else no file.
    pub file: Option<PathBuf>,
    /// The directory relative paths (and the default file) are resolved in.
    pub cwd: PathBuf,
    /// The environment, e.g. `std::env::vars().collect()`.
    pub env: Vec<(String, String)>,
    /// Command-line overrides.
    pub cli: CliOverrides,
    /// A config given inline instead of a file (the `mirrord` object of a
    /// debug launch configuration); when set, no file is read.
    pub inline: Option<serde_json::Value>,
}

/// Loads the config: file < `MIRRORD_*` environment < CLI.
pub fn load(options: &LoadOptions) -> Result<MirrordConfig, ConfigError> {
    let file = match &options.file {
        _ if options.inline.is_some() => None,
        Some(file) if file.is_absolute() => Some(file.clone()),
        Some(file) => Some(options.cwd.join(file)),
        None => Some(options.cwd.join(DEFAULT_CONFIG_FILE)).filter(|f| f.is_file()),
    };
    let (mut config, mut problems) = match (&options.inline, &file) {
        (Some(inline), _) => deserialize_all::<MirrordConfig>(inline.clone(), None),
        (None, Some(file)) => deserialize_all::<MirrordConfig>(read_tree(file)?, Some(file)),
        (None, None) => (MirrordConfig::default(), Vec::new()),
    };
    let (env, env_problems) = from_env(&options.env);
    problems.extend(env_problems);
    let mut setters = Setters::new();
    apply(&mut config, &env, Source::Env, &mut setters);
    apply(&mut config, &options.cli, Source::Cli, &mut setters);
    finish(config, problems, file.as_deref(), &setters)
}

/// Reads and validates one file on its own (no environment, no flags), for
/// `mirrord verify-config`.
pub fn verify_file(path: &Path) -> Result<MirrordConfig, ConfigError> {
    let (config, problems) = deserialize_all::<MirrordConfig>(read_tree(path)?, Some(path));
    finish(config, problems, Some(path), &Setters::new())
}

/// Parses a config from JSON text, e.g. the resolved config the layer
/// receives; errors name key paths as for files.
pub fn from_json(text: &str) -> Result<MirrordConfig, ConfigError> {
    let tree = parse_tree(text, Format::Json, Path::new("<json>"))?;
    let (config, problems) = deserialize_all::<MirrordConfig>(tree, None);
    finish(config, problems, None, &Setters::new())
}

/// Parses a document's text in `format` into the tree the model is read
/// from (an empty document is an empty map); syntax errors name `path`.
/// For editors, which hold the text of a document not yet saved.
pub fn parse_document(
    text: &str,
    format: Format,
    path: &Path,
) -> Result<serde_json::Value, ConfigError> {
    file::parse_tree(text, format, path)
}

/// Every problem of one parsed document on its own (no environment, no
/// flags), each naming its key path: what `mirrord verify-config` reports,
/// for a tree an editor already parsed.
pub fn check_document(tree: serde_json::Value) -> Vec<Problem> {
    let (config, problems) = deserialize_all::<MirrordConfig>(tree, None);
    match finish(config, problems, None, &Setters::new()) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().to_vec(),
    }
}

fn finish(
    config: MirrordConfig,
    mut problems: Vec<Problem>,
    file: Option<&Path>,
    setters: &Setters,
) -> Result<MirrordConfig, ConfigError> {
    // Cross-field checks only make sense on a config that deserialized.
    if problems.is_empty() {
        problems = config.check(&|key| origin_of(key, file, setters));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::invalid(problems))
    }
}

/// The env variable or flag that set `key` (or a key above it), else the file.
fn origin_of(key: &str, file: Option<&Path>, setters: &Setters) -> Origin {
    setters
        .iter()
        .filter(|(set, _)| {
            key == **set
                || key
                    .strip_prefix(**set)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
        .map(|(_, origin)| origin.clone())
        .next()
        .unwrap_or_else(|| Origin::Key {
            file: file.map(Path::to_owned),
            key: key.to_owned(),
        })
}
