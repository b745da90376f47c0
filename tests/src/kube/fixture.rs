//! Loading the server's initial state from YAML or JSON: documents that are
//! objects or `List`s of objects, the namespaces they name, and a pod
//! status (running, ready, container IDs) for pods that come without one.
//!
//! One document of kind `FakeApiServer` (apiVersion `test.mirrord.dev/v1`)
//! sets the server's own behaviour: the bearer token it requires and the
//! requests RBAC refuses.

use serde::Deserialize;
use serde_json::{json, Value};

use super::kinds::Kind;
use super::store::Store;

/// Settings of the server itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    #[serde(default)]
    pub token: Option<String>,
    /// The user named in 403 messages.
    #[serde(default = "default_user")]
    pub user: String,
    /// Requests refused with 403.
    #[serde(default)]
    pub forbid: Vec<Forbid>,
    /// The minor version `/version` claims (kubectl's dispatcher picks its
    /// own version from it; 1.31+ tunnels port-forward in WebSocket).
    #[serde(default)]
    pub minor_version: Option<u32>,
}

fn default_user() -> String {
    "developer".to_owned()
}

/// A refused verb on a resource, in one namespace or everywhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forbid {
    /// `get`, `list`, `watch`, `create`, `delete`.
    pub verb: String,
    /// The plural: `pods`, `jobs`.
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Settings {
    /// Whether RBAC refuses this request.
    pub fn forbids(&self, verb: &str, plural: &str, ns: Option<&str>) -> bool {
        self.forbid.iter().any(|f| {
            f.verb == verb
                && f.resource == plural
                && (f.namespace.is_none() || f.namespace.as_deref() == ns)
        })
    }
}

/// Parses a fixture (YAML, any number of `---` documents; JSON is YAML) into
/// a store and the server settings.
pub fn load(text: &str) -> anyhow::Result<(Store, Settings)> {
    let mut objects = Vec::new();
    let mut settings = Settings::default();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        match value["kind"].as_str() {
            Some("List") => objects.extend(value["items"].as_array().cloned().unwrap_or_default()),
            Some("FakeApiServer") => settings = serde_json::from_value(value["spec"].clone())?,
            _ => objects.push(value),
        }
    }
    let store = Store::default();
    let namespace_kind = kind_of(&json!({"apiVersion": "v1", "kind": "Namespace"}))?;
    let mut namespaces = vec!["default".to_owned()];
    for object in &objects {
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            if !namespaces.iter().any(|n| n == ns) {
                namespaces.push(ns.to_owned());
            }
        }
    }
    let explicit: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    for ns in namespaces
        .iter()
        .filter(|n| !explicit.contains(&n.as_str()))
    {
        store
            .create(namespace_kind, None, json!({"metadata": {"name": ns}}))
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    }
    // Namespaces first, so every object's namespace exists when it is added.
    objects.sort_by_key(|o| o["kind"] != "Namespace");
    for mut object in objects {
        let kind = kind_of(&object)?;
        if kind.kind == "Namespace" {
            object["status"] = json!({"phase": "Active"});
        }
        if kind.kind == "Pod" && object.get("status").is_none() {
            complete_pod_status(&mut object);
        }
        let ns = kind.namespaced.then(|| {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        });
        store
            .create(kind, ns.as_deref(), object)
            .map_err(|e| anyhow::anyhow!("fixture: {}", e.message))?;
    }
    Ok((store, settings))
}

fn kind_of(object: &Value) -> anyhow::Result<&'static Kind> {
    let (api_version, kind) = (
        object["apiVersion"].as_str().unwrap_or(""),
        object["kind"].as_str().unwrap_or(""),
    );
    Kind::of_object(api_version, kind).ok_or_else(|| {
        anyhow::anyhow!("fixture: {api_version} {kind} is not a kind this server serves")
    })
}

/// A running pod whose containers are all ready, on `node-1`, each
/// container with a stable `containerd://` ID derived from its names.
pub fn complete_pod_status(pod: &mut Value) {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let container = c["name"].as_str().unwrap_or("");
            json!({
                "name": container,
                "image": c["image"],
                "ready": true,
                "started": true,
                "restartCount": 0,
                "containerID": format!("containerd://{}", container_id(&ns, &name, container)),
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            })
        })
        .collect();
    if pod["spec"]["nodeName"].is_null() {
        pod["spec"]["nodeName"] = json!("node-1");
    }
    pod["status"] = json!({
        "phase": "Running",
        "hostIP": "192.0.2.1",
        "podIP": "192.0.2.10",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
        ],
        "containerStatuses": statuses,
    });
}

/// A 64-hex-digit ID, stable for one namespace, pod and container.
pub fn container_id(ns: &str, pod: &str, container: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8..4 {
        for b in ns
            .bytes()
            .chain([0])
            .chain(pod.bytes())
            .chain([0])
            .chain(container.bytes())
            .chain([round])
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::Query;

    const FIXTURE: &str = r#"
apiVersion: test.mirrord.dev/v1
kind: FakeApiServer
spec:
  forbid:
    - {verb: list, resource: pods, namespace: secret}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: main, image: web:1}]
---
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec: {selector: {matchLabels: {app: web}}}
"#;

    #[test]
    fn a_fixture_fills_namespaces_and_pod_status() {
        let (store, settings) = load(FIXTURE).unwrap();
        assert!(settings.forbids("list", "pods", Some("secret")));
        assert!(!settings.forbids("list", "pods", Some("shop")));
        let pods = Kind::by_plural("", "v1", "pods").unwrap();
        let pod = store.get(pods, Some("shop"), "web-1").unwrap();
        assert_eq!(pod["status"]["phase"], "Running");
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap();
        assert_eq!(
            id,
            format!("containerd://{}", container_id("shop", "web-1", "main"))
        );
        assert_eq!(id.len(), "containerd://".len() + 64);
        let ns = Kind::by_plural("", "v1", "namespaces").unwrap();
        let names: Vec<_> = store
            .list(ns, &Query::default())
            .0
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["default", "shop"]);
    }

    #[test]
    fn an_unknown_kind_is_named() {
        let Err(err) = load("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n") else {
            panic!("a Secret is not served");
        };
        assert!(err.to_string().contains("v1 Secret"), "{err}");
    }
}
