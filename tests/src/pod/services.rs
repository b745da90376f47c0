//! The pod's own services, on every address of its network namespace
//! (dual-stack, so IPv4 and IPv6 clients both reach them; IPv4 only in a
//! pod without IPv6): TCP echo, UDP echo, and a one-line HTTP server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::thread;

use anyhow::Context;

use super::spec::PodSpec;

pub fn start(spec: &PodSpec) -> anyhow::Result<()> {
    let any = if spec.without_ipv6 { "0.0.0.0" } else { "::" };
    if let Some(port) = spec.tcp_echo {
        let listener = TcpListener::bind((any, port)).context("tcp echo")?;
        thread::spawn(move || serve_tcp(listener, echo));
    }
    if let Some(port) = spec.udp_echo {
        // One socket per address: a reply from a wildcard socket leaves
        // from the primary address, which a connected client drops.
        let ipv6: &[&str] = if spec.without_ipv6 { &[] } else { &["::1"] };
        for addr in ["127.0.0.1", super::spec::BACKEND_IP].iter().chain(ipv6) {
            let socket =
                UdpSocket::bind((*addr, port)).with_context(|| format!("udp echo on {addr}"))?;
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            });
        }
    }
    if let Some(port) = spec.http {
        let listener = TcpListener::bind((any, port)).context("http")?;
        let body = format!("hello from {}\n", spec.hostname);
        thread::spawn(move || serve_tcp(listener, move |s| http(s, &body)));
    }
    Ok(())
}

fn serve_tcp<F>(listener: TcpListener, handler: F)
where
    F: Fn(TcpStream) + Send + Sync + Clone + 'static,
{
    for stream in listener.incoming().flatten() {
        let handler = handler.clone();
        thread::spawn(move || handler(stream));
    }
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn http(mut stream: TcpStream, body: &str) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    // Read the body before answering, as a real server does: closing with
    // unread bytes would reset the connection.
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body_left = length.saturating_sub(request.len() - head_end);
    while body_left > 0 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => body_left = body_left.saturating_sub(n),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
