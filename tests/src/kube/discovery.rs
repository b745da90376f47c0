//! The discovery documents clients read before anything else: `/version`,
//! `/api`, `/apis`, and one `APIResourceList` per group version.

use serde_json::{json, Value};

use super::kinds::{groups, KINDS};

/// The Kubernetes minor version the server claims unless the fixture says
/// otherwise (kubectl picks its own version from it).
pub const MINOR: u32 = 33;

pub fn version(minor: u32) -> Value {
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

/// `/apis`: the named groups.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/<group>/<version>`: its resources, with the pod
/// subresources clients look for.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| k.discovery_entry())
        .collect();
    if resources.is_empty() {
        return None;
    }
    if group.is_empty() {
        for (sub, verbs) in [
            ("pods/portforward", json!(["create", "get"])),
            (
                "pods/ephemeralcontainers",
                json!(["get", "patch", "update"]),
            ),
            ("pods/status", json!(["get"])),
        ] {
            resources.push(json!({"name": sub, "namespaced": true, "kind": if sub == "pods/portforward" { "PodPortForwardOptions" } else { "Pod" }, "verbs": verbs}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
