//! `pods/NAME/portforward` over WebSocket, as the kubelet serves it with
//! the `v4.channel.k8s.io` subprotocol: every binary message is a channel
//! byte and data; port number `i` of the request uses channel `2i` for data
//! and `2i + 1` for errors, and the first message on each channel carries
//! the port as 2 bytes, little-endian.
//!
//! kubectl speaks SPDY/3.1 instead (`spdy::portforward`): either a plain
//! `Upgrade: SPDY/3.1` (kubectl up to 1.30) or, from 1.31, the same SPDY
//! bytes in WebSocket binary messages under the subprotocol
//! `SPDY/3.1+portforward.k8s.io`; both are answered here, and the ports come
//! from the SPDY streams' headers, not from the query.
//!
//! Where a pod's port really is comes from the pod's annotation
//! `test.mirrord.dev/port-<PORT>: 127.0.0.1:<real port>` (the stand-in pod
//! or local agent that plays the pod sets it).

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{combinators::BoxBody, BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role, Message};
use tokio_tungstenite::WebSocketStream;

use super::spdy;
use super::status::ApiError;

const PROTOCOL: &str = "v4.channel.k8s.io";
/// The WebSocket subprotocol kubectl 1.31+ tunnels SPDY in.
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
const ANNOTATION_PREFIX: &str = "test.mirrord.dev/port-";

/// The annotation naming where a pod's port is reachable from this machine.
pub fn port_annotation(port: u16) -> String {
    format!("{ANNOTATION_PREFIX}{port}")
}

/// Every port of `pod` and where it really is.
fn pod_ports(pod: &Value) -> HashMap<u16, String> {
    pod["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            let port = key.strip_prefix(ANNOTATION_PREFIX)?.parse().ok()?;
            Some((port, value.as_str()?.to_owned()))
        })
        .collect()
}

/// Answers `Upgrade: SPDY/3.1` (kubectl before 1.31) and serves
/// `portforward.k8s.io` on the upgraded connection.
fn upgrade_spdy(
    req: Request<hyper::body::Incoming>,
    pod: &Value,
) -> Result<Response<BoxBody<Bytes, Infallible>>, ApiError> {
    let offered = header(&req, "x-stream-protocol-version");
    if !offered
        .split(',')
        .any(|p| p.trim() == spdy::portforward::PROTOCOL)
    {
        return Err(ApiError::bad_request(format!(
            "port-forward: none of the offered stream protocols ({offered}) is {}",
            spdy::portforward::PROTOCOL
        )));
    }
    let targets = pod_ports(pod);
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                if let Err(e) = spdy::portforward::serve(TokioIo::new(upgraded), targets).await {
                    eprintln!("fake-apiserver: SPDY port-forward: {e}");
                }
            }
            Err(e) => eprintln!("fake-apiserver: SPDY upgrade failed: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", spdy::portforward::PROTOCOL)
        .body(Empty::new().boxed())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Carries a SPDY session in WebSocket binary messages: the session reads
/// and writes one end of an in-memory pipe, this pumps the other end.
async fn tunnel_spdy<S>(ws: WebSocketStream<S>, targets: HashMap<u16, String>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (session_end, pump_end) = tokio::io::duplex(256 * 1024);
    let session = tokio::spawn(spdy::portforward::serve(session_end, targets));
    let (mut sink, mut source) = ws.split();
    let (mut pipe_read, mut pipe_write) = tokio::io::split(pump_end);
    let outbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = pipe_read.read(&mut buf).await {
            if n == 0 || sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let inbound = async move {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(data) if pipe_write.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = pipe_write.shutdown().await;
    };
    tokio::join!(outbound, inbound);
    session.abort();
}

fn header<'a>(req: &'a Request<hyper::body::Incoming>, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Answers the upgrade and, once switched, forwards the requested ports of
/// `pod`; errors before the switch come back as a `Status`.
pub fn upgrade(
    req: Request<hyper::body::Incoming>,
    pod: &Value,
    ports: Vec<u16>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, ApiError> {
    if header(&req, "upgrade").eq_ignore_ascii_case("SPDY/3.1") {
        return upgrade_spdy(req, pod);
    }
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request("port-forward needs a WebSocket upgrade (no Sec-WebSocket-Key)")
        })?
        .to_owned();
    let offered = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|p| p.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let tunnel = offered.split(',').any(|p| p.trim() == SPDY_TUNNEL);
    if tunnel {
        let targets = pod_ports(pod);
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    tunnel_spdy(ws, targets).await;
                }
                Err(e) => eprintln!("fake-apiserver: port-forward upgrade failed: {e}"),
            }
        });
        return switching(&key, SPDY_TUNNEL);
    }
    if !offered.split(',').any(|p| p.trim() == PROTOCOL) {
        return Err(ApiError::bad_request(format!(
            "port-forward: none of the offered subprotocols ({offered}) is {PROTOCOL} \
             or {SPDY_TUNNEL}"
        )));
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "at least one port must be given in `ports`",
        ));
    }
    let targets: Vec<(u16, Option<String>)> = ports
        .iter()
        .map(|p| {
            let addr = pod["metadata"]["annotations"][port_annotation(*p)]
                .as_str()
                .map(str::to_owned);
            (*p, addr)
        })
        .collect();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                forward(ws, targets).await;
            }
            Err(e) => eprintln!("fake-apiserver: port-forward upgrade failed: {e}"),
        }
    });
    switching(&key, PROTOCOL)
}

/// The 101 answer to a WebSocket upgrade with `key`, choosing `protocol`.
fn switching(key: &str, protocol: &str) -> Result<Response<BoxBody<Bytes, Infallible>>, ApiError> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .header("sec-websocket-protocol", protocol)
        .body(Empty::new().boxed())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Relays between the WebSocket channels and one TCP connection per port.
async fn forward<S>(ws: WebSocketStream<S>, targets: Vec<(u16, Option<String>)>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let mut writers = Vec::new();
    for (i, (port, addr)) in targets.into_iter().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let port_bytes = port.to_le_bytes();
        for ch in [data_ch, err_ch] {
            let _ = out_tx
                .send(Message::binary(vec![ch, port_bytes[0], port_bytes[1]]))
                .await;
        }
        let stream = match addr {
            Some(addr) => super::pod_net::connect(&addr).await,
            None => Err(format!("port {port} is not open in the pod")),
        };
        match stream {
            Ok(stream) => {
                let (mut read, write) = stream.into_split();
                writers.push(Some(write));
                let tx = out_tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut frame = Vec::with_capacity(n + 1);
                                frame.push(data_ch);
                                frame.extend_from_slice(&buf[..n]);
                                if tx.send(Message::binary(frame)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    // The pod closed the connection: the kubelet ends the stream.
                    let _ = tx.send(Message::Close(None)).await;
                });
            }
            Err(reason) => {
                writers.push(None);
                let mut frame = vec![err_ch];
                frame.extend_from_slice(
                    format!("error forwarding port {port} to pod: {reason}").as_bytes(),
                );
                let _ = out_tx.send(Message::binary(frame)).await;
                let _ = out_tx.send(Message::Close(None)).await;
            }
        }
    }
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let close = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(Ok(message)) = source.next().await {
        let data = match message {
            Message::Binary(data) => data,
            Message::Close(_) => break,
            _ => continue,
        };
        let Some((&ch, payload)) = data.split_first() else {
            continue;
        };
        let index = usize::from(ch / 2);
        if ch % 2 == 1 || payload.is_empty() {
            continue;
        }
        if let Some(Some(w)) = writers.get_mut(index) {
            if w.write_all(payload).await.is_err() {
                writers[index] = None;
            }
        }
    }
    drop(writers);
    writer.abort();
}
