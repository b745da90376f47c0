//! The OpenAPI v3 documents kubectl reads before `create -f` and for
//! `explain`: `/openapi/v3` lists one document per group/version, and each
//! holds the real schemas of its kinds (with their descriptions, from
//! k8s-openapi's `schemars` feature, which is generated from Kubernetes'
//! own document) and, per kind, the POST and PATCH operations with the
//! `fieldValidation` query parameter. Seeing that parameter, kubectl leaves
//! field validation to the server and sends `fieldValidation=Strict`,
//! which [`unknown_fields`] answers as the API server does.
//!
//! Argo Rollouts (a CRD) has no schema here, and is left out.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{apps, batch, core};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::kinds::Kind;

/// The documents, by group/version path (`api/v1`, `apis/apps/v1`).
fn documents() -> &'static BTreeMap<String, Value> {
    static DOCUMENTS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    DOCUMENTS.get_or_init(build)
}

/// `/openapi/v3`: where each group/version's document is.
pub fn discovery() -> Value {
    let paths: Map<String, Value> = documents()
        .keys()
        .map(|gv| {
            let url = format!("/openapi/v3/{gv}?hash={}", hash(gv));
            (gv.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// `/openapi/v3/<gv>`: one group/version's document.
pub fn document(gv: &str) -> Option<&'static Value> {
    documents().get(gv)
}

/// What `fieldValidation=Strict` refuses: the fields of `object` (of
/// `kind`) that its schema does not have, as paths (`spec.foo`,
/// `spec.containers[0].bar`). `None` when the kind has no schema here.
pub fn unknown_fields(kind: &Kind, object: &Value) -> Option<Vec<String>> {
    let document = documents().get(&gv_path(kind))?;
    let schemas = document["components"]["schemas"].as_object()?;
    let schema = schemas.get(schema_name(kind)?)?;
    let mut unknown = Vec::new();
    walk(object, schema, schemas, "", &mut unknown);
    Some(unknown)
}

fn walk(
    value: &Value,
    schema: &Value,
    schemas: &Map<String, Value>,
    at: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(schema, schemas);
    if schema["x-kubernetes-preserve-unknown-fields"] == json!(true) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            if properties.is_none() && !additional.is_object() {
                return;
            }
            for (key, field) in fields {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => walk(field, sub, schemas, &path, out),
                    None if additional.is_object() => walk(field, additional, schemas, &path, out),
                    None => out.push(path),
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &schema["items"], schemas, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Follows `$ref` and a single `allOf` (how a described reference looks).
fn resolve<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    let mut schema = schema;
    for _ in 0..8 {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.trim_start_matches("#/components/schemas/");
            match schemas.get(name) {
                Some(next) => schema = next,
                None => return schema,
            }
        } else if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
            schema = only;
        } else {
            return schema;
        }
    }
    schema
}

/// `api/v1`, `apis/apps/v1`.
fn gv_path(kind: &Kind) -> String {
    match kind.group {
        "" => format!("api/{}", kind.version),
        group => format!("apis/{group}/{}", kind.version),
    }
}

/// A stable stand-in for the document's hash (kubectl caches by it).
fn hash(gv: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in gv.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// The schema of each kind that has one, added to `generator`.
fn add_schema(kind: &Kind, generator: &mut SchemaGenerator) -> Option<&'static str> {
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
        let _ = generator.subschema_for::<T>();
    }
    match (kind.group, kind.kind) {
        ("", "Namespace") => add::<core::v1::Namespace>(generator),
        ("", "Pod") => add::<core::v1::Pod>(generator),
        ("", "Service") => add::<core::v1::Service>(generator),
        ("", "Event") => add::<core::v1::Event>(generator),
        ("apps", "Deployment") => add::<apps::v1::Deployment>(generator),
        ("apps", "ReplicaSet") => add::<apps::v1::ReplicaSet>(generator),
        ("apps", "StatefulSet") => add::<apps::v1::StatefulSet>(generator),
        ("apps", "DaemonSet") => add::<apps::v1::DaemonSet>(generator),
        ("batch", "Job") => add::<batch::v1::Job>(generator),
        ("batch", "CronJob") => add::<batch::v1::CronJob>(generator),
        _ => return None,
    }
    schema_name(kind)
}

/// The schema's name: `io.k8s.api.core.v1.Pod`.
fn schema_name(kind: &Kind) -> Option<&'static str> {
    Some(match (kind.group, kind.kind) {
        ("", "Namespace") => "io.k8s.api.core.v1.Namespace",
        ("", "Pod") => "io.k8s.api.core.v1.Pod",
        ("", "Service") => "io.k8s.api.core.v1.Service",
        ("", "Event") => "io.k8s.api.core.v1.Event",
        ("apps", "Deployment") => "io.k8s.api.apps.v1.Deployment",
        ("apps", "ReplicaSet") => "io.k8s.api.apps.v1.ReplicaSet",
        ("apps", "StatefulSet") => "io.k8s.api.apps.v1.StatefulSet",
        ("apps", "DaemonSet") => "io.k8s.api.apps.v1.DaemonSet",
        ("batch", "Job") => "io.k8s.api.batch.v1.Job",
        ("batch", "CronJob") => "io.k8s.api.batch.v1.CronJob",
        _ => return None,
    })
}

fn build() -> BTreeMap<String, Value> {
    let mut kinds_by_gv: BTreeMap<String, Vec<&'static Kind>> = BTreeMap::new();
    for kind in super::kinds::KINDS {
        kinds_by_gv.entry(gv_path(kind)).or_default().push(kind);
    }
    let mut documents = BTreeMap::new();
    for (gv, kinds) in kinds_by_gv {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut paths = Map::new();
        let mut named = Vec::new();
        for kind in kinds {
            let Some(name) = add_schema(kind, &mut generator) else {
                continue;
            };
            named.push((name, kind));
            let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
            let field_validation = json!({
                "name": "fieldValidation",
                "in": "query",
                "description": "How the server treats unknown or duplicate fields: Ignore, Warn or Strict.",
                "schema": {"type": "string", "uniqueItems": true},
            });
            let operation = |verb: &str| {
                json!({
                    "operationId": format!("{verb}{}", kind.kind),
                    "parameters": [field_validation.clone()],
                    "x-kubernetes-action": verb,
                    "x-kubernetes-group-version-kind": gvk.clone(),
                    "responses": {"200": {"description": "OK"}},
                })
            };
            let base = match kind.namespaced {
                true => format!("/{gv}/namespaces/{{namespace}}/{}", kind.plural),
                false => format!("/{gv}/{}", kind.plural),
            };
            paths.insert(base.clone(), json!({"post": operation("post")}));
            paths.insert(
                format!("{base}/{{name}}"),
                json!({"patch": operation("patch")}),
            );
        }
        if named.is_empty() {
            continue;
        }
        let mut schemas = generator.take_definitions(true);
        for (name, kind) in named {
            if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": kind.group, "version": kind.version, "kind": kind.kind}]),
                );
            }
        }
        documents.insert(
            gv,
            json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.33.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            }),
        );
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static Kind {
        Kind::by_plural("", "v1", "pods").expect("pods")
    }

    #[test]
    fn discovery_names_a_document_per_group_version_with_real_schemas() {
        let paths = discovery()["paths"].clone();
        for gv in ["api/v1", "apis/apps/v1", "apis/batch/v1"] {
            assert!(paths[gv]["serverRelativeURL"].is_string(), "{paths}");
        }
        let core = document("api/v1").expect("api/v1");
        let pod = &core["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert!(
            pod["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Pod is a collection of containers")),
            "{pod}"
        );
        let patch = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["parameters"][0]["name"], "fieldValidation");
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
    }

    #[test]
    fn strict_validation_names_every_unknown_field_by_its_path() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"any": "label"}, "colour": "red"},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always"}]},
        });
        assert_eq!(
            unknown_fields(pods(), &pod),
            Some(vec![
                "metadata.colour".to_owned(),
                "spec.containers[0].imagePullPolicyy".to_owned()
            ])
        );
        let fine = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(unknown_fields(pods(), &fine), Some(vec![]));
    }
}
