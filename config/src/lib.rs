//! mirrord's configuration: the model (serde + schemars), loading from
//! JSON/TOML/YAML with `MIRRORD_*` and CLI overrides, validation with precise
//! errors, the JSON schema, and the local/remote policy the layer applies on
//! every hooked call.
//!
//! Entry points:
//! - [`load`] (adapter): file < env < CLI, every problem reported at once;
//! - [`verify_file`] (`mirrord verify-config`), [`schema_json`] (`mirrord schema`);
//! - [`to_json`] / [`from_json`]: the resolved config crosses into the layer
//!   as JSON in [`LAYER_CONFIG_ENV`];
//! - [`policy::Policy`] (layer, seccomp supervisor): compiled decisions;
//! - [`policy::env::merge`] (adapter, layer): the program's environment.
//!
//! This crate depends on nothing of ours, and the layer links it into the
//! user's process: keep dependencies light and never start threads or read
//! the process environment here.

mod de;
pub mod error;
pub mod load;
pub mod model;
pub mod policy;
pub mod schema;

pub use crate::{
    error::{ConfigError, Origin, Problem},
    load::{
        from_json, load, verify_file, CliOverrides, LoadOptions, DEFAULT_CONFIG_FILE, ENV_OVERRIDES,
    },
    model::{
        address::{AddressFilter, AddressMatch, Protocol},
        agent::{AgentConfig, LogLevel},
        env::EnvConfig,
        fs::{FsConfig, FsMode, PathPattern},
        network::{
            DnsConfig, DnsFilter, HostPattern, NetworkConfig, OutgoingConfig, OutgoingFilter,
        },
        target::{InvalidTarget, Target, TargetConfig},
        FeatureConfig, MirrordConfig,
    },
    schema::schema_json,
};

/// The environment variable the resolved config (as [`to_json`]) is passed
/// to the layer in.
pub const LAYER_CONFIG_ENV: &str = "MIRRORD_LAYER_CONFIG";

/// The resolved config as compact JSON; [`from_json`] reads it back unchanged.
pub fn to_json(config: &MirrordConfig) -> String {
    // Every type here serializes to JSON (string map keys, no non-finite floats).
    serde_json::to_string(config).unwrap_or_default()
}

#[cfg(test)]
mod tests;
