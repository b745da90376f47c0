//! The fs modes against a stand-in pod, and the target's root as a wall.

use std::path::PathBuf;
use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{leftovers, mirrord_exec, Output, Scratch};

fn python(pod: &Pod, config: &str, code: &str) -> Output {
    let scratch = Scratch::new("fs");
    let config = scratch.write("mirrord.json", config);
    let out = mirrord_exec(
        &pod.target(),
        Some(&config),
        &["python3", "-c", code],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:#?}");
    assert!(leftovers(out.pid, Some(pod.pid), Duration::from_secs(3)).is_empty());
    out
}

const READ_BOTH: &str = r#"
import errno
def read(p):
    try:
        return open(p).read().strip().replace("\n", "|")
    except OSError as e:
        return "ERR:" + errno.errorcode[e.errno]
print("app=" + read("/app/config/message.txt"))
print("hosts_has_backend=" + str("backend.pod.test" in read("/etc/hosts")))
"#;

#[test]
fn local_mode_never_touches_the_target() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let out = python(&pod, r#"{"feature": {"fs": "local"}}"#, READ_BOTH);
    assert_eq!(out.value("app"), Some("ERR:ENOENT"), "{out:#?}");
    assert_eq!(out.value("hosts_has_backend"), Some("False"));
}

#[test]
fn localwithoverrides_reads_hosts_and_resolv_conf_remotely_only() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let out = python(
        &pod,
        r#"{"feature": {"fs": "localwithoverrides"}}"#,
        READ_BOTH,
    );
    assert_eq!(out.value("app"), Some("ERR:ENOENT"), "{out:#?}");
    assert_eq!(out.value("hosts_has_backend"), Some("True"), "{out:#?}");
}

/// A path outside every default-local prefix, unique to this run.
fn unique_path(dir: &str, tag: &str) -> String {
    format!("{dir}/mirrord-e2e-{tag}-{}", std::process::id())
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn read_mode_reads_remote_and_writes_locally() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let path = unique_path("/srv", "read-mode");
    let _cleanup = RemoveOnDrop(PathBuf::from(&path));
    let code =
        format!("{READ_BOTH}\nopen({path:?}, 'w').write('written locally')\nprint('wrote=1')");
    let out = python(&pod, r#"{"feature": {"fs": "read"}}"#, &code);
    assert_eq!(
        out.value("app"),
        Some("this file exists only in the pod"),
        "{out:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("written locally")
    );
    let in_pod = format!("/proc/{}/root{path}", pod.pid);
    assert!(
        !std::path::Path::new(&in_pod).exists(),
        "the write reached the pod"
    );
}

#[test]
fn write_mode_writes_into_the_target() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let code = r#"
with open("/app/out.txt", "w") as f:
    for i in range(1000):
        f.write("line %d\n" % i)
with open("/app/out.txt", "a") as f:
    f.write("appended\n")
print("back=" + open("/app/out.txt").read().splitlines()[-1])
"#;
    let out = python(&pod, r#"{"feature": {"fs": "write"}}"#, code);
    assert_eq!(out.value("back"), Some("appended"), "{out:#?}");
    let in_pod = std::fs::read_to_string(format!("/proc/{}/root/app/out.txt", pod.pid))
        .expect("file in the pod");
    assert_eq!(in_pod.lines().count(), 1001);
    assert!(in_pod.starts_with("line 0\nline 1\n") && in_pod.ends_with("line 999\nappended\n"));
    assert!(
        !std::path::Path::new("/app/out.txt").exists(),
        "the write stayed local"
    );
}

#[test]
fn reads_cannot_escape_the_target_root() {
    let marker = unique_path("/srv", "escape-marker");
    let _cleanup = RemoveOnDrop(PathBuf::from(&marker));
    std::fs::create_dir_all("/srv").expect("/srv");
    std::fs::write(&marker, "host secret").expect("marker");
    let spec = PodSpec {
        symlinks: vec![
            ("/app/absolute-link".into(), marker.clone()),
            (
                "/app/relative-link".into(),
                format!("../../../../..{marker}"),
            ),
        ],
        ..PodSpec::default()
    };
    let pod = Pod::start(&spec).expect("pod");
    let code = format!(
        r#"
import errno
def read(p):
    try:
        return open(p).read()
    except OSError as e:
        return "ERR:" + errno.errorcode[e.errno]
print("absolute=" + read("/app/absolute-link"))
print("relative=" + read("/app/relative-link"))
print("dotdot=" + read("/app/../../../..{marker}"))
"#
    );
    let out = python(&pod, r#"{"feature": {"fs": "read"}}"#, &code);
    for key in ["absolute", "relative", "dotdot"] {
        assert_eq!(out.value(key), Some("ERR:ENOENT"), "{key}: {out:#?}");
    }
}
