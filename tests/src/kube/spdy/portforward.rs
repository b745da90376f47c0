//! The kubelet's side of `portforward.k8s.io` over SPDY: for every
//! connection kubectl accepts locally it opens two streams with the same
//! `requestID` and `port` headers, `streamType: error` and `streamType:
//! data`. Each stream gets a SYN_REPLY at once; once both are open the pod's
//! port is dialled and the data stream relays bytes both ways. A client
//! FIN half-closes the pod connection; the pod's EOF ends the data stream
//! with FIN, and then the error stream ends (with a message first if the
//! port could not be reached). RST_STREAM drops a stream, PING is echoed,
//! GOAWAY or EOF ends the session and every relay in it.
//!
//! Flow control ([`super::flow`]): bytes given to the pod are handed back
//! to the peer with WINDOW_UPDATE; a peer that does flow control gets no
//! more than its windows allow and is reset (FLOW_CONTROL_ERROR) when it
//! overruns ours; kubectl, which does none, is served as the kubelet
//! serves it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::flow::{Flow, FLOW_CONTROL_ERROR};
use super::frame::{Frame, FrameReader, FrameWriter, FLAG_FIN, PROTOCOL_ERROR};
use super::headers::header;
use super::SpdyError;

/// The protocol name kubectl negotiates (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";

/// Bytes from the client for one data stream.
enum Inbound {
    Data(Bytes),
    Fin,
}

/// The two streams of one forwarded connection, as they open.
#[derive(Default)]
struct Pair {
    port: u16,
    error: Option<u32>,
    data: Option<u32>,
    inbound: Option<mpsc::Receiver<Inbound>>,
}

/// Serves one SPDY session on `io` until the client goes away; `targets`
/// says where each pod port really is.
pub async fn serve<S>(io: S, targets: HashMap<u16, String>) -> Result<(), SpdyError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        let mut frames = FrameWriter::default();
        let mut bytes = Vec::new();
        while let Some(frame) = out_rx.recv().await {
            bytes.clear();
            frames.encode(&frame, &mut bytes)?;
            write.write_all(&bytes).await?;
            if out_rx.is_empty() {
                write.flush().await?;
            }
        }
        let _ = write.shutdown().await;
        Ok::<_, SpdyError>(())
    });
    let mut relays = JoinSet::new();
    let result = read_frames(&mut read, &out_tx, &targets, &mut relays).await;
    relays.abort_all();
    drop(out_tx);
    writer.abort();
    result
}

async fn read_frames<R>(
    read: &mut R,
    out: &mpsc::Sender<Frame>,
    targets: &HashMap<u16, String>,
    relays: &mut JoinSet<()>,
) -> Result<(), SpdyError>
where
    R: AsyncRead + Unpin,
{
    let mut frames = FrameReader::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let flow = Arc::new(Flow::default());
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut inbound: HashMap<u32, mpsc::Sender<Inbound>> = HashMap::new();
    loop {
        while let Some(frame) = frames.decode(&mut buf)? {
            let send = |frame| out.send(frame);
            match frame {
                Frame::SynStream {
                    stream,
                    flags,
                    headers,
                    ..
                } => {
                    let (Some(kind), Some(port), Some(request)) = (
                        header(&headers, "streamType"),
                        header(&headers, "port").and_then(|p| p.parse::<u16>().ok()),
                        header(&headers, "requestID"),
                    ) else {
                        let _ = send(Frame::RstStream {
                            stream,
                            status: PROTOCOL_ERROR,
                        })
                        .await;
                        continue;
                    };
                    let _ = send(Frame::SynReply {
                        stream,
                        flags: 0,
                        headers: vec![],
                    })
                    .await;
                    flow.open(stream);
                    let pair = pairs.entry(request.to_owned()).or_default();
                    pair.port = port;
                    match kind {
                        "error" => pair.error = Some(stream),
                        "data" => {
                            pair.data = Some(stream);
                            let (tx, rx) = mpsc::channel(16);
                            if flags & FLAG_FIN != 0 {
                                let _ = tx.send(Inbound::Fin).await;
                            } else {
                                inbound.insert(stream, tx);
                            }
                            pair.inbound = Some(rx);
                        }
                        _ => {
                            let _ = send(Frame::RstStream {
                                stream,
                                status: PROTOCOL_ERROR,
                            })
                            .await;
                            continue;
                        }
                    }
                    let complete = pairs
                        .get(request)
                        .is_some_and(|p| p.error.is_some() && p.data.is_some());
                    if !complete {
                        continue;
                    }
                    if let Some(Pair {
                        port,
                        error: Some(error),
                        data: Some(data),
                        inbound: Some(from_client),
                    }) = pairs.remove(request)
                    {
                        let target = targets.get(&port).cloned();
                        let streams = Streams {
                            error,
                            data,
                            flow: flow.clone(),
                        };
                        relays.spawn(relay(port, target, streams, from_client, out.clone()));
                    }
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => {
                    if flow.received(stream, data.len()).is_err() {
                        // Over the window we gave: reset, as SPDY/3.1 says.
                        inbound.remove(&stream);
                        flow.close(stream);
                        let _ = send(Frame::RstStream {
                            stream,
                            status: FLOW_CONTROL_ERROR,
                        })
                        .await;
                        continue;
                    }
                    if let Some(tx) = inbound.get(&stream) {
                        if !data.is_empty() && tx.send(Inbound::Data(data)).await.is_err() {
                            inbound.remove(&stream);
                        }
                    }
                    if flags & FLAG_FIN != 0 {
                        if let Some(tx) = inbound.remove(&stream) {
                            let _ = tx.send(Inbound::Fin).await;
                        }
                    }
                }
                // The relay sees its channel close without a FIN and stops.
                Frame::RstStream { stream, .. } => {
                    inbound.remove(&stream);
                    flow.close(stream);
                }
                Frame::Ping { id } => {
                    let _ = send(Frame::Ping { id }).await;
                }
                Frame::GoAway { .. } => return Ok(()),
                Frame::Settings { entries, .. } => flow.settings(&entries),
                Frame::WindowUpdate { stream, delta } => flow.window_update(stream, delta),
                Frame::SynReply { .. } | Frame::Headers { .. } => {}
            }
        }
        if read.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// The two streams of one forwarded connection and the session's windows.
struct Streams {
    error: u32,
    data: u32,
    flow: Arc<Flow>,
}

/// Drops the windows of a connection's streams when its relay ends.
struct Forget(Arc<Flow>, [u32; 2]);

impl Drop for Forget {
    fn drop(&mut self) {
        self.1.iter().for_each(|s| self.0.close(*s));
    }
}

/// Relays one forwarded connection between its data stream and the pod.
async fn relay(
    port: u16,
    target: Option<String>,
    streams: Streams,
    mut from_client: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Frame>,
) {
    let Streams { error, data, flow } = streams;
    let _forget = Forget(flow.clone(), [error, data]);
    let fin = |stream| Frame::Data {
        stream,
        flags: FLAG_FIN,
        data: Bytes::new(),
    };
    let connected = match &target {
        Some(addr) => crate::kube::pod_net::connect(addr).await,
        None => Err(format!("port {port} is not open in the pod")),
    };
    let pod = match connected {
        Ok(pod) => pod,
        Err(reason) => {
            let message = format!("error forwarding port {port} to pod: {reason}");
            let _ = out
                .send(Frame::Data {
                    stream: error,
                    flags: 0,
                    data: Bytes::from(message),
                })
                .await;
            let _ = out.send(fin(error)).await;
            let _ = out.send(fin(data)).await;
            return;
        }
    };
    let (mut pod_read, mut pod_write) = pod.into_split();
    let to_client = out.clone();
    let sending = flow.clone();
    let mut pod_to_client = tokio::spawn(async move {
        let mut chunk = vec![0u8; 32 * 1024];
        while let Ok(n) = pod_read.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut sent = 0;
            while sent < n {
                let allowed = sending.reserve(data, n - sent).await;
                let frame = Frame::Data {
                    stream: data,
                    flags: 0,
                    data: Bytes::copy_from_slice(&chunk[sent..sent + allowed]),
                };
                if to_client.send(frame).await.is_err() {
                    return;
                }
                sent += allowed;
            }
        }
        let _ = to_client.send(fin(data)).await;
    });
    let client_to_pod = async {
        loop {
            match from_client.recv().await {
                Some(Inbound::Data(bytes)) => {
                    if pod_write.write_all(&bytes).await.is_err() {
                        return false;
                    }
                    for update in flow.consumed(data, bytes.len()) {
                        if out.send(update).await.is_err() {
                            return false;
                        }
                    }
                }
                Some(Inbound::Fin) => {
                    let _ = pod_write.shutdown().await;
                    return true;
                }
                // Reset, or the session ended.
                None => return false,
            }
        }
    };
    tokio::select! {
        finished = client_to_pod => {
            if !finished {
                pod_to_client.abort();
                return;
            }
            let _ = (&mut pod_to_client).await;
        }
        _ = &mut pod_to_client => {}
    }
    let _ = out.send(fin(error)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::spdy::frame::{FrameReader, FrameWriter};
    use crate::kube::spdy::headers::from_pairs;

    /// A client end: writes frames, reads them back one at a time.
    struct Client {
        io: tokio::io::DuplexStream,
        writer: FrameWriter,
        reader: FrameReader,
        buf: BytesMut,
    }

    impl Client {
        async fn send(&mut self, frame: Frame) {
            let mut bytes = Vec::new();
            self.writer.encode(&frame, &mut bytes).expect("encode");
            self.io.write_all(&bytes).await.expect("write");
        }

        async fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(frame) = self.reader.decode(&mut self.buf).expect("decode") {
                    return Some(frame);
                }
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    self.io.read_buf(&mut self.buf),
                )
                .await
                .expect("a frame within 10 s")
                .expect("read");
                if read == 0 {
                    return None;
                }
            }
        }

        async fn open(&mut self, stream: u32, kind: &str, port: u16, request: &str) {
            let port = port.to_string();
            let headers = from_pairs(&[
                ("streamType", kind),
                ("port", &port),
                ("requestID", request),
            ]);
            self.send(Frame::SynStream {
                stream,
                associated: 0,
                priority: 0,
                flags: 0,
                headers,
            })
            .await;
            assert_eq!(
                self.next().await,
                Some(Frame::SynReply {
                    stream,
                    flags: 0,
                    headers: vec![]
                })
            );
        }
    }

    fn session(targets: HashMap<u16, String>) -> Client {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve(theirs, targets));
        Client {
            io: ours,
            writer: FrameWriter::default(),
            reader: FrameReader::default(),
            buf: BytesMut::new(),
        }
    }

    async fn echo_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_stream_pair_relays_to_the_pod_port_and_closes_in_order() {
        let echo = echo_server().await;
        let mut client = session(HashMap::from([(8080, echo)]));
        client.send(Frame::Ping { id: 1 }).await;
        assert_eq!(client.next().await, Some(Frame::Ping { id: 1 }));
        client.open(1, "error", 8080, "0").await;
        client.open(3, "data", 8080, "0").await;
        client
            .send(Frame::Data {
                stream: 3,
                flags: 0,
                data: Bytes::from_static(b"ping over spdy"),
            })
            .await;
        let mut echoed = Vec::new();
        while echoed.len() < 14 {
            match client.next().await {
                Some(Frame::Data {
                    stream: 3, data, ..
                }) => echoed.extend_from_slice(&data),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(echoed, b"ping over spdy");
        // Client FIN -> the pod sees EOF and closes -> FIN on data, then error.
        client.send(end_of(3)).await;
        let mut fins = Vec::new();
        while fins.len() < 2 {
            match client.next().await {
                Some(Frame::Data {
                    stream,
                    flags,
                    data,
                }) => {
                    assert!(data.is_empty(), "no more data, got {data:?}");
                    assert_eq!(flags, FLAG_FIN);
                    fins.push(stream);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fins, [3, 1]);
        client
            .send(Frame::GoAway {
                last_good: 0,
                status: 0,
            })
            .await;
        assert_eq!(client.next().await, None, "the session ends after GOAWAY");
    }

    /// A pod port that reads and counts everything sent to it.
    async fn sink_server() -> (String, tokio::sync::oneshot::Receiver<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (count_tx, count) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Ok((mut conn, _)) = listener.accept().await {
                let mut total = 0;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let _ = count_tx.send(total);
            }
        });
        (addr, count)
    }

    /// The client's last (empty) DATA frame on `stream`.
    fn end_of(stream: u32) -> Frame {
        Frame::Data {
            stream,
            flags: FLAG_FIN,
            data: Bytes::new(),
        }
    }

    fn data(stream: u32, len: usize) -> Frame {
        Frame::Data {
            stream,
            flags: 0,
            data: Bytes::from(vec![7u8; len]),
        }
    }

    /// A client that honours SPDY/3.1 windows sends 1 MiB on one stream:
    /// it never has more than 64 KiB unacknowledged, so it completes only
    /// because the server hands consumed bytes back with WINDOW_UPDATE
    /// (stream and session).
    #[tokio::test]
    async fn a_client_that_honours_windows_gets_window_updates_for_a_large_upload() {
        let (sink, count) = sink_server().await;
        let mut client = session(HashMap::from([(8080, sink)]));
        client.open(1, "error", 8080, "0").await;
        client.open(3, "data", 8080, "0").await;
        let total = 1 << 20;
        let (mut sent, mut stream_window, mut session_window) = (0usize, 65_536i64, 65_536i64);
        let mut updates = 0;
        while sent < total {
            let room = stream_window.min(session_window);
            if room > 0 {
                let len = (room as usize).min(16_384).min(total - sent);
                client.send(data(3, len)).await;
                sent += len;
                stream_window -= len as i64;
                session_window -= len as i64;
                continue;
            }
            match client.next().await {
                Some(Frame::WindowUpdate { stream: 3, delta }) => {
                    stream_window += i64::from(delta);
                    updates += 1;
                }
                Some(Frame::WindowUpdate { stream: 0, delta }) => {
                    session_window += i64::from(delta)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        client.send(end_of(3)).await;
        let received = tokio::time::timeout(std::time::Duration::from_secs(10), count)
            .await
            .expect("the pod saw EOF")
            .expect("count");
        assert_eq!(received, total);
        assert!(updates >= 15, "{updates} stream window updates for 1 MiB");
    }

    /// Reads frames until none comes for 300 ms: the DATA bytes of
    /// `stream` that came, and whether anything else did.
    async fn drain(client: &mut Client, stream: u32) -> Vec<u8> {
        let mut got = Vec::new();
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_millis(300), client.next());
            match next.await {
                Err(_) => return got,
                Ok(Some(Frame::Data {
                    stream: s, data, ..
                })) if s == stream => got.extend_from_slice(&data),
                // The server's own window updates for what we sent.
                Ok(Some(Frame::WindowUpdate { .. })) => {}
                Ok(other) => panic!("unexpected {other:?}"),
            }
        }
    }

    /// A client that announces a 16 KiB initial window gets no more than
    /// 16 KiB of the pod's bytes until it opens the window further, and
    /// then no more than the session window (64 KiB in all).
    #[tokio::test]
    async fn the_server_sends_no_more_than_the_clients_windows_allow() {
        let echo = echo_server().await;
        let mut client = session(HashMap::from([(8080, echo)]));
        client
            .send(Frame::Settings {
                flags: 0,
                entries: vec![(0, super::super::flow::SETTINGS_INITIAL_WINDOW_SIZE, 16_384)],
            })
            .await;
        client.open(1, "error", 8080, "0").await;
        client.open(3, "data", 8080, "0").await;
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        for part in payload.chunks(15_000) {
            client
                .send(Frame::Data {
                    stream: 3,
                    flags: 0,
                    data: Bytes::copy_from_slice(part),
                })
                .await;
        }
        let mut echoed = drain(&mut client, 3).await;
        assert_eq!(echoed.len(), 16_384, "the stream's initial window");
        client
            .send(Frame::WindowUpdate {
                stream: 3,
                delta: 8_192,
            })
            .await;
        echoed.extend(drain(&mut client, 3).await);
        assert_eq!(echoed.len(), 16_384 + 8_192);
        client
            .send(Frame::WindowUpdate {
                stream: 3,
                delta: 1 << 20,
            })
            .await;
        echoed.extend(drain(&mut client, 3).await);
        assert_eq!(echoed.len(), 60_000, "within the session window");
        assert_eq!(echoed, payload);
    }

    /// A client that does flow control and sends more than the 64 KiB
    /// window the server gave is reset with FLOW_CONTROL_ERROR.
    #[tokio::test]
    async fn a_client_that_overruns_the_window_is_reset() {
        let (sink, _count) = sink_server().await;
        let mut client = session(HashMap::from([(8080, sink)]));
        client
            .send(Frame::WindowUpdate {
                stream: 0,
                delta: 1,
            })
            .await;
        client.open(1, "error", 8080, "0").await;
        client.open(3, "data", 8080, "0").await;
        client.send(data(3, 65_537)).await;
        loop {
            match client.next().await {
                Some(Frame::RstStream { stream: 3, status }) => {
                    assert_eq!(status, FLOW_CONTROL_ERROR);
                    break;
                }
                Some(Frame::WindowUpdate { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_on_the_error_stream() {
        let mut client = session(HashMap::new());
        client.open(1, "error", 9999, "7").await;
        client.open(3, "data", 9999, "7").await;
        match client.next().await {
            Some(Frame::Data {
                stream: 1, data, ..
            }) => assert_eq!(
                String::from_utf8_lossy(&data),
                "error forwarding port 9999 to pod: port 9999 is not open in the pod"
            ),
            other => panic!("unexpected {other:?}"),
        }
        let mut fins = Vec::new();
        while fins.len() < 2 {
            if let Some(Frame::Data {
                stream,
                flags: FLAG_FIN,
                ..
            }) = client.next().await
            {
                fins.push(stream);
            }
        }
        assert_eq!(fins, [1, 3]);
    }

    #[tokio::test]
    async fn a_stream_without_the_portforward_headers_is_reset() {
        let mut client = session(HashMap::new());
        client
            .send(Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: vec![("port".into(), "80".into())],
            })
            .await;
        assert_eq!(
            client.next().await,
            Some(Frame::RstStream {
                stream: 1,
                status: PROTOCOL_ERROR
            })
        );
    }
}
