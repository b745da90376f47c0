//! `mirrord ls`: the targets a user can pick in a namespace (or all), every
//! kind listed concurrently; a kind the cluster does not serve (no Argo
//! Rollouts CRD) is left out, and one RBAC refuses becomes a warning, so a
//! picker still shows the rest.

use futures::future::join_all;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::client::Cluster;
use super::error::{is_not_found, KubeError, Request};
use super::kinds::Kind;

/// What `mirrord ls -o json` prints (documented in the README).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listing {
    /// The namespace listed; `null` with `-A`.
    pub namespace: Option<String>,
    /// Every namespace, for a picker's namespace switch (empty when RBAC
    /// refuses listing namespaces).
    pub namespaces: Vec<String>,
    /// `targetless` first, then by kind, namespace and name.
    pub targets: Vec<TargetEntry>,
    /// Kinds that could not be listed, and why.
    pub warnings: Vec<String>,
}

/// One pickable target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetEntry {
    /// What goes in `target.path`: `deployment/web`, `pod/x/container/c`.
    pub path: String,
    /// `pod`, `deployment`, ... or `targetless`.
    pub kind: String,
    pub namespace: Option<String>,
    /// Whether it has a running, ready pod (`null` when not known: services).
    pub ready: Option<bool>,
}

/// Lists every kind in `namespace` (`None`: every namespace).
pub async fn list(cluster: &Cluster, namespace: Option<&str>) -> Result<Listing, KubeError> {
    let kinds = join_all(
        Kind::ALL
            .iter()
            .map(|kind| list_kind(cluster, *kind, namespace)),
    );
    let namespaces = list_namespaces(cluster);
    let (per_kind, namespaces) = futures::join!(kinds, namespaces);
    let mut targets = vec![TargetEntry {
        path: "targetless".into(),
        kind: "targetless".into(),
        namespace: None,
        ready: Some(true),
    }];
    let mut warnings = Vec::new();
    for result in per_kind {
        match result {
            Ok(entries) => targets.extend(entries),
            Err(e @ (KubeError::Forbidden { .. } | KubeError::Api { .. })) => {
                warnings.push(e.to_string())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Listing {
        namespace: namespace.map(str::to_owned),
        namespaces,
        targets,
        warnings,
    })
}

async fn list_kind(
    cluster: &Cluster,
    kind: Kind,
    namespace: Option<&str>,
) -> Result<Vec<TargetEntry>, KubeError> {
    let resource = kind.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &resource),
        None => Api::all_with(cluster.client.clone(), &resource),
    };
    let items = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        // The kind is not served here (a CRD that is not installed).
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => {
            return Err(KubeError::from_api(
                e,
                Request {
                    verb: "list",
                    resource: &kind.resource_name(),
                    namespace,
                    url: &cluster.url,
                },
            ))
        }
    };
    let mut entries: Vec<TargetEntry> = items.iter().flat_map(|o| entries_of(kind, o)).collect();
    entries.sort_by(|a, b| (&a.namespace, &a.path).cmp(&(&b.namespace, &b.path)));
    Ok(entries)
}

/// A pod is listed as `pod/NAME`, and, with several containers, once per
/// container too; every other object once.
fn entries_of(kind: Kind, object: &DynamicObject) -> Vec<TargetEntry> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let entry = |path: String, ready: Option<bool>| TargetEntry {
        path,
        kind: kind.word().to_owned(),
        namespace: object.metadata.namespace.clone(),
        ready,
    };
    let data = &object.data;
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let ready = match kind {
        Kind::Pod => Some(
            data["status"]["phase"] == "Running"
                && data["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                }),
        ),
        Kind::Deployment | Kind::StatefulSet | Kind::Rollout => {
            Some(count(&data["status"]["readyReplicas"]) > 0)
        }
        Kind::DaemonSet => Some(count(&data["status"]["numberReady"]) > 0),
        Kind::Job => {
            Some(count(&data["status"]["active"]) > 0 || count(&data["status"]["ready"]) > 0)
        }
        Kind::CronJob => Some(
            data["status"]["active"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
        ),
        Kind::Service => None,
    };
    let mut out = vec![entry(format!("{}/{name}", kind.word()), ready)];
    if kind == Kind::Pod {
        let containers: Vec<&str> = data["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        if containers.len() > 1 {
            out.extend(
                containers
                    .iter()
                    .map(|c| entry(format!("pod/{name}/container/{c}"), ready)),
            );
        }
    }
    out
}

async fn list_namespaces(cluster: &Cluster) -> Vec<String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let mut names: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            names.sort();
            names
        }
        Err(_) => Vec::new(),
    }
}

/// The listing as a terminal table: `NAMESPACE  TARGET  READY`.
pub fn text(listing: &Listing) -> String {
    let rows: Vec<(String, &str, &str)> = listing
        .targets
        .iter()
        .map(|t| {
            let ready = match t.ready {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            (
                t.namespace.clone().unwrap_or_else(|| "-".into()),
                t.path.as_str(),
                ready,
            )
        })
        .collect();
    let width_ns = rows
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .max("NAMESPACE".len());
    let width_path = rows
        .iter()
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0)
        .max("TARGET".len());
    let mut out = format!(
        "{:width_ns$}  {:width_path$}  READY\n",
        "NAMESPACE", "TARGET"
    );
    for (ns, path, ready) in rows {
        out.push_str(&format!("{ns:width_ns$}  {path:width_path$}  {ready}\n"));
    }
    for warning in &listing.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}
