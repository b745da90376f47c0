package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The real {@code mirrord ide} against a stand-in pod. Needs the pod's
 * target in {@code MIRRORD_TEST_TARGET} and a workspace directory in
 * {@code MIRRORD_TEST_WORKSPACE}: tests/tests/intellij.rs starts the pod,
 * runs this class and reads its Surefire report; without them it is
 * skipped. The binary is {@code MIRRORD_BIN} (or {@code -Dmirrord.bin}),
 * else the repository's target/debug/mirrord. The second test also needs a
 * static Go program ({@code tests/programs/probe.go}, built by the Rust
 * side) in {@code MIRRORD_TEST_GO_PROGRAM}.
 */
class MirrordIdeIntegrationTest {
    private static final String DEBUGGEE = "import os; print('pod_name=%s message=%s user=%s dropped=%s' % (os.environ.get('POD_NAME'), "
            + "open('/app/config/message.txt').read().strip(), os.environ.get('USER_VAR'), os.environ.get('DROP_ME', 'unset')))";

    private static Path binary() {
        String configured = System.getProperty("mirrord.bin", System.getenv("MIRRORD_BIN"));
        if (configured != null && !configured.isEmpty()) {
            return Path.of(configured);
        }
        return Path.of(System.getProperty("user.dir")).resolve("../../../target/debug/mirrord").normalize();
    }

    @Test
    void launchesAgainstTheStandInPodPickATargetAndEndTheirSessions() {
        String target = System.getenv("MIRRORD_TEST_TARGET");
        String workspaceDir = System.getenv("MIRRORD_TEST_WORKSPACE");
        assumeTrue(target != null && workspaceDir != null, "MIRRORD_TEST_TARGET and MIRRORD_TEST_WORKSPACE are set by tests/tests/intellij.rs");
        Path workspace = Path.of(workspaceDir);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> run(target, workspace));
    }

    private void run(String target, Path workspace) throws Exception {
        List<List<Target>> offered = new CopyOnWriteArrayList<>();
        List<String> progress = new CopyOnWriteArrayList<>();
        List<String> ended = new CopyOnWriteArrayList<>();
        ServiceListener listener = new ServiceListener() {
            @Override
            public void onProgress(String id, String message, boolean done) {
                progress.add(message + (done ? " (done)" : ""));
            }

            @Override
            public void onSessionEnded(String sessionId, String reason) {
                ended.add(sessionId + ": " + reason);
            }
        };
        TargetPicker picker = targets -> {
            offered.add(targets);
            return target;
        };
        List<Long> pids = new ArrayList<>();
        MirrordIdeClient client = MirrordIdeClient.start(binary(), workspace, picker, listener, MirrordIdeClient.Timeouts.defaults());
        pids.add(client.pid());
        try {
            assertTrue(client.listTargets().stream().anyMatch(t -> t.path().equals(target)), "listTargets offers " + target);

            // No target in the configuration: the service asks the picker.
            JsonObject launch = new JsonObject();
            launch.addProperty("type", "java");
            launch.addProperty("request", "launch");
            launch.add("env", EnvMerge.toLaunchEnv(Map.of("USER_VAR", "kept"), java.util.Set.of("DROP_ME")));
            PrepareLaunchResult picked = client.prepareLaunch(launch, workspace.toUri().toString());
            assertEquals(1, offered.size(), "pickTarget was asked once");
            assertTrue(offered.get(0).stream().anyMatch(t -> t.path().equals(target)), "the picker was offered " + target);
            assertNotNull(picked.sessionId());
            assertFalse(picked.configuration().get("mirrord").getAsBoolean(), "marked as prepared");
            // The last step is a notification: it may arrive just after the answer.
            waitFor(() -> progress.stream().anyMatch(p -> p.contains(target) && p.endsWith("(done)")), "the last progress step: " + progress);

            // The run configuration's environment, merged: the debuggee runs in the pod's context.
            Map<String, String> base = new HashMap<>(System.getenv());
            base.put("DROP_ME", "inherited from the IDE");
            Map<String, String> env = picked.env().applyTo(base);
            assertTrue(env.get("LD_PRELOAD").contains("libmirrord_layer.so"), env.get("LD_PRELOAD"));
            ProcessBuilder debuggee = new ProcessBuilder("python3", "-c", DEBUGGEE).directory(workspace.toFile());
            debuggee.environment().clear();
            debuggee.environment().putAll(env);
            Process p = debuggee.redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertEquals("pod_name=standin-pod message=this file exists only in the pod user=kept dropped=unset", out);
            waitFor(() -> ended.contains(picked.sessionId() + ": debuggee exited"), "the debuggee's exit to end its session: " + ended);

            // A target in the configuration: no pick; ended on request, once.
            JsonObject pinned = launch.deepCopy();
            JsonObject mirrord = new JsonObject();
            mirrord.addProperty("target", target);
            pinned.add("mirrord", mirrord);
            PrepareLaunchResult second = client.prepareLaunch(pinned, workspace.toString());
            assertEquals(1, offered.size(), "no pick when the configuration names a target");
            List<SessionInfo> running = client.sessions();
            SessionInfo live = running.stream().filter(s -> s.sessionId().equals(second.sessionId())).findFirst().orElseThrow();
            assertTrue(live.running() && live.target().equals(target), running.toString());
            running.forEach(s -> pids.add(s.pid()));
            client.endSession(second.sessionId());
            assertTrue(client.sessions().stream().noneMatch(SessionInfo::running), "every session ended");
            var again = assertThrows(MirrordIdeException.class, () -> client.endSession(second.sessionId()));
            assertTrue(again.getMessage().contains("already ended"), again.getMessage());

            // A bad config is the service's message, as it is.
            JsonObject bad = launch.deepCopy();
            bad.add("mirrord", JsonParser.parseString("{\"target\":\"" + target + "\",\"feature\":{\"fs\":\"raed\"}}"));
            var invalid = assertThrows(MirrordIdeException.class, () -> client.prepareLaunch(bad, null));
            assertEquals(MirrordIdeException.Kind.REQUEST_FAILED, invalid.kind());
            assertTrue(invalid.getMessage().contains("feature.fs"), invalid.getMessage());
        } finally {
            client.close();
            // The Rust side checks these PIDs (zombies included) are gone.
            writePids(workspace, pids);
        }
        assertFalse(client.isOpen());
        assertFalse(ProcessHandle.of(client.pid()).map(ProcessHandle::isAlive).orElse(false), "the service exited on shutdown");
    }

    /**
     * The launches the plugin's Python and Go extensions send
     * ({@link RunKind#PYTHON}, {@link RunKind#GO}), each prepared by the real
     * service and run as the extension would run it: Python with the
     * environment {@link RunEnvironment} computes (the IDE's inherited under
     * it), the Go program through the link {@link RunKind#routedProgram}
     * names, with only the session's variables added. Both see the pod's
     * variable and file; the Go program started directly, with the same
     * variables, sees the variable but not the file (the link is what puts it
     * under the seccomp filter).
     */
    @Test
    void thePythonAndGoLaunchesRunInThePod() {
        String target = System.getenv("MIRRORD_TEST_TARGET");
        String workspaceDir = System.getenv("MIRRORD_TEST_WORKSPACE");
        String goProgram = System.getenv("MIRRORD_TEST_GO_PROGRAM");
        assumeTrue(target != null && workspaceDir != null && goProgram != null,
                "MIRRORD_TEST_TARGET, MIRRORD_TEST_WORKSPACE and MIRRORD_TEST_GO_PROGRAM are set by tests/tests/intellij.rs");
        Path workspace = Path.of(workspaceDir);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> runKinds(target, workspace, goProgram));
    }

    private void runKinds(String target, Path workspace, String goProgram) throws Exception {
        List<Long> pids = new ArrayList<>();
        MirrordIdeClient client = MirrordIdeClient.start(binary(), workspace, targets -> target, new ServiceListener() {},
                MirrordIdeClient.Timeouts.defaults());
        pids.add(client.pid());
        try {
            // Python: the command line's variables in, the patched environment out.
            Map<String, String> userEnv = Map.of("USER_VAR", "kept");
            PrepareLaunchResult python = client.prepareLaunch(RunKind.PYTHON.launch(userEnv, java.util.Set.of(), null), null);
            RunKind.PYTHON.check(python);
            RunEnvironment env = new RunEnvironment(userEnv, true).patchedBy(python.env(), System.getenv());
            assertTrue(env.passParent(), "nothing inherited was unset");
            assertTrue(env.explicit().get("LD_PRELOAD").contains("libmirrord_layer.so"), env.explicit().toString());
            ProcessBuilder py = new ProcessBuilder("python3", "-c", DEBUGGEE).directory(workspace.toFile());
            py.environment().putAll(env.explicit());
            assertEquals("pod_name=standin-pod message=this file exists only in the pod user=kept dropped=unset", run(py));

            // Go: the program goes to the service and the link comes back.
            PrepareLaunchResult go = client.prepareLaunch(RunKind.GO.launch(Map.of(), java.util.Set.of(), goProgram), null);
            RunKind.GO.check(go);
            String link = RunKind.routedProgram(go);
            assertFalse(link.equals(goProgram), "the run starts the link, not the program");
            Map<String, String> session = go.env().toSet();
            // The layer's variables are for the Go program's dynamic
            // children; the program itself never loads the layer (a Go
            // program under the marker keeps it inert).
            assertTrue(session.getOrDefault("LD_PRELOAD", "").contains("libmirrord_layer"), session.keySet().toString());
            assertEquals("1", session.get("MIRRORD_SYSCALL_PATH"), session.keySet().toString());
            ProcessBuilder routed = new ProcessBuilder(link, "routed.").directory(workspace.toFile());
            routed.environment().putAll(session);
            String out = run(routed);
            assertTrue(out.contains("routed.env=standin-pod"), out);
            assertTrue(out.contains("routed.file=this file exists only in the pod"), out);
            ProcessBuilder direct = new ProcessBuilder(goProgram, "direct.").directory(workspace.toFile());
            direct.environment().putAll(session);
            String local = run(direct);
            assertTrue(local.contains("direct.env=standin-pod"), local);
            assertTrue(local.contains("direct.file=ERR:") || local.contains("direct.notfound="), "the file is the pod's only: " + local);

            client.sessions().forEach(s -> pids.add(s.pid()));
            for (SessionInfo s : client.sessions()) {
                if (s.running()) {
                    client.endSession(s.sessionId());
                }
            }
            assertTrue(client.sessions().stream().noneMatch(SessionInfo::running), "every session ended");
        } finally {
            client.close();
            writePids(workspace, pids);
        }
        assertFalse(ProcessHandle.of(client.pid()).map(ProcessHandle::isAlive).orElse(false), "the service exited on shutdown");
    }

    /** Runs {@code process} to its end (30 s at most) and returns its output, stderr included. */
    private static String run(ProcessBuilder process) throws Exception {
        Process p = process.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "still running: " + process.command());
        return out;
    }

    private static void waitFor(java.util.function.BooleanSupplier check, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!check.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /** Adds {@code pids} to the workspace's pids.txt (each test adds its own). */
    private static void writePids(Path workspace, List<Long> pids) throws IOException {
        StringBuilder text = new StringBuilder();
        pids.forEach(pid -> text.append(pid).append('\n'));
        Files.writeString(workspace.resolve("pids.txt"), text, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
    }
}
