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
//! Flow control: SPDY/3.1 windows are not enforced on the peer (kubectl's
//! SPDY library does not enforce them either); this side applies
//! back-pressure through its socket writes instead.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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
                        relays.spawn(relay(port, target, error, data, from_client, out.clone()));
                    }
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => {
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
                }
                Frame::Ping { id } => {
                    let _ = send(Frame::Ping { id }).await;
                }
                Frame::GoAway { .. } => return Ok(()),
                Frame::SynReply { .. }
                | Frame::Headers { .. }
                | Frame::Settings { .. }
                | Frame::WindowUpdate { .. } => {}
            }
        }
        if read.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Relays one forwarded connection between its data stream and the pod.
async fn relay(
    port: u16,
    target: Option<String>,
    error: u32,
    data: u32,
    mut from_client: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Frame>,
) {
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
    let mut pod_to_client = tokio::spawn(async move {
        let mut chunk = vec![0u8; 32 * 1024];
        while let Ok(n) = pod_read.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let frame = Frame::Data {
                stream: data,
                flags: 0,
                data: Bytes::copy_from_slice(&chunk[..n]),
            };
            if to_client.send(frame).await.is_err() {
                return;
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
        client
            .send(Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            })
            .await;
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
