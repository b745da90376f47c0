//! mirrord's configuration: the model (serde + schemars), loading from
//! JSON/TOML/YAML with `MIRRORD_*` and CLI overrides, validation with precise
//! errors, the JSON schema, and the local/remote policy the layer applies on
//! every hooked call.
//!
//! Entry points:
//! - [`load()`] (adapter): file < env < CLI, every problem reported at once;
//! - [`verify_file`] (`mirrord verify-config`), [`schema_json`] (`mirrord schema`);
//! - [`parse_document`] / [`check_document`] / [`schema_value`] (the IDE
//!   service): the same checks on a document an editor holds;
//! - [`to_json`] / [`from_json`]: the resolved config crosses into the layer
//!   as JSON in [`LAYER_CONFIG_ENV`];
//! - [`policy::Policy`] (layer, seccomp supervisor): compiled decisions;
//! - [`policy::env::merge`] (adapter, layer): the program's environment.
//!
//! How a file becomes a [`MirrordConfig`]: JSON (with comments and trailing
//! commas, which `load/jsonc.rs` blanks to spaces so every offset stays),
//! TOML and YAML are parsed into one `serde_json::Value` tree (syntax errors
//! carry file, line and column);
//! the typed model is deserialized from that tree through our own
//! deserializer, whose structured error lets messages name the bad value and
//! the allowed ones, and `serde_path_to_error` supplies the key path. After
//! each error the bad key or value is dropped and deserialization runs again,
//! so every problem of a file is reported at once. Values that have a syntax
//! of their own (targets, filter entries, regexes) are parsed while
//! deserializing, so their errors carry key paths too.
//!
//! **Architecture invariants.**
//! - This crate depends on nothing of ours. The layer links it into the
//!   user's process: dependencies stay light, and nothing here starts a
//!   thread, reads the process environment (callers pass it in) or prints.
//! - The policies are built once and then only read; their `route`/`remote`
//!   methods never allocate on the local path and never panic on any input.
//! - Doc comments on model fields are user documentation: they become
//!   `schema/mirrord.schema.json`, which a test keeps in sync.
//!
//! **Shortcuts.** Errors in TOML and YAML files name the key path but not the
//! line of a *value* error (only syntax errors have lines), because the typed
//! pass runs on the format-neutral tree; a language server wanting ranges
//! maps the key path back onto its own parse of the document.

mod de;
pub mod error;
pub mod load;
pub mod model;
pub mod policy;
pub mod schema;

pub use crate::{
    de::error::edit_distance,
    error::{split_key_path, ConfigError, KeySegment, Origin, Problem},
    load::{
        check_document, from_json, load, parse_document, verify_file, CliOverrides, Format,
        LoadOptions, DEFAULT_CONFIG_FILE, ENV_OVERRIDES,
    },
    model::{
        address::{AddressFilter, AddressMatch, Protocol},
        agent::{AgentConfig, LogLevel},
        env::EnvConfig,
        fs::{FsConfig, FsMode, PathPattern},
        incoming::{ConcurrentSteal, HttpFilterConfig, HttpPattern, IncomingConfig, IncomingMode},
        interception::Interception,
        network::{
            DnsConfig, DnsFilter, HostPattern, NetworkConfig, OutgoingConfig, OutgoingFilter,
        },
        target::{InvalidTarget, Target, TargetConfig},
        FeatureConfig, MirrordConfig,
    },
    schema::{schema_json, schema_value},
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
