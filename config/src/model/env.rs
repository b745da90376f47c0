//! `feature.env`: which of the target's environment variables the program sees.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::de::shapes::{opt_string_or_list, string_or_list, FromBool};

/// Environment: `true` (the default: the target's variables are added),
/// `false` (none are) or a map.
///
/// The program starts with the local environment; the target's variables
/// are added on top (replacing local ones of the same name) when they pass
/// `include` and `exclude`; then `override` is applied. These are never
/// taken from the target: PATH, HOME, HOSTNAME, PWD, OLDPWD, SHLVL, TERM,
/// `_`, LD_PRELOAD, LD_LIBRARY_PATH and any MIRRORD_* variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Take variables from the target (default true). `"env": false` is
    /// `{"enabled": false}`; `override` still applies.
    #[serde(default = "yes")]
    pub enabled: bool,

    /// Only the target's variables matching one of these names are taken;
    /// `*` matches any run of characters. A `;`-separated string or a list,
    /// e.g. `"DB_*;API_KEY"`. Not set = all of them.
    #[serde(
        default,
        deserialize_with = "opt_string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub include: Option<Vec<String>>,

    /// The target's variables matching one of these names are not taken;
    /// `*` matches any run of characters. A `;`-separated string or a list.
    #[serde(
        default,
        deserialize_with = "string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub exclude: Vec<String>,

    /// Variables set to these values whatever the local or target environment says.
    #[serde(
        default,
        rename = "override",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub overrides: BTreeMap<String, String>,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig::from_bool(true)
    }
}

impl FromBool for EnvConfig {
    fn from_bool(enabled: bool) -> Self {
        EnvConfig {
            enabled,
            include: None,
            exclude: Vec::new(),
            overrides: BTreeMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}
