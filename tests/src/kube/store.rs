//! The in-memory object store: every object as JSON, one global
//! resourceVersion counter, and a log of changes that watches replay from
//! a resourceVersion and then follow live.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::kinds::Kind;
use super::selector::{labels_of, FieldSelector, LabelSelector};
use super::status::ApiError;

/// How many past changes a watch can start from.
const LOG_LEN: usize = 4096;

/// `ADDED`, `MODIFIED` or `DELETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: &'static Kind,
    pub event: EventType,
    pub object: Value,
}

/// What a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Query {
    fn selects(&self, kind: &Kind, object: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) => object["metadata"]["namespace"].as_str() == Some(ns.as_str()),
            None => true,
        };
        ns_ok
            && (Kind::of_object(
                object["apiVersion"].as_str().unwrap_or(""),
                object["kind"].as_str().unwrap_or(""),
            ) == Some(kind))
            && self.labels.matches(&labels_of(object))
            && self.fields.matches(object)
    }
}

/// The objects; a std `Mutex` because it is never held across an `.await`.
pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
}

#[derive(Default)]
struct Inner {
    /// (group/plural, namespace or "", name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    rv: u64,
    log: VecDeque<Change>,
    uid: u64,
}

fn key(kind: &Kind, ns: Option<&str>, name: &str) -> (String, String, String) {
    (
        format!("{}/{}", kind.group, kind.plural),
        ns.unwrap_or("").to_owned(),
        name.to_owned(),
    )
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: Mutex::new(Inner::default()),
            changes: broadcast::channel(LOG_LEN).0,
        }
    }
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// The objects a query selects, and the resourceVersion of the list.
    pub fn list(&self, kind: &Kind, query: &Query) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .values()
            .filter(|o| query.selects(kind, o))
            .cloned()
            .collect();
        (items, inner.rv)
    }

    pub fn get(&self, kind: &Kind, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&key(kind, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind.plural, name))
    }

    /// Stores a new object: fills in namespace, uid, resourceVersion,
    /// creationTimestamp and a name from `generateName`.
    pub fn create(
        &self,
        kind: &'static Kind,
        ns: Option<&str>,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        if !object.is_object() {
            return Err(ApiError::bad_request("the body is not a JSON object"));
        }
        if let Some(ns) = ns {
            if !inner.objects.contains_key(&key(namespace_kind(), None, ns)) {
                return Err(ApiError::not_found("namespaces", ns));
            }
        }
        inner.uid += 1;
        let uid = inner.uid;
        let meta = object
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .ok_or_else(|| ApiError::bad_request("no metadata"))?;
        if meta["name"].as_str().unwrap_or("").is_empty() {
            match meta["generateName"].as_str() {
                Some(prefix) => meta["name"] = json!(format!("{prefix}{:05x}", uid)),
                None => return Err(ApiError::bad_request("name or generateName is required")),
            }
        }
        let name = meta["name"].as_str().unwrap_or_default().to_owned();
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(format!("6f1c0d2e-0000-4000-8000-{uid:012x}"));
        if meta["creationTimestamp"].as_str().is_none() {
            meta["creationTimestamp"] = json!(super::clock::format(super::clock::now_secs()));
        }
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let k = key(kind, ns, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(kind.plural, &name));
        }
        let object = inner.record(kind, EventType::Added, object, &self.changes);
        inner.objects.insert(k, object.clone());
        Ok(object)
    }

    /// Changes a stored object in place (what controllers and the kubelet
    /// do to status); returns the new version.
    pub fn update(
        &self,
        kind: &'static Kind,
        ns: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let k = key(kind, ns, name);
        let mut object = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind.plural, name))?;
        change(&mut object);
        let object = inner.record(kind, EventType::Modified, object, &self.changes);
        inner.objects.insert(k, object.clone());
        Ok(object)
    }

    /// Removes an object (and, for a namespace, everything in it).
    pub fn delete(
        &self,
        kind: &'static Kind,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let object = inner
            .objects
            .remove(&key(kind, ns, name))
            .ok_or_else(|| ApiError::not_found(kind.plural, name))?;
        if kind.plural == "namespaces" {
            let inside: Vec<_> = inner
                .objects
                .iter()
                .filter(|((_, n, _), _)| n == name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in inside {
                inner.objects.remove(&k);
                let Some(kind) = Kind::of_object(
                    v["apiVersion"].as_str().unwrap_or(""),
                    v["kind"].as_str().unwrap_or(""),
                ) else {
                    continue;
                };
                inner.record(kind, EventType::Deleted, v, &self.changes);
            }
        }
        Ok(inner.record(kind, EventType::Deleted, object, &self.changes))
    }

    /// The changes a watch of `query` starts with, and the live feed after
    /// them (subscribed under the same lock, so nothing falls in between).
    /// Without a resourceVersion (or with "0") the watch starts with every
    /// selected object as `ADDED`.
    pub fn watch(
        &self,
        kind: &'static Kind,
        query: &Query,
        from: Option<u64>,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), ApiError> {
        let inner = self.lock();
        let receiver = self.changes.subscribe();
        let initial = match from {
            None | Some(0) => inner
                .objects
                .values()
                .filter(|o| query.selects(kind, o))
                .map(|o| Change {
                    rv: inner.rv,
                    kind,
                    event: EventType::Added,
                    object: o.clone(),
                })
                .collect(),
            Some(rv) => {
                let oldest = inner.log.front().map(|c| c.rv).unwrap_or(inner.rv + 1);
                if rv + 1 < oldest && rv < inner.rv {
                    return Err(ApiError::gone(rv));
                }
                inner
                    .log
                    .iter()
                    .filter(|c| c.rv > rv && c.kind == kind && query.selects(kind, &c.object))
                    .cloned()
                    .collect()
            }
        };
        Ok((initial, receiver))
    }

    /// Every change from now on (what controllers follow).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Whether a live change belongs to a watch of `query`.
    pub fn selects(kind: &Kind, query: &Query, change: &Change) -> bool {
        change.kind == kind && query.selects(kind, &change.object)
    }
}

impl Inner {
    /// Gives the object the next resourceVersion, logs and publishes it.
    fn record(
        &mut self,
        kind: &'static Kind,
        event: EventType,
        mut object: Value,
        changes: &broadcast::Sender<Change>,
    ) -> Value {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let change = Change {
            rv: self.rv,
            kind,
            event,
            object: object.clone(),
        };
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(change.clone());
        // No receiver is not an error: nobody is watching.
        let _ = changes.send(change);
        object
    }
}

fn namespace_kind() -> &'static Kind {
    Kind::by_plural("", "v1", "namespaces").expect("namespaces are a served kind")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static Kind {
        Kind::by_plural("", "v1", "pods").unwrap()
    }

    fn store_with_ns(ns: &str) -> Store {
        let store = Store::default();
        store
            .create(namespace_kind(), None, json!({"metadata": {"name": ns}}))
            .unwrap();
        store
    }

    #[test]
    fn create_fills_metadata_and_refuses_duplicates_and_missing_namespaces() {
        let store = store_with_ns("a");
        let pod = store
            .create(
                pods(),
                Some("a"),
                json!({"metadata": {"generateName": "agent-"}}),
            )
            .unwrap();
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("agent-"), "{name}");
        assert_eq!(pod["metadata"]["namespace"], "a");
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["resourceVersion"], "2");
        let again = json!({"metadata": {"name": name}});
        assert_eq!(
            store.create(pods(), Some("a"), again).unwrap_err().code,
            409
        );
        let err = store
            .create(pods(), Some("nope"), json!({"metadata": {"name": "x"}}))
            .unwrap_err();
        assert_eq!(err.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn a_watch_replays_from_its_resource_version_then_follows() {
        let store = store_with_ns("a");
        store
            .create(pods(), Some("a"), json!({"metadata": {"name": "one"}}))
            .unwrap();
        let rv = store.resource_version();
        store
            .create(pods(), Some("a"), json!({"metadata": {"name": "two"}}))
            .unwrap();
        let query = Query {
            namespace: Some("a".into()),
            ..Default::default()
        };
        let (initial, mut live) = store.watch(pods(), &query, Some(rv)).unwrap();
        assert_eq!(initial.len(), 1);
        assert_eq!(initial[0].object["metadata"]["name"], "two");
        store.delete(pods(), Some("a"), "one").unwrap();
        let change = live.try_recv().unwrap();
        assert_eq!(change.event, EventType::Deleted);
        assert_eq!(change.object["metadata"]["name"], "one");
        let (all, _) = store.watch(pods(), &query, None).unwrap();
        assert_eq!(all.len(), 1, "only `two` is left");
    }

    #[test]
    fn deleting_a_namespace_deletes_what_is_in_it() {
        let store = store_with_ns("a");
        store
            .create(pods(), Some("a"), json!({"metadata": {"name": "one"}}))
            .unwrap();
        store.delete(namespace_kind(), None, "a").unwrap();
        assert_eq!(store.list(pods(), &Query::default()).0.len(), 0);
    }
}
