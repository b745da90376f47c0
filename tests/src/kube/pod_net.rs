//! Dialling a pod's port for a port-forward, as the kubelet does from the
//! pod's network namespace. The port annotation's value is either
//! `IP:PORT` on this machine's loopback (a local agent) or
//! `netns:PID:IP:PORT`, an address inside the network namespace of process
//! `PID` (a stand-in pod, whose services are on its own loopback).

use std::net::TcpStream as StdTcpStream;
use std::os::fd::AsFd;

use nix::sched::{setns, CloneFlags};
use tokio::net::TcpStream;

/// Connects to `target` (an annotation value, see the module doc).
pub async fn connect(target: &str) -> Result<TcpStream, String> {
    let Some(rest) = target.strip_prefix("netns:") else {
        return TcpStream::connect(target).await.map_err(|e| e.to_string());
    };
    let (pid, addr) = rest
        .split_once(':')
        .ok_or_else(|| format!("{target:?} is not netns:PID:IP:PORT"))?;
    let ns_path = format!("/proc/{pid}/ns/net");
    let addr = addr.to_owned();
    // setns changes the calling thread only: a thread of its own (never a
    // pooled one, which would stay in the pod's namespace) dials, and the
    // socket stays in the namespace it was made in.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let dial = || {
            let ns = std::fs::File::open(&ns_path).map_err(|e| format!("{ns_path}: {e}"))?;
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering {ns_path}: {e}"))?;
            let stream = StdTcpStream::connect(&addr).map_err(|e| e.to_string())?;
            stream.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok::<_, String>(stream)
        };
        let _ = tx.send(dial());
    });
    let stream = rx
        .await
        .map_err(|_| "the dialling thread ended without an answer".to_owned())??;
    TcpStream::from_std(stream).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loopback_address_and_a_bad_namespace_target() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        assert!(connect(&addr).await.is_ok());
        // Our own namespace by PID works the same way.
        let own = format!("netns:{}:{addr}", std::process::id());
        assert!(connect(&own).await.is_ok(), "{own}");
        let err = connect("netns:999999999:127.0.0.1:1")
            .await
            .expect_err("no such process");
        assert!(err.contains("/proc/999999999/ns/net"), "{err}");
        let err = connect("netns:12").await.expect_err("no address");
        assert!(err.contains("not netns:PID:IP:PORT"), "{err}");
    }
}
