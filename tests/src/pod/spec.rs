//! What a stand-in pod contains: its environment, files, hosts entries and
//! services. The default is the demo pod the quick start shows.

use serde::{Deserialize, Serialize};

/// The address inside the pod that only the pod's `/etc/hosts` names.
pub const BACKEND_IP: &str = "127.0.0.2";
pub const BACKEND_NAME: &str = "backend.pod.test";
pub const TCP_ECHO_PORT: u16 = 7001;
pub const UDP_ECHO_PORT: u16 = 7002;
pub const HTTP_PORT: u16 = 8080;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    pub hostname: String,
    /// The pod process's environment (what `/proc/PID/environ` shows).
    pub env: Vec<(String, String)>,
    /// Files in the pod's root: absolute path, content.
    pub files: Vec<(String, String)>,
    /// Symlinks in the pod's root: absolute path, link target.
    pub symlinks: Vec<(String, String)>,
    /// Extra `/etc/hosts` entries: name, address.
    pub hosts: Vec<(String, String)>,
    /// `/etc/resolv.conf` content.
    pub resolv_conf: String,
    /// A TCP echo server on this port (every address of the pod).
    pub tcp_echo: Option<u16>,
    /// A UDP echo server on this port.
    pub udp_echo: Option<u16>,
    /// An HTTP server that answers `hello from <hostname>`.
    pub http: Option<u16>,
    /// IPv6 disabled in the pod's network namespace before its services
    /// start (`disable_ipv6` on `all`, `default` and `lo`: no `::1`), and
    /// the services on IPv4 only, as in a cluster without IPv6.
    #[serde(default)]
    pub without_ipv6: bool,
}

impl Default for PodSpec {
    fn default() -> Self {
        PodSpec {
            hostname: "standin-pod".into(),
            env: vec![
                ("POD_NAME".into(), "standin-pod".into()),
                (
                    "DATABASE_URL".into(),
                    "postgres://db.pod.test:5432/app".into(),
                ),
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ],
            files: vec![
                (
                    "/app/config/message.txt".into(),
                    "this file exists only in the pod\n".into(),
                ),
                ("/app/secrets/token".into(), "s3cr3t-from-the-pod\n".into()),
            ],
            symlinks: vec![],
            hosts: vec![(BACKEND_NAME.into(), BACKEND_IP.into())],
            resolv_conf:
                "nameserver 127.0.0.1\nsearch pod.test\noptions ndots:1 timeout:1 attempts:1\n"
                    .into(),
            tcp_echo: Some(TCP_ECHO_PORT),
            udp_echo: Some(UDP_ECHO_PORT),
            http: Some(HTTP_PORT),
            without_ipv6: false,
        }
    }
}

impl PodSpec {
    /// The `/etc/hosts` the pod gets.
    pub fn hosts_file(&self) -> String {
        let mut hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.1.1\t{}\n",
            self.hostname
        );
        for (name, addr) in &self.hosts {
            hosts.push_str(&format!("{addr}\t{name}\n"));
        }
        hosts
    }
}
