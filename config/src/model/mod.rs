//! The config model: the types of the file format, which are also the
//! resolved config handed to the layer (as JSON).
//!
//! Field doc comments are written for users: they become the descriptions
//! of `schema/mirrord.schema.json`.

pub mod address;
pub mod agent;
pub mod env;
pub mod fs;
pub mod incoming;
pub mod interception;
pub mod network;
pub(crate) mod pattern;
pub mod target;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::{
    agent::AgentConfig,
    env::EnvConfig,
    fs::FsConfig,
    interception::Interception,
    network::NetworkConfig,
    target::{k8s_name, TargetConfig},
};
use crate::{de::shapes::bool_or_map, de::shapes::string_or_list, error::Origin, error::Problem};

/// mirrord's configuration: runs a local program "inside" a remote target,
/// with the target's files, environment, DNS and outgoing connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mirrord config")]
pub struct MirrordConfig {
    /// The target: a string such as `"pod/api-7d9f/container/main"`, or a map
    /// with `path` and `namespace`.
    #[serde(default, deserialize_with = "target::deserialize_target_config")]
    #[schemars(schema_with = "crate::schema::string_or::<TargetConfig, target::Target>")]
    pub target: TargetConfig,

    /// What the program gets from the target.
    #[serde(default)]
    pub feature: FeatureConfig,

    /// How the agent is run.
    #[serde(default)]
    pub agent: AgentConfig,

    /// The kubeconfig context to use, e.g. `"staging"`. Default: the
    /// kubeconfig's `current-context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,

    /// The kubeconfig file. Default: as kubectl finds it (the files in
    /// `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service
    /// account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,

    /// Programs mirrord leaves alone (it does not hook them or their
    /// children), by executable name, e.g. `"bash"` or `["bash", "node"]`.
    /// A `;`-separated string is also accepted.
    #[serde(
        default,
        deserialize_with = "string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(schema_with = "crate::schema::string_or_list")]
    pub skip_processes: Vec<String>,
}

/// The features, each configurable on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Environment: `true` (the default: the target's variables are added),
    /// `false` (none are) or a map with `include`, `exclude` and `override`.
    ///
    /// The program starts with the local environment; the target's variables
    /// are added on top (replacing local ones of the same name) when they
    /// pass `include` and `exclude`; then `override` is applied. Never taken
    /// from the target: PATH, HOME, HOSTNAME, PWD, OLDPWD, SHLVL, TERM, `_`,
    /// LD_PRELOAD, LD_LIBRARY_PATH and any MIRRORD_* variable.
    #[serde(default, deserialize_with = "bool_or_map")]
    #[schemars(schema_with = "crate::schema::bool_or::<EnvConfig>")]
    pub env: EnvConfig,

    /// Files: a mode (`"read"`, the default) or a map with `mode` and path lists.
    ///
    /// Each file the program opens is decided by the first rule that matches
    /// its absolute path: 1. `not_found` (the program is told it does not
    /// exist); 2. `local`; 3. `read_only` (read from the target, an open for
    /// writing stays local); 4. `read_write`; 5. built in: `/etc/resolv.conf`,
    /// `/etc/hosts` and `/etc/hostname` are read from the target; 6. built in,
    /// modes `read` and `write` only: `/proc`, `/sys`, `/dev`, `/usr`, `/lib`,
    /// `/lib32`, `/lib64`, `/libx32`, `/bin`, `/sbin`, `/opt`, `/root`,
    /// `/home`, `/tmp`, `/var/tmp`, `/run`, `/snap`, `/nix` and `/etc` (with
    /// everything below them) stay local; 7. the mode's default. In mode
    /// `local` everything is local and the lists are ignored.
    #[serde(default, deserialize_with = "fs::deserialize_fs_config")]
    #[schemars(schema_with = "crate::schema::string_or::<FsConfig, fs::FsMode>")]
    pub fs: FsConfig,

    /// Incoming traffic, outgoing connections and DNS.
    #[serde(default)]
    pub network: NetworkConfig,

    /// How the program's calls are intercepted: `"auto"` (the default),
    /// `"layer"` or `"syscall"`.
    ///
    /// `"layer"` preloads mirrord's library into the program
    /// (`LD_PRELOAD`), which hooks libc: dynamic programs only. `"syscall"`
    /// installs a seccomp filter with user notification before the program
    /// starts: the file, socket and name syscalls of the program and its
    /// children stop in mirrord's supervisor whatever made them, so Go
    /// programs and statically linked ones (C with `-static`, Rust with
    /// musl, Zig) are covered; it needs a kernel with seccomp user
    /// notification (Linux 5.9 or later). `"auto"` picks `"syscall"` for Go
    /// binaries (they carry a `.go.buildinfo` section) and static binaries
    /// (no ELF interpreter), `"layer"` for everything else.
    #[serde(default)]
    pub interception: Interception,
}

impl MirrordConfig {
    /// Checks what the types alone cannot: cross-field and range rules.
    /// `origin_of` names where the value under a key path came from.
    pub(crate) fn check(&self, origin_of: &dyn Fn(&str) -> Origin) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(namespace) = &self.target.namespace {
            if let Err(message) = k8s_name(namespace, "namespace") {
                problems.push(Problem::new(origin_of("target.namespace"), message));
            }
        }
        if self.agent.startup_timeout == 0 {
            problems.push(Problem::new(
                origin_of("agent.startup_timeout"),
                "invalid value 0, expected a number of seconds of at least 1",
            ));
        }
        for (i, name) in self.skip_processes.iter().enumerate() {
            if name.trim().is_empty() {
                problems.push(Problem::new(
                    origin_of(&format!("skip_processes[{i}]")),
                    "empty process name",
                ));
            }
        }
        problems.extend(self.feature.network.incoming.check(origin_of));
        problems
    }
}
