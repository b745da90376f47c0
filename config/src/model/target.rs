//! `target`: what the local process runs "inside" (a pod, a workload, a local
//! process or nothing at all), parsed from the `kind/name` strings users write.

use std::{fmt, str::FromStr};

use schemars::{
    gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject},
    JsonSchema,
};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::de::shapes::{string_or_map, FromShortString};

/// The target section: `"target": "pod/x"` or `"target": {"path": "pod/x", "namespace": "ns"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// What to run "inside" of: `pod/<name>[/container/<name>]`,
    /// `deployment/<name>`, `statefulset/<name>`, `daemonset/<name>`,
    /// `job/<name>`, `cronjob/<name>`, `rollout/<name>` (each workload kind
    /// also takes `/container/<name>`), `service/<name>`, `pid/<number>` (a
    /// local process) or `targetless` (no target: the agent runs in the
    /// cluster without joining a pod). When not set, mirrord asks (in an
    /// IDE) or runs targetless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Target>,

    /// The Kubernetes namespace of the target. Defaults to the namespace of
    /// the current kube context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl FromShortString for TargetConfig {
    const EXPECTING: &'static str = "a target string like \"pod/<name>\"";

    fn from_short<E: de::Error>(s: &str) -> Result<Self, E> {
        let target = s.parse().map_err(|e: InvalidTarget| E::custom(e))?;
        Ok(TargetConfig {
            path: Some(target),
            namespace: None,
        })
    }
}

pub(crate) fn deserialize_target_config<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<TargetConfig, D::Error> {
    string_or_map(d)
}

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `pid/<number>`: a process on this machine; the agent joins its namespaces.
    Pid(u32),
    /// `targetless`: no target.
    Targetless,
    /// `pod/<name>[/container/<name>]`.
    Pod {
        name: String,
        container: Option<String>,
    },
    /// `deployment/<name>[/container/<name>]`.
    Deployment {
        name: String,
        container: Option<String>,
    },
    /// `statefulset/<name>[/container/<name>]`.
    StatefulSet {
        name: String,
        container: Option<String>,
    },
    /// `daemonset/<name>[/container/<name>]`.
    DaemonSet {
        name: String,
        container: Option<String>,
    },
    /// `job/<name>[/container/<name>]`.
    Job {
        name: String,
        container: Option<String>,
    },
    /// `cronjob/<name>[/container/<name>]`.
    CronJob {
        name: String,
        container: Option<String>,
    },
    /// `rollout/<name>[/container/<name>]` (Argo Rollouts).
    Rollout {
        name: String,
        container: Option<String>,
    },
    /// `service/<name>`: one of the pods behind the service.
    Service { name: String },
}

/// The error for a target string that does not parse; its message names the
/// string and lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{input}\" is not a valid target; {reason}")]
pub struct InvalidTarget {
    input: String,
    reason: String,
}

const FORMS: &str = "expected pid/<number>, targetless, pod/<name>[/container/<name>], \
deployment/<name>, statefulset/<name>, daemonset/<name>, job/<name>, cronjob/<name>, \
rollout/<name> (each optionally followed by /container/<name>) or service/<name>";

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(input: &str) -> Result<Self, InvalidTarget> {
        let fail = |reason: String| InvalidTarget {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        let kind = parts[0].to_ascii_lowercase();
        match (kind.as_str(), parts.as_slice()) {
            ("targetless", [_]) => Ok(Target::Targetless),
            ("pid", [_, pid]) => match pid.parse::<u32>() {
                Ok(0) | Err(_) => Err(fail(FORMS.replace(
                    "expected pid/<number>",
                    "expected pid/<number> (a process id above 0)",
                ))),
                Ok(pid) => Ok(Target::Pid(pid)),
            },
            ("service" | "svc", [_, name]) => Ok(Target::Service {
                name: k8s_name(name, "service").map_err(fail)?,
            }),
            (_, [_, name] | [_, name, "container", _]) if workload(&kind).is_some() => {
                let name = k8s_name(name, &kind).map_err(fail)?;
                let container = match parts.get(3) {
                    Some(c) => Some(k8s_name(c, "container").map_err(fail)?),
                    None => None,
                };
                workload(&kind)
                    .map(|build| build(name, container))
                    .ok_or_else(|| fail(FORMS.to_owned()))
            }
            _ => Err(fail(FORMS.to_owned())),
        }
    }
}

type Build = fn(String, Option<String>) -> Target;

fn workload(kind: &str) -> Option<Build> {
    let build: Build = match kind {
        "pod" | "pods" => |name, container| Target::Pod { name, container },
        "deployment" | "deploy" => |name, container| Target::Deployment { name, container },
        "statefulset" | "sts" => |name, container| Target::StatefulSet { name, container },
        "daemonset" | "ds" => |name, container| Target::DaemonSet { name, container },
        "job" => |name, container| Target::Job { name, container },
        "cronjob" | "cj" => |name, container| Target::CronJob { name, container },
        "rollout" => |name, container| Target::Rollout { name, container },
        _ => return None,
    };
    Some(build)
}

/// Checks a Kubernetes object name (RFC 1123: lowercase letters, digits, `-`
/// and `.`, starting and ending with a letter or digit, at most 253 long).
pub(crate) fn k8s_name(name: &str, what: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name.is_empty()
        && name.len() <= 253
        && name.chars().all(ok_char)
        && ok_end(name.chars().next())
        && ok_end(name.chars().last())
    {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{what} name \"{name}\" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name, container) = match self {
            Target::Pid(pid) => return write!(f, "pid/{pid}"),
            Target::Targetless => return f.write_str("targetless"),
            Target::Service { name } => return write!(f, "service/{name}"),
            Target::Pod { name, container } => ("pod", name, container),
            Target::Deployment { name, container } => ("deployment", name, container),
            Target::StatefulSet { name, container } => ("statefulset", name, container),
            Target::DaemonSet { name, container } => ("daemonset", name, container),
            Target::Job { name, container } => ("job", name, container),
            Target::CronJob { name, container } => ("cronjob", name, container),
            Target::Rollout { name, container } => ("rollout", name, container),
        };
        write!(f, "{kind}/{name}")?;
        match container {
            Some(container) => write!(f, "/container/{container}"),
            None => Ok(()),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Target {
    fn schema_name() -> String {
        "Target".to_owned()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some(
                    "^(targetless|pid/[0-9]+|(svc|service)/[a-z0-9.-]+|\
                     (pods?|deploy|deployment|sts|statefulset|ds|daemonset|job|cj|cronjob|rollout)/[a-z0-9.-]+(/container/[a-z0-9.-]+)?)$"
                        .to_owned(),
                ),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<Target, &str>) {
        let got = input.parse::<Target>().map_err(|e| e.to_string());
        match expected {
            Ok(target) => {
                assert_eq!(got, Ok(target.clone()), "{input}");
                // Display is the canonical form and parses back to the same target.
                assert_eq!(target.to_string().parse::<Target>(), Ok(target));
            }
            Err(fragment) => {
                let message = got.expect_err(input);
                assert!(message.contains(fragment), "{input}: {message}");
            }
        }
    }

    fn pod(name: &str, container: Option<&str>) -> Target {
        Target::Pod {
            name: name.into(),
            container: container.map(Into::into),
        }
    }

    #[test]
    fn targets() {
        check("pid/1234", Ok(Target::Pid(1234)));
        check("targetless", Ok(Target::Targetless));
        check("pod/web-1", Ok(pod("web-1", None)));
        check("pod/web-1/container/main", Ok(pod("web-1", Some("main"))));
        check("Pod/web-1", Ok(pod("web-1", None)));
        check(
            "deployment/api",
            Ok(Target::Deployment {
                name: "api".into(),
                container: None,
            }),
        );
        check(
            "cronjob/nightly/container/c",
            Ok(Target::CronJob {
                name: "nightly".into(),
                container: Some("c".into()),
            }),
        );
        check(
            "service/front",
            Ok(Target::Service {
                name: "front".into(),
            }),
        );
        check(
            "pid/abc",
            Err("\"pid/abc\" is not a valid target; expected pid/<number>"),
        );
        check("pid/0", Err("a process id above 0"));
        check(
            "pod/Web",
            Err("pod name \"Web\" is not a valid Kubernetes name"),
        );
        check("pod/", Err("pod name \"\" is not a valid"));
        check("pod/a/container/", Err("container name \"\""));
        check(
            "pod/a/sidecar/b",
            Err("expected pid/<number>, targetless, pod/<name>"),
        );
        check("service/a/container/b", Err("service/<name>"));
        check("node/x", Err("is not a valid target"));
        check("", Err("\"\" is not a valid target"));
    }
}
