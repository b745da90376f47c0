//! An API-compatible Kubernetes test server: the REST and watch protocol
//! (JSON over HTTP/1.1 on loopback, plain or HTTPS), discovery, server-side tables
//! for kubectl, and pod port-forward over WebSocket, over an in-memory
//! store loaded from a YAML fixture. There is no cluster on the machines
//! this project is tested on; real `kubectl` and kube-rs talk to this.
//!
//! [`FakeApiServer::start`] runs it on a thread of its own (so it serves
//! blocking tests and async ones alike); the `fake-apiserver` binary runs
//! it as a process.

pub mod cgroup;
pub mod clock;
pub mod discovery;
pub mod fixture;
pub mod kinds;
pub mod kubelet;
pub mod openapi;
pub mod pod_net;
pub mod portforward;
pub mod routes;
pub mod selector;
pub mod server;
pub mod spdy;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hyper_util::rt::TokioIo;

use self::server::State;

/// A running test API server; dropping it stops it.
pub struct FakeApiServer {
    addr: SocketAddr,
    /// The CA a client must trust when the server speaks HTTPS.
    ca_pem: Option<String>,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApiServer {
    /// Loads the fixture and listens on `127.0.0.1:0`; Job pods become
    /// running without a process.
    pub fn start(fixture: &str) -> anyhow::Result<FakeApiServer> {
        Self::start_on(fixture, "127.0.0.1:0", None)
    }

    /// As [`FakeApiServer::start`], and the container of a Job's pod runs
    /// as a local `agent` process (see [`kubelet`]).
    pub fn start_with_agent(
        fixture: &str,
        agent: std::path::PathBuf,
    ) -> anyhow::Result<FakeApiServer> {
        Self::start_on(fixture, "127.0.0.1:0", Some(agent))
    }

    /// As [`FakeApiServer::start_with_agent`] (`agent` optional), over
    /// HTTPS with a fresh CA ([`FakeApiServer::ca_pem`]) and a serving
    /// certificate for 127.0.0.1 and the in-cluster names: what kube-rs's
    /// in-cluster config speaks.
    pub fn start_tls(
        fixture: &str,
        agent: Option<std::path::PathBuf>,
    ) -> anyhow::Result<FakeApiServer> {
        let tls = tls::TlsIdentity::generate()?;
        Self::start_listening(fixture, "127.0.0.1:0", agent, Some(tls))
    }

    /// Loads the fixture and listens on `listen`.
    pub fn start_on(
        fixture: &str,
        listen: &str,
        agent: Option<std::path::PathBuf>,
    ) -> anyhow::Result<FakeApiServer> {
        Self::start_listening(fixture, listen, agent, None)
    }

    fn start_listening(
        fixture: &str,
        listen: &str,
        agent: Option<std::path::PathBuf>,
        tls: Option<tls::TlsIdentity>,
    ) -> anyhow::Result<FakeApiServer> {
        let (store, settings) = fixture::load(fixture)?;
        let listener =
            std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            store,
            settings,
            address: addr.to_string(),
            requests: Default::default(),
            hooks: Default::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let acceptor = tls.map(|t| t.acceptor);
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::spawn(kubelet::run(served.clone(), agent));
                    tokio::select! {
                        _ = serve(listener, served, acceptor) => {}
                        _ = stop => {}
                    }
                });
            })?;
        Ok(FakeApiServer {
            addr,
            ca_pem,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` from [`FakeApiServer::start_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) of a server started with
    /// [`FakeApiServer::start_tls`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The objects, for tests that check or change them directly.
    pub fn store(&self) -> &store::Store {
        &self.state.store
    }

    /// The requests served so far (see [`State::requests`]).
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Runs `action` on the store once, right after the first request
    /// whose `METHOD URI` starts with `prefix` has been handled (before its
    /// answer leaves): a test's way to change the cluster between two
    /// requests of a client, such as a pod replaced after the CLI resolved
    /// it and before the agent's Job is created.
    pub fn after_request(&self, prefix: &str, action: impl FnOnce(&store::Store) + Send + 'static) {
        if let Ok(mut hooks) = self.state.hooks.lock() {
            hooks.push(server::Hook {
                prefix: prefix.to_owned(),
                action: Box::new(action),
            });
        }
    }

    /// A kubeconfig whose one context (`fake`) points at this server, with
    /// `namespace` as its default namespace.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        let token = self.state.settings.token.as_deref().unwrap_or("fake-token");
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: fake\n  user:\n    token: {token}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n",
            self.url()
        )
    }

    /// Writes [`FakeApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig(namespace))
            .with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, state).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, state).await,
                    Err(e) => eprintln!("fake-apiserver: TLS handshake failed: {e}"),
                },
            }
        });
    }
}

/// HTTP/1.1 with upgrades (port-forward) on one connection, plain or TLS.
async fn serve_connection<S>(stream: S, state: Arc<State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| server::handle(state.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}
