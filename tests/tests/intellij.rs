//! The IntelliJ plugin's core (`editors/intellij/core`, plain Java) against
//! the real `mirrord ide` and a stand-in pod: this file starts the pod,
//! builds a static Go program, runs the JUnit classes
//! `MirrordIdeIntegrationTest` (Java, Python and Go launches as the plugin
//! sends them) and
//! `Lsp4ijTemplatesTest` (the LSP4IJ templates' command lines answer the LSP
//! and DAP handshakes) through Maven (Debian's local repository, no
//! network), reads their Surefire reports, and checks that the service, its
//! intproxies and their agents are all gone. It also shows that the glue's
//! compile check against SDK stand-ins (`plugin/stubs/check.sh`) fails when
//! the plugin XML names a class that does not exist.

use std::path::{Path, PathBuf};
use std::process::Command;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{agent_pids, alive, go_build, Scratch};

/// The JUnit classes this test runs, and how many tests each has.
const CLASSES: [(&str, u32); 2] = [
    ("dev.mirrord.intellij.core.MirrordIdeIntegrationTest", 2),
    ("dev.mirrord.intellij.core.Lsp4ijTemplatesTest", 3),
];

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/intellij/core")
}

/// One attribute of the `<testsuite>` element of a Surefire report.
fn suite_count(report: &str, attribute: &str) -> Option<u32> {
    let suite = &report[report.find("<testsuite")?..];
    let suite = &suite[..suite.find('>')?];
    let key = format!(" {attribute}=\"");
    let start = suite.find(&key)? + key.len();
    let rest = &suite[start..];
    rest[..rest.find('"')?].parse().ok()
}

#[test]
fn the_intellij_core_prepares_launches_against_the_stand_in_pod() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("intellij");
    let workspace = scratch.path().join("workspace");
    let build = scratch.path().join("build");
    std::fs::create_dir_all(&workspace).expect("workspace");
    // A static Go program: the plugin's Go launch runs it through the service's link.
    let go_program = go_build(&scratch, "probe.go", false);
    let output = Command::new("mvn")
        .current_dir(core_dir())
        .args(["-q", "-s", "settings.xml", "test"])
        .arg(format!(
            "-Dtest={}",
            CLASSES.map(|(class, _)| class).join(",")
        ))
        .arg(format!("-Dmirrord.build.dir={}", build.display()))
        .env("MIRRORD_BIN", mirrord_tests::bin_path("mirrord"))
        .env("MIRRORD_TEST_TARGET", pod.target())
        .env("MIRRORD_TEST_WORKSPACE", &workspace)
        .env("MIRRORD_TEST_GO_PROGRAM", &go_program)
        .output()
        .expect("mvn (apt-get install maven junit5 libgoogle-gson-java libsurefire-java; scripts/test-all.sh does)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mvn failed:\n{log}");
    for (class, tests) in CLASSES {
        let report_path = build
            .join("surefire-reports")
            .join(format!("TEST-{class}.xml"));
        let report = std::fs::read_to_string(&report_path).unwrap_or_else(|e| {
            panic!(
                "no Surefire report at {}: {e}\n{log}",
                report_path.display()
            )
        });
        // Ran, not skipped: a skipped test passes Maven too.
        assert_eq!(suite_count(&report, "tests"), Some(tests), "{report}");
        for counter in ["failures", "errors", "skipped"] {
            assert_eq!(
                suite_count(&report, counter),
                Some(0),
                "{counter}: {report}"
            );
        }
    }

    // The service and every intproxy it started are gone, and so are the agents.
    let pids = std::fs::read_to_string(workspace.join("pids.txt")).expect("pids.txt");
    let pids: Vec<u32> = pids.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(
        pids.len() >= 6,
        "two services and their intproxies (two launches each): {pids:?}"
    );
    for pid in pids {
        assert!(!alive(pid), "{pid} is still running");
    }
    assert!(
        agent_pids(pod.pid).is_empty(),
        "agents left: {:?}",
        agent_pids(pod.pid)
    );
}

#[test]
fn surefire_counts_are_read_from_the_testsuite_element() {
    let report = r#"<?xml version="1.0"?><testsuite xmlns:xsi="x" name="A" time="0.1" tests="3" errors="0" skipped="1" failures="2"><testcase/></testsuite>"#;
    assert_eq!(suite_count(report, "tests"), Some(3));
    assert_eq!(suite_count(report, "skipped"), Some(1));
    assert_eq!(suite_count(report, "failures"), Some(2));
    assert_eq!(suite_count(report, "nope"), None);
}

/// Copies `from` into `to`, directories and files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The glue's compile check (`plugin/stubs/check.sh`, run by
/// scripts/test-all.sh on the real tree) fails, naming the class, when the
/// plugin XML names a class that was not compiled: a copy of the tree with
/// one misspelt class in `mirrord-go.xml`.
#[test]
fn the_glue_compile_check_fails_on_a_class_the_plugin_xml_misnames() {
    let scratch = Scratch::new("intellij-check");
    let intellij = core_dir().join("..");
    let copy = scratch.path().join("intellij");
    copy_tree(&intellij.join("plugin/src"), &copy.join("plugin/src"));
    copy_tree(&intellij.join("plugin/stubs"), &copy.join("plugin/stubs"));
    copy_tree(&intellij.join("core/src/main"), &copy.join("core/src/main"));
    let xml = copy.join("plugin/src/main/resources/META-INF/mirrord-go.xml");
    let text = std::fs::read_to_string(&xml).expect("mirrord-go.xml");
    let misspelt = text.replace(
        "MirrordGoRunConfigurationExtension",
        "MirrordGoRunConfigExtension",
    );
    assert_ne!(text, misspelt, "mirrord-go.xml names the Go extension");
    std::fs::write(&xml, misspelt).expect("write");

    let output = Command::new(copy.join("plugin/stubs/check.sh"))
        .arg(scratch.path().join("out"))
        .output()
        .expect("check.sh runs (javac 17 and /usr/share/java/gson.jar)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the check passed:\n{stderr}");
    assert!(
        stderr.contains(
            "mirrord-go.xml names dev.mirrord.intellij.plugin.MirrordGoRunConfigExtension, which was not compiled"
        ),
        "{stderr}"
    );
}
