//! The HTTP side: one hyper service that checks the bearer token and RBAC,
//! then answers discovery, list (as a list or a kubectl `Table`), watch
//! (JSON lines, streamed), get, create, delete and port-forward.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::discovery;
use super::fixture::Settings;
use super::openapi;
use super::routes::{query_pairs, route, ObjectRoute, Route};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Query, Store};
use super::table::table;

pub type Body = BoxBody<Bytes, Infallible>;

/// What every request handler shares.
pub struct State {
    pub store: Store,
    pub settings: Settings,
    /// `127.0.0.1:PORT`, for `/api`'s server address.
    pub address: String,
    /// Every request as `METHOD PATH?QUERY`, with `upgrade: U` (and the
    /// offered WebSocket subprotocols) for upgrades, in arrival order.
    pub requests: std::sync::Mutex<Vec<String>>,
    /// Test hooks: each runs once, after the first request whose line (as
    /// in [`State::requests`], without the upgrade part) starts with its
    /// prefix has been handled and before its answer is sent.
    pub hooks: std::sync::Mutex<Vec<Hook>>,
}

/// A test's change to the store at a precise point of a client's requests
/// (see [`super::FakeApiServer::after_request`]).
pub struct Hook {
    pub prefix: String,
    pub action: Box<dyn FnOnce(&Store) + Send>,
}

impl State {
    /// Runs (and drops) the hooks that wait for `line`.
    fn run_hooks(&self, line: &str) {
        let due: Vec<Hook> = match self.hooks.lock() {
            Ok(mut hooks) => {
                let (due, left) = hooks.drain(..).partition(|h| line.starts_with(&h.prefix));
                *hooks = left;
                due
            }
            Err(_) => Vec::new(),
        };
        for hook in due {
            (hook.action)(&self.store);
        }
    }

    fn record(&self, req: &Request<hyper::body::Incoming>) {
        let mut line = format!("{} {}", req.method(), req.uri());
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(upgrade) = header("upgrade") {
            line.push_str(&format!(" upgrade: {upgrade}"));
            if let Some(protocols) = header("sec-websocket-protocol") {
                line.push_str(&format!(" ({protocols})"));
            }
        }
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(line);
        }
    }
}

/// Answers one request; never fails at the HTTP level.
pub async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    state.record(&req);
    let line = format!("{} {}", req.method(), req.uri());
    let response = match dispatch(&state, req).await {
        Ok(response) => response,
        Err(e) => json_response(
            StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &e.to_status(),
        ),
    };
    state.run_hooks(&line);
    Ok(response)
}

async fn dispatch(
    state: &Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    if let Some(token) = &state.settings.token {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(ApiError::unauthorized());
        }
    }
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    let path = req.uri().path();
    if path == "/openapi/v3" {
        return ok(openapi::discovery());
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        return openapi::document(gv)
            .map(|d| json_response(StatusCode::OK, d))
            .ok_or_else(|| ApiError::not_found("openapi", gv));
    }
    match route(path) {
        Route::Version => ok(discovery::version(
            state.settings.minor_version.unwrap_or(discovery::MINOR),
        )),
        Route::CoreVersions => ok(discovery::core_versions(&state.address)),
        Route::Groups => ok(discovery::group_list()),
        Route::Resources { group, version } => discovery::resource_list(&group, &version)
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::not_found("groupversion", &format!("{group}/{version}"))),
        Route::NotFound => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: format!(
                "the server could not find the requested resource ({})",
                req.uri().path()
            ),
        }),
        Route::Object(target) => object(state, req, target).await,
    }
}

async fn object(
    state: &Arc<State>,
    req: Request<hyper::body::Incoming>,
    target: ObjectRoute,
) -> Result<Response<Body>, ApiError> {
    let params = query_pairs(req.uri().query().unwrap_or(""));
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let watching = matches!(param("watch"), Some("true" | "1"));
    let ns = target.namespace.as_deref();
    let kind = target.kind;
    let verb = match (req.method(), &target.name, &target.subresource) {
        (&Method::GET, _, Some(sub)) if sub == "portforward" => "create",
        (&Method::POST, _, Some(_)) => "create",
        (&Method::GET, None, _) if watching => "watch",
        (&Method::GET, None, _) => "list",
        (&Method::GET, Some(_), _) => "get",
        (&Method::POST, None, _) => "create",
        (&Method::DELETE, Some(_), _) => "delete",
        (&Method::PATCH, Some(_), Some(sub)) if sub == "ephemeralcontainers" => "patch",
        (method, _, _) => {
            return Err(ApiError {
                code: 405,
                reason: "MethodNotAllowed",
                message: format!(
                    "the server does not allow this method on the requested resource ({method})"
                ),
            })
        }
    };
    let plural = match &target.subresource {
        Some(sub) => format!("{}/{sub}", kind.plural),
        None => kind.plural.to_owned(),
    };
    if state.settings.forbids(verb, &plural, ns) {
        return Err(ApiError::forbidden(
            &state.settings.user,
            verb,
            &plural,
            kind.group,
            ns,
        ));
    }
    let wants_table = req
        .headers()
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    match (verb, target.name.as_deref(), target.subresource.as_deref()) {
        ("create", Some(name), Some("portforward")) => {
            let pod = state.store.get(kind, ns, name)?;
            let ports = params
                .iter()
                .filter(|(k, _)| k == "ports")
                .flat_map(|(_, v)| {
                    v.split(',')
                        .map(str::trim)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .map(|p| {
                    p.parse::<u16>()
                        .map_err(|_| ApiError::bad_request(format!("invalid port \"{p}\"")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            super::portforward::upgrade(req, &pod, ports)
        }
        ("list" | "watch", None, None) => {
            let query = Query {
                namespace: ns.map(str::to_owned),
                labels: LabelSelector::parse(param("labelSelector").unwrap_or(""))
                    .map_err(ApiError::bad_request)?,
                fields: FieldSelector::parse(param("fieldSelector").unwrap_or(""))
                    .map_err(ApiError::bad_request)?,
            };
            if watching {
                let from = match param("resourceVersion") {
                    None | Some("") => None,
                    Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion \"{rv}\""))
                    })?),
                };
                let timeout = param("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(1800);
                return watch(state, kind, query, from, Duration::from_secs(timeout));
            }
            let (items, rv) = state.store.list(kind, &query);
            if wants_table {
                return Ok(json_response(StatusCode::OK, &table(kind, &items, rv)));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": kind.list_kind(),
                    "apiVersion": kind.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                }),
            ))
        }
        ("get", Some(name), sub) => {
            let object = state.store.get(kind, ns, name)?;
            if sub.is_some_and(|s| s != "status" && s != "ephemeralcontainers") {
                return Err(ApiError::not_found(&plural, name));
            }
            if wants_table {
                let rv = state.store.resource_version();
                return Ok(json_response(StatusCode::OK, &table(kind, &[object], rv)));
            }
            Ok(json_response(StatusCode::OK, &object))
        }
        ("create", None, None) => {
            let strict = param("fieldValidation") == Some("Strict");
            let object = json_body(req).await?;
            if strict {
                strict_fields(kind, &object)?;
            }
            let created = state.store.create(kind, ns, object)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        ("patch", Some(name), Some("ephemeralcontainers")) => {
            let patch = json_body(req).await?;
            let added = patch["spec"]["ephemeralContainers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let patched = state.store.update(kind, ns, name, |pod| {
                let list = &mut pod["spec"]["ephemeralContainers"];
                if !list.is_array() {
                    *list = json!([]);
                }
                if let Some(list) = list.as_array_mut() {
                    for container in added {
                        if !list.iter().any(|c| c["name"] == container["name"]) {
                            list.push(container);
                        }
                    }
                }
            })?;
            Ok(json_response(StatusCode::OK, &patched))
        }
        ("delete", Some(name), None) => {
            let deleted = state.store.delete(kind, ns, name)?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        _ => Err(ApiError::bad_request(format!(
            "{verb} is not supported on {plural}"
        ))),
    }
}

/// `fieldValidation=Strict`: a field the kind's schema does not have is a
/// 400, worded as the API server words it.
fn strict_fields(kind: &super::kinds::Kind, object: &Value) -> Result<(), ApiError> {
    let unknown = openapi::unknown_fields(kind, object).unwrap_or_default();
    if unknown.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        fields.join(", ")
    )))
}

/// A watch: the replayed changes, then live ones, one JSON object per line,
/// until `timeout` (the server's `timeoutSeconds`).
fn watch(
    state: &Arc<State>,
    kind: &'static super::kinds::Kind,
    query: Query,
    from: Option<u64>,
    timeout: Duration,
) -> Result<Response<Body>, ApiError> {
    let (initial, receiver) = state.store.watch(kind, &query, from)?;
    let line = |event: &str, object: &Value| {
        let mut text =
            serde_json::to_vec(&json!({"type": event, "object": object})).unwrap_or_default();
        text.push(b'\n');
        Bytes::from(text)
    };
    let first: Vec<Bytes> = initial
        .iter()
        .map(|c| line(c.event.as_str(), &c.object))
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    let live = futures::stream::unfold(receiver, move |mut receiver| {
        let query = query.clone();
        async move {
            loop {
                let next = tokio::time::timeout_at(deadline, receiver.recv()).await;
                match next {
                    Ok(Ok(change)) if Store::selects(kind, &query, &change) => {
                        return Some((line(change.event.as_str(), &change.object), receiver))
                    }
                    Ok(Ok(_)) => continue,
                    // Fell behind: end the watch; the client relists.
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => return None,
                    Ok(Err(_)) | Err(_) => return None,
                }
            }
        }
    });
    let stream = futures::stream::iter(first)
        .chain(live)
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The request's body as JSON.
async fn json_body(req: Request<hyper::body::Incoming>) -> Result<Value, ApiError> {
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
