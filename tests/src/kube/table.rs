//! Server-side printing: the `Table` (meta.k8s.io/v1) kubectl asks for with
//! `Accept: application/json;as=Table;...`, with the columns kubectl shows
//! for pods and a name/age table for every other kind.

use serde_json::{json, Value};

use super::clock;
use super::kinds::Kind;

/// The table of a list of objects.
pub fn table(kind: &Kind, items: &[Value], rv: u64) -> Value {
    let now = clock::now_secs();
    let mut columns = vec![column("Name", "string", "name")];
    if kind.kind == "Pod" {
        columns.push(column("Ready", "string", ""));
        columns.push(column("Status", "string", ""));
        columns.push(column("Restarts", "string", ""));
    }
    columns.push(column("Age", "string", ""));
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let meta = &item["metadata"];
            let age = meta["creationTimestamp"]
                .as_str()
                .and_then(clock::parse)
                .map(|t| clock::age(t, now))
                .unwrap_or_else(|| "<unknown>".to_owned());
            let mut cells = vec![meta["name"].clone()];
            if kind.kind == "Pod" {
                cells.extend(pod_cells(item));
            }
            cells.push(json!(age));
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn column(name: &str, kind: &str, format: &str) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": name, "priority": 0})
}

/// READY (`1/2`), STATUS (the phase) and RESTARTS.
fn pod_cells(pod: &Value) -> [Value; 3] {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    [
        json!(format!("{ready}/{total}")),
        json!(pod["status"]["phase"].as_str().unwrap_or("Pending")),
        json!(restarts.to_string()),
    ]
}
