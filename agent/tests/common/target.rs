//! A stand-in target: `sleep` chrooted into a tmpfs root, in its own network
//! and mount namespaces, with `lo` up. The test process adds services on the
//! target's loopback by creating sockets from a thread that joined its
//! network namespace.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TARGET_VAR: (&str, &str) = ("MIRRORD_TEST_TARGET_VAR", "from-the-target");
pub const FILE_TEXT: &str = "hello from the target\n";
pub const HOSTS_NAME: &str = "svc.target.test";
pub const HOSTS_ADDR: &str = "10.9.8.7";

const SETUP: &str = r#"
set -e
R="$1"
mount -t tmpfs tmpfs "$R"
mkdir -p "$R/etc" "$R/data" "$R/bin"
cp /bin/sleep "$R/bin/sleep"
for l in $(ldd /bin/sleep | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$l")"
  cp "$l" "$R$l"
done
printf 'hello from the target\n' > "$R/data/file"
printf '10.9.8.7 svc.target.test\n' > "$R/etc/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$R/etc/resolv.conf"
ln -s "$2" "$R/data/abs_escape"
ln -s ../../../../../../../.. "$R/data/up"
ln -s /etc/hosts "$R/data/abs_hosts"
ip link set lo up
echo $$
exec chroot "$R" /bin/sleep 1000
"#;

pub struct NsTarget {
    unshare: Child,
    pub pid: u32,
    pub dir: tempfile::TempDir,
    /// A file outside the target's root, on the host.
    pub outside: PathBuf,
}

impl NsTarget {
    pub fn spawn() -> NsTarget {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "host only\n").unwrap();
        let mut unshare = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                SETUP,
                "sh",
            ])
            .arg(&root)
            .arg(&outside)
            .env(TARGET_VAR.0, TARGET_VAR.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare starts");
        let mut line = String::new();
        BufReader::new(unshare.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: u32 = match line.trim().parse() {
            Ok(pid) => pid,
            Err(_) => {
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("target setup failed: {line:?}");
            }
        };
        let target = NsTarget {
            unshare,
            pid,
            dir,
            outside,
        };
        // The agent must see the chrooted process, not the setup shell.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            != "sleep"
        {
            assert!(Instant::now() < deadline, "target never reached its chroot");
            std::thread::sleep(Duration::from_millis(10));
        }
        target
    }

    /// Runs `f` in a thread that joined the target's network namespace;
    /// sockets it creates stay in that namespace.
    pub fn in_netns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.pid)).unwrap();
        std::thread::spawn(move || {
            // SAFETY: a valid namespace descriptor; only this thread moves.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0,
                "setns"
            );
            f()
        })
        .join()
        .unwrap()
    }

    /// A TCP and a UDP echo service on the target's 127.0.0.1.
    pub fn echo_services(&self) -> (SocketAddr, SocketAddr) {
        let (tcp, udp) = self.in_netns(|| {
            (
                TcpListener::bind("127.0.0.1:0").unwrap(),
                UdpSocket::bind("127.0.0.1:0").unwrap(),
            )
        });
        let addrs = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in tcp.incoming() {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], peer);
            }
        });
        addrs
    }

    /// A DNS server on the target's 127.0.0.1:53 answering every A question
    /// with `addr`.
    pub fn dns_service(&self, addr: [u8; 4]) {
        let udp = self.in_netns(|| UdpSocket::bind("127.0.0.1:53").unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let q = &buf[..n];
                let qtype = u16::from_be_bytes([q[n - 4], q[n - 3]]);
                let mut r = q.to_vec();
                r[2] = 0x81;
                r[3] = 0x80;
                if qtype == 1 {
                    r[7] = 1;
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    r.extend_from_slice(&addr);
                }
                let _ = udp.send_to(&r, peer);
            }
        });
    }

    /// Kills the target process itself.
    pub fn kill_target(&self) {
        // SAFETY: plain kill of a PID we started (through unshare).
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
    }
}

impl Drop for NsTarget {
    fn drop(&mut self) {
        self.kill_target();
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}
