//! The file hooks, end to end inside one machine: a small C program runs
//! with `libmirrord_layer.so` preloaded against a fake intproxy thread that
//! serves canned files and records every request.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mirrord_protocol::{
    read_frame, write_frame, CodecError, DirEntry, FileStat, LayerMessage, LayerRequest,
    LayerResponse, ProxyMessage, RemoteError, Request, Response, PROTOCOL_VERSION,
};

const PROGRAM: &str = r#"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *cmd = argv[1], *path = argv[2];
    struct stat st;
    if (!strcmp(cmd, "cat")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) { printf("open: %s\n", strerror(errno)); return 0; }
        char c; long n = 0; unsigned long sum = 0;
        while (read(fd, &c, 1) == 1) {
            if (argc > 3) sum = sum * 31 + (unsigned char)c; else putchar(c);
            n++;
        }
        fstat(fd, &st);
        printf("bytes=%ld sum=%lu fd=%d size=%lld\n", n, sum, fd, (long long)st.st_size);
        char x = 'x';
        errno = 0;
        ssize_t w = write(fd, &x, 1);
        int e = errno;
        printf("write=%zd errno=%s\n", w, strerror(e));
        printf("close=%d\n", close(fd));
    } else if (!strcmp(cmd, "stat")) {
        if (stat(path, &st) != 0) { printf("stat: %s\n", strerror(errno)); return 0; }
        printf("size=%lld dir=%d mode=%o\n", (long long)st.st_size, S_ISDIR(st.st_mode), st.st_mode & 0777);
    } else if (!strcmp(cmd, "ls")) {
        DIR *d = opendir(path);
        if (!d) { printf("opendir: %s\n", strerror(errno)); return 0; }
        struct dirent *e;
        while ((e = readdir(d))) printf("%s %d\n", e->d_name, e->d_type);
        int fd = dirfd(d);
        int f = openat(fd, "a.txt", O_RDONLY);
        char buf[64] = {0};
        printf("openat=%zd %s\n", read(f, buf, sizeof buf - 1), buf);
        printf("closedir=%d\n", closedir(d));
    } else if (!strcmp(cmd, "write")) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) { printf("open: %s\n", strerror(errno)); return 0; }
        int n = atoi(argv[3]);
        for (int i = 0; i < n; i++) {
            char line[32];
            int len = snprintf(line, sizeof line, "line %d\n", i);
            if (write(fd, line, len) != len) { printf("write: %s\n", strerror(errno)); return 0; }
        }
        int dup_fd = dup(fd);
        printf("close=%d\n", close(fd));
        printf("pwrite=%zd\n", pwrite(dup_fd, "LINE", 4, 0));
        printf("close=%d\n", close(dup_fd));
    } else if (!strcmp(cmd, "fork")) {
        int fd = open(path, O_RDONLY);
        pid_t pid = fork();
        if (pid == 0) {
            char buf[64] = {0};
            read(fd, buf, 5);
            int again = open(path, O_RDONLY);
            char more[64] = {0};
            read(again, more, sizeof more - 1);
            printf("child: %s|%s", buf, more);
            fflush(stdout);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        char buf[64] = {0};
        read(fd, buf, sizeof buf - 1);
        printf("parent: %s", buf);
    } else if (!strcmp(cmd, "fdopen")) {
        int fd = open(path, O_WRONLY | O_APPEND);
        write(fd, "raw\n", 4);
        FILE *f = fdopen(fd, "a");
        fprintf(f, "buffered\n");
        printf("fclose=%d\n", fclose(f));
    } else if (!strcmp(cmd, "redirect")) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        close(fd);
        printf("printed to a remote stdout\n");
        exit(0);
    } else if (!strcmp(cmd, "freopen")) {
        if (!freopen(path, "w", stdout)) { fprintf(stderr, "freopen: %s\n", strerror(errno)); return 1; }
        printf("via freopen\n");
        fclose(stdout);
        return 0;
    } else if (!strcmp(cmd, "fexit")) {
        FILE *f = fopen(path, "a");
        if (!f) { printf("fopen: %s\n", strerror(errno)); return 0; }
        fprintf(f, "appended at exit\n");
        exit(0); /* no fclose: glibc flushes at exit */
    } else if (!strcmp(cmd, "fwrite")) {
        FILE *f = fopen(path, "w");
        if (!f) { printf("fopen: %s\n", strerror(errno)); return 0; }
        for (int i = 0; i < 3; i++) fprintf(f, "stdio %d\n", i);
        printf("fclose=%d\n", fclose(f));
        f = fopen(path, "r");
        char buf[64];
        while (fgets(buf, sizeof buf, f)) printf("read back: %s", buf);
        fclose(f);
    }
    return 0;
}
"#;

// ---------------------------------------------------------------------------
// the fake intproxy

#[derive(Default)]
struct Fake {
    files: HashMap<Vec<u8>, Vec<u8>>,
    dirs: HashMap<Vec<u8>, Vec<DirEntry>>,
    handles: HashMap<u64, Vec<u8>>,
    next_handle: u64,
    /// Every request, and `None` where held write answers were sent.
    log: Vec<Option<Request>>,
    /// Connections still open (the test waits for them to drain).
    live: usize,
}

fn stat_of(size: u64, dir: bool) -> FileStat {
    FileStat {
        ino: 7,
        mode: if dir {
            libc::S_IFDIR | 0o755
        } else {
            libc::S_IFREG | 0o640
        },
        nlink: 1,
        size,
        blksize: 4096,
        ..FileStat::default()
    }
}

fn enoent() -> RemoteError {
    RemoteError::new(libc::ENOENT, "no such file")
}

impl Fake {
    fn serve(&mut self, request: &Request) -> Result<Response, RemoteError> {
        match request {
            Request::Open {
                path,
                flags,
                read_ahead,
                ..
            } => {
                if self.dirs.contains_key(path) {
                    self.next_handle += 1;
                    self.handles.insert(self.next_handle, path.clone());
                    return Ok(Response::Opened {
                        handle: self.next_handle,
                        stat: stat_of(0, true),
                        data: vec![],
                        eof: true,
                    });
                }
                if !self.files.contains_key(path) && !flags.create {
                    return Err(enoent());
                }
                let content = self.files.entry(path.clone()).or_default();
                if flags.truncate {
                    content.clear();
                }
                let n = content.len().min(*read_ahead as usize);
                self.next_handle += 1;
                self.handles.insert(self.next_handle, path.clone());
                Ok(Response::Opened {
                    handle: self.next_handle,
                    stat: stat_of(content.len() as u64, false),
                    data: content[..n].to_vec(),
                    eof: n == content.len(),
                })
            }
            Request::Read {
                handle,
                offset,
                len,
            } => {
                let content = &self.files[&self.handles[handle]];
                let start = (*offset as usize).min(content.len());
                let end = (start + *len as usize).min(content.len());
                Ok(Response::Data {
                    data: content[start..end].to_vec(),
                    eof: end == content.len(),
                })
            }
            Request::Write {
                handle,
                offset,
                data,
            } => {
                let content = self.files.get_mut(&self.handles[handle]).unwrap();
                let at = offset.unwrap_or(content.len() as u64) as usize;
                if content.len() < at + data.len() {
                    content.resize(at + data.len(), 0);
                }
                content[at..at + data.len()].copy_from_slice(data);
                Ok(Response::Written {
                    len: data.len() as u64,
                })
            }
            Request::Truncate { handle, len } => {
                let content = self.files.get_mut(&self.handles[handle]).unwrap();
                content.resize(*len as usize, 0);
                Ok(Response::Done)
            }
            Request::Close { .. } | Request::Sync { .. } => Ok(Response::Done),
            Request::Stat { path, .. } => {
                if self.dirs.contains_key(path) {
                    Ok(Response::Stat(stat_of(0, true)))
                } else {
                    let file = self.files.get(path).ok_or_else(enoent)?;
                    Ok(Response::Stat(stat_of(file.len() as u64, false)))
                }
            }
            Request::ReadDir { path } => self
                .dirs
                .get(path)
                .cloned()
                .map(Response::DirEntries)
                .ok_or_else(enoent),
            Request::GetEnv => Ok(Response::Env(vec![])),
            _ => Err(RemoteError::new(libc::ENOSYS, "not in the fake")),
        }
    }
}

/// Answers one layer connection. Answers to writes are held until the
/// connection is idle for a moment or another request arrives: a layer
/// that waited for each write would stall, and the log would show it.
fn connection(stream: TcpStream, fake: Arc<Mutex<Fake>>) {
    serve_connection(stream, fake.clone());
    fake.lock().unwrap().live -= 1;
}

fn serve_connection(mut stream: TcpStream, fake: Arc<Mutex<Fake>>) {
    let Ok(LayerMessage::Hello(_)) = read_frame::<LayerMessage, _>(&mut stream) else {
        return;
    };
    let ack = ProxyMessage::HelloAck {
        version: PROTOCOL_VERSION,
        layer_id: 1,
    };
    if write_frame(&mut stream, &ack).is_err() {
        return;
    }
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut held = vec![];
    loop {
        let frame = read_frame::<LayerMessage, _>(&mut stream);
        let mut send_held = |fake: &Mutex<Fake>, stream: &mut TcpStream| {
            if !held.is_empty() {
                fake.lock().unwrap().log.push(None);
                for answer in held.drain(..) {
                    let _ = write_frame(stream, &answer);
                }
            }
        };
        match frame {
            Ok(LayerMessage::Request { id, request }) => {
                let LayerRequest::Remote(request) = request else {
                    send_held(&fake, &mut stream);
                    let refusal = Err(RemoteError::new(libc::ENETUNREACH, "no network here"));
                    let _ = write_frame(
                        &mut stream,
                        &ProxyMessage::Response {
                            id,
                            result: refusal,
                        },
                    );
                    continue;
                };
                let result = {
                    let mut fake = fake.lock().unwrap();
                    fake.log.push(Some(request.clone()));
                    fake.serve(&request)
                };
                let answer = ProxyMessage::Response {
                    id,
                    result: result.map(LayerResponse::Remote),
                };
                if matches!(request, Request::Write { .. }) {
                    held.push(answer);
                } else {
                    send_held(&fake, &mut stream);
                    let _ = write_frame(&mut stream, &answer);
                }
            }
            Err(CodecError::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                send_held(&fake, &mut stream);
            }
            _ => return,
        }
    }
}

fn start_fake(fake: Arc<Mutex<Fake>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let fake = fake.clone();
            fake.lock().unwrap().live += 1;
            std::thread::spawn(move || connection(stream, fake));
        }
    });
    addr
}

// ---------------------------------------------------------------------------
// harness

fn target_dir() -> PathBuf {
    // .../target/debug/deps/files-HASH -> .../target/debug
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn layer_lib() -> PathBuf {
    // `cargo test` builds the rlib the tests link, not the cdylib they
    // preload: build it (once) so a test never runs a stale layer.
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "mirrord-layer"]);
        if target_dir().ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo");
        assert!(status.success(), "cargo build -p mirrord-layer failed");
    });
    let lib = target_dir().join("libmirrord_layer.so");
    assert!(
        lib.exists(),
        "{} is missing: cargo build -p mirrord-layer",
        lib.display()
    );
    lib
}

fn program() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = target_dir().join("layer-file-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("files.c");
        std::fs::write(&src, PROGRAM).unwrap();
        let bin = dir.join("files");
        let status = Command::new("cc")
            .arg("-O1")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .status()
            .expect("a C compiler (cc)");
        assert!(status.success());
        bin
    })
}

fn canned() -> Arc<Mutex<Fake>> {
    let mut fake = Fake::default();
    fake.files.insert(
        b"/remote/hello.txt".to_vec(),
        b"hello from the target\n".to_vec(),
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fake.files.insert(b"/remote/big.bin".to_vec(), big);
    fake.files
        .insert(b"/remote/dir/a.txt".to_vec(), b"entry a".to_vec());
    fake.dirs.insert(
        b"/remote/dir".to_vec(),
        vec![
            DirEntry {
                name: b"a.txt".to_vec(),
                ino: 11,
                kind: libc::DT_REG,
            },
            DirEntry {
                name: b"sub".to_vec(),
                ino: 12,
                kind: libc::DT_DIR,
            },
        ],
    );
    Arc::new(Mutex::new(fake))
}

const CONFIG: &str = r#"{"feature":{"fs":{"mode":"read","read_write":["^/remote/out"],"not_found":["^/remote/secret"]}}}"#;

fn run(fake: &Arc<Mutex<Fake>>, args: &[&str]) -> String {
    run_config(fake, CONFIG, args)
}

fn run_config(fake: &Arc<Mutex<Fake>>, config: &str, args: &[&str]) -> String {
    let addr = start_fake(fake.clone());
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(program())
        .args(args)
        .current_dir("/tmp")
        .env("LD_PRELOAD", layer_lib())
        .env("MIRRORD_INTPROXY_ADDR", addr)
        .env("MIRRORD_LAYER_CONFIG", config)
        .env("MIRRORD_LAYER_REQUEST_TIMEOUT_MS", "5000")
        .output()
        .unwrap();
    drain(fake);
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(status.success(), "{args:?} failed: {stdout}\n{stderr}");
    stdout
}

/// Waits until the fake has read everything the program's layers sent
/// (their connections close when the processes exit).
fn drain(fake: &Arc<Mutex<Fake>>) {
    for _ in 0..500 {
        if fake.lock().unwrap().live == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn file_requests(fake: &Arc<Mutex<Fake>>) -> Vec<Option<Request>> {
    fake.lock()
        .unwrap()
        .log
        .iter()
        .filter(|r| !matches!(r, Some(Request::GetEnv)))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// tests

#[test]
fn a_remote_file_reads_byte_by_byte_from_one_open() {
    let fake = canned();
    let out = run(&fake, &["cat", "/remote/hello.txt"]);
    assert!(out.starts_with("hello from the target\n"), "{out}");
    // Same fd number as without mirrord, size from the remote stat, and a
    // read-only open refuses writes like a real one.
    assert!(out.contains("bytes=22 sum=0 fd=3 size=22"), "{out}");
    assert!(out.contains("write=-1 errno=Bad file descriptor"), "{out}");
    assert!(out.contains("close=0"), "{out}");
    let log = file_requests(&fake);
    assert!(
        matches!(
            &log[..],
            [
                Some(Request::Open {
                    read_ahead: 65536,
                    ..
                }),
                Some(Request::Close { .. })
            ]
        ),
        "{log:?}"
    );
}

#[test]
fn a_large_file_is_fetched_with_few_reads() {
    let fake = canned();
    let out = run(&fake, &["cat", "/remote/big.bin", "sum"]);
    assert!(out.contains("bytes=200000"), "{out}");
    let reads = file_requests(&fake)
        .iter()
        .filter(|r| matches!(r, Some(Request::Read { .. })))
        .count();
    assert_eq!(reads, 1, "200 KB after a 64 KiB read-ahead is one Read");
}

#[test]
fn not_found_paths_and_missing_files_are_enoent() {
    let fake = canned();
    let out = run(&fake, &["cat", "/remote/secret/key"]);
    assert_eq!(out, "open: No such file or directory\n");
    assert!(
        file_requests(&fake).is_empty(),
        "not_found never asks the target"
    );
    let out = run(&fake, &["stat", "/remote/missing"]);
    assert_eq!(out, "stat: No such file or directory\n");
}

#[test]
fn stat_and_local_paths() {
    let fake = canned();
    assert_eq!(
        run(&fake, &["stat", "/remote/hello.txt"]),
        "size=22 dir=0 mode=640\n"
    );
    assert_eq!(
        run(&fake, &["stat", "/remote/dir"]),
        "size=0 dir=1 mode=755\n"
    );
    // /tmp is local in mode read: the target is not asked.
    let before = file_requests(&fake).len();
    let out = run(&fake, &["stat", "/tmp"]);
    assert!(out.contains("dir=1"), "{out}");
    // A local miss keeps libc's errno.
    let out = run(&fake, &["cat", "/tmp/mirrord-no-such-file"]);
    assert_eq!(out, "open: No such file or directory\n");
    let out = run(&fake, &["cat", "mirrord-no-such-relative-file"]);
    assert_eq!(out, "open: No such file or directory\n");
    assert_eq!(file_requests(&fake).len(), before);
}

#[test]
fn remote_directories_list_and_open_relative_entries() {
    let fake = canned();
    let out = run(&fake, &["ls", "/remote/dir"]);
    assert_eq!(
        out, ". 4\n.. 4\na.txt 8\nsub 4\nopenat=7 entry a\nclosedir=0\n",
        "{out}"
    );
}

#[test]
fn writes_are_pipelined_and_reach_the_target() {
    let fake = canned();
    let out = run(&fake, &["write", "/remote/out.txt", "50"]);
    assert_eq!(out, "close=0\npwrite=4\nclose=0\n");
    let log = file_requests(&fake);
    let writes_before_first_answer = log
        .iter()
        .take_while(|r| r.is_some())
        .filter(|r| matches!(r, Some(Request::Write { .. })))
        .count();
    // 50 writes, then a pwrite on a dup (closing the first fd while a dup
    // lives waits for nothing).
    assert_eq!(
        writes_before_first_answer, 51,
        "the layer waited for a write: {log:?}"
    );
    let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let expected = expected.replacen("line", "LINE", 1);
    let content = fake.lock().unwrap().files[&b"/remote/out.txt".to_vec()].clone();
    assert_eq!(String::from_utf8_lossy(&content), expected);
    assert!(
        matches!(log.last(), Some(Some(Request::Close { .. }))),
        "the last close releases the handle: {log:?}"
    );
}

#[test]
fn stdio_writes_reach_the_target_at_fclose() {
    let fake = canned();
    let out = run(&fake, &["fwrite", "/remote/out2.txt"]);
    assert_eq!(
        out, "fclose=0\nread back: stdio 0\nread back: stdio 1\nread back: stdio 2\n",
        "{out}"
    );
    let content = fake.lock().unwrap().files[&b"/remote/out2.txt".to_vec()].clone();
    assert_eq!(content, b"stdio 0\nstdio 1\nstdio 2\n");
}

/// The real interpreter behind pyenv's shim (a shell script).
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then_some(path)
}

fn run_with(fake: &Arc<Mutex<Fake>>, cmd: &str, args: &[&str]) -> String {
    let addr = start_fake(fake.clone());
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(cmd)
        .args(args)
        .current_dir("/tmp")
        .env("LD_PRELOAD", layer_lib())
        .env("MIRRORD_INTPROXY_ADDR", addr)
        .env("MIRRORD_LAYER_CONFIG", CONFIG)
        .env("MIRRORD_LAYER_REQUEST_TIMEOUT_MS", "5000")
        .output()
        .unwrap();
    drain(fake);
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        status.success(),
        "{cmd} {args:?} failed: {stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn python_reads_lists_stats_and_writes_remote_files() {
    let Some(python) = python() else {
        eprintln!("no python3: skipped");
        return;
    };
    let fake = canned();
    let script = r#"
import os
print(open('/remote/hello.txt').read(), end='')
print(sorted(os.listdir('/remote/dir')))
print(os.stat('/remote/big.bin').st_size, os.path.isdir('/remote/dir'))
print(os.path.exists('/remote/secret/x'), os.path.exists('/remote/nope'))
with open('/remote/out.py.txt', 'w') as f:
    f.write('from python\n')
with open('/remote/out.py.txt', 'a') as f:
    f.write('appended\n')
print(open('/remote/out.py.txt').read(), end='')
os.truncate('/remote/out.py.txt', 4)
print(open('/remote/out.py.txt').read())
import shutil, tempfile
with tempfile.NamedTemporaryFile('w', delete=False) as f:
    f.write('copied with sendfile\n' * 1000)
shutil.copyfile(f.name, '/remote/out.copy.txt')
os.unlink(f.name)
"#;
    let out = run_with(&fake, &python, &["-c", script]);
    assert_eq!(
        out,
        "hello from the target\n['a.txt', 'sub']\n200000 True\nFalse False\nfrom python\nappended\nfrom\n"
    );
    let content = fake.lock().unwrap().files[&b"/remote/out.py.txt".to_vec()].clone();
    assert_eq!(content, b"from");
    let copied = fake.lock().unwrap().files[&b"/remote/out.copy.txt".to_vec()].clone();
    assert_eq!(copied, "copied with sendfile\n".repeat(1000).as_bytes());
}

#[test]
fn node_reads_and_lists_remote_files() {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("no node: skipped");
        return;
    }
    let fake = canned();
    let script = r#"
const fs = require('fs');
process.stdout.write(fs.readFileSync('/remote/hello.txt', 'utf8'));
console.log(JSON.stringify(fs.readdirSync('/remote/dir')));
console.log(fs.statSync('/remote/big.bin').size, fs.existsSync('/remote/secret/x'));
fs.writeFileSync('/remote/out.node.txt', 'from node\n');
"#;
    let out = run_with(&fake, "node", &["-e", script]);
    assert_eq!(
        out,
        "hello from the target\n[\"a.txt\",\"sub\"]\n200000 false\n"
    );
    let content = fake.lock().unwrap().files[&b"/remote/out.node.txt".to_vec()].clone();
    assert_eq!(content, b"from node\n");
}

#[test]
fn stdio_writes_left_in_the_buffer_reach_the_target_at_exit() {
    let fake = canned();
    fake.lock()
        .unwrap()
        .files
        .insert(b"/remote/out3.txt".to_vec(), b"first\n".to_vec());
    run(&fake, &["fexit", "/remote/out3.txt"]);
    let content = fake.lock().unwrap().files[&b"/remote/out3.txt".to_vec()].clone();
    assert_eq!(
        String::from_utf8_lossy(&content),
        "first\nappended at exit\n"
    );
}

#[test]
fn java_reads_lists_and_writes_remote_files() {
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("no java: skipped");
        return;
    }
    // Under /tmp: a local path in mode `read` (target/ would be remote).
    let dir = std::env::temp_dir().join(format!("mirrord-layer-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("Files.java");
    std::fs::write(
        &src,
        r#"
import java.nio.file.*;
import java.util.*;
public class Files {
    public static void main(String[] a) throws Exception {
        System.out.print(new String(java.nio.file.Files.readAllBytes(Paths.get("/remote/hello.txt"))));
        String[] names = new java.io.File("/remote/dir").list();
        Arrays.sort(names);
        System.out.println(String.join(",", names));
        System.out.println(new java.io.File("/remote/big.bin").length());
        java.nio.file.Files.write(Paths.get("/remote/out.java.txt"), "from java\n".getBytes());
    }
}
"#,
    )
    .unwrap();
    let fake = canned();
    let out = run_with(&fake, "java", &[src.to_str().unwrap()]);
    assert_eq!(out, "hello from the target\na.txt,sub\n200000\n");
    let content = fake.lock().unwrap().files[&b"/remote/out.java.txt".to_vec()].clone();
    assert_eq!(content, b"from java\n");
}

#[test]
fn a_forked_child_shares_the_remote_fd_and_opens_its_own() {
    let fake = canned();
    let out = run(&fake, &["fork", "/remote/hello.txt"]);
    // The child's read moved the shared offset, as with a real file.
    assert_eq!(
        out,
        "child: hello|hello from the target\nparent:  from the target\n"
    );
}

#[test]
fn mode_local_never_asks_the_target() {
    let fake = canned();
    let config = r#"{"feature":{"fs":"local"}}"#;
    let out = run_config(&fake, config, &["cat", "/remote/hello.txt"]);
    assert_eq!(out, "open: No such file or directory\n");
    let out = run_config(&fake, config, &["stat", "/tmp"]);
    assert!(out.contains("dir=1"), "{out}");
    assert!(file_requests(&fake).is_empty());
}

#[test]
fn fdopen_of_a_write_only_remote_fd_keeps_the_content() {
    let fake = canned();
    fake.lock()
        .unwrap()
        .files
        .insert(b"/remote/out4.txt".to_vec(), b"old\n".to_vec());
    assert_eq!(run(&fake, &["fdopen", "/remote/out4.txt"]), "fclose=0\n");
    let content = fake.lock().unwrap().files[&b"/remote/out4.txt".to_vec()].clone();
    assert_eq!(String::from_utf8_lossy(&content), "old\nraw\nbuffered\n");
}

#[test]
fn stdout_redirected_to_a_remote_file_reaches_it() {
    let fake = canned();
    assert_eq!(run(&fake, &["redirect", "/remote/out5.txt"]), "");
    let content = fake.lock().unwrap().files[&b"/remote/out5.txt".to_vec()].clone();
    assert_eq!(
        String::from_utf8_lossy(&content),
        "printed to a remote stdout\n"
    );
}

#[test]
fn freopen_of_stdout_onto_a_remote_file() {
    let fake = canned();
    assert_eq!(run(&fake, &["freopen", "/remote/out6.txt"]), "");
    let content = fake.lock().unwrap().files[&b"/remote/out6.txt".to_vec()].clone();
    assert_eq!(String::from_utf8_lossy(&content), "via freopen\n");
}
