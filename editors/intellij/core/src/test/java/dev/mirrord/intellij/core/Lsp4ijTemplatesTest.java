package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The LSP4IJ templates in editors/intellij/lsp4ij: their JSON has the
 * shape LSP4IJ's template descriptor documents, and the command lines they
 * hold start the real binaries and answer {@code initialize} (LSP for
 * lsp/*, DAP for dap/*). The handshakes need {@code MIRRORD_BIN} (its
 * directory goes first on PATH, as an installed mirrord would be);
 * tests/tests/intellij.rs sets it and checks nothing was skipped.
 */
class Lsp4ijTemplatesTest {
    private static final Path TEMPLATES = Path.of(System.getProperty("user.dir")).resolve("../lsp4ij").normalize();

    private static List<Path> templates(String kind) throws IOException {
        try (Stream<Path> dirs = Files.list(TEMPLATES.resolve(kind))) {
            return dirs.filter(Files::isDirectory).sorted().toList();
        }
    }

    private static JsonObject read(Path file) throws IOException {
        return JsonParser.parseString(Files.readString(file)).getAsJsonObject();
    }

    /** The descriptor fields LSP4IJ reads: id, name, programArgs.default, fileTypeMappings[{fileType{name?,patterns?}, languageId}]. */
    private static String checkDescriptor(Path dir) throws IOException {
        JsonObject t = read(dir.resolve("template.json"));
        String where = dir.getFileName() + "/template.json";
        assertEquals(dir.getFileName().toString(), t.get("id").getAsString(), where + ": id is the folder's name");
        assertFalse(t.get("name").getAsString().isBlank(), where + ": name");
        String command = t.getAsJsonObject("programArgs").get("default").getAsString();
        assertFalse(command.contains("\"") || command.contains("'"), where + ": the test splits the command on spaces");
        var mappings = t.getAsJsonArray("fileTypeMappings");
        assertFalse(mappings.isEmpty(), where + ": fileTypeMappings");
        for (JsonElement m : mappings) {
            JsonObject fileType = m.getAsJsonObject().getAsJsonObject("fileType");
            assertTrue(fileType.has("name") || fileType.has("patterns"), where + ": a fileType needs a name or patterns");
            if (fileType.has("patterns")) {
                for (JsonElement p : fileType.getAsJsonArray("patterns")) {
                    assertFalse(p.getAsString().isBlank(), where + ": pattern");
                }
            }
            assertFalse(m.getAsJsonObject().get("languageId").getAsString().isBlank(), where + ": languageId");
        }
        return command;
    }

    @Test
    void templatesHaveTheDocumentedShape() throws IOException {
        List<Path> lsp = templates("lsp");
        List<Path> dap = templates("dap");
        assertEquals(List.of("mirrord-ide"), lsp.stream().map(p -> p.getFileName().toString()).toList());
        assertEquals(List.of("mirrord-debugpy"), dap.stream().map(p -> p.getFileName().toString()).toList());
        for (Path dir : lsp) {
            assertTrue(checkDescriptor(dir).startsWith("mirrord ide"));
            // Optional files LSP4IJ reads as JSON objects.
            for (String optional : List.of("initializationOptions.json", "settings.json")) {
                if (Files.exists(dir.resolve(optional))) {
                    read(dir.resolve(optional));
                }
            }
        }
        for (Path dir : dap) {
            assertTrue(checkDescriptor(dir).startsWith("mirrord-dap "));
            JsonObject launch = read(dir.resolve("launch.json"));
            assertEquals("launch", launch.get("request").getAsString());
            assertEquals(dir.getFileName().toString(), launch.get("type").getAsString());
        }
    }

    private static Path binDir() {
        String bin = System.getenv("MIRRORD_BIN");
        assumeTrue(bin != null && !bin.isEmpty(), "MIRRORD_BIN is set by tests/tests/intellij.rs");
        return Path.of(bin).getParent();
    }

    /**
     * Starts a template's command with the binaries' directory first on PATH
     * (Java looks the program up in its own PATH, so it is resolved here).
     */
    private static Process start(String command, Path cwd) throws IOException {
        String path = binDir() + ":" + System.getenv("PATH");
        List<String> argv = new ArrayList<>(List.of(command.trim().split("\\s+")));
        String program = argv.get(0);
        argv.set(0, Stream.of(path.split(":")).map(d -> Path.of(d, program)).filter(Files::isExecutable)
                .findFirst().map(Path::toString).orElseThrow(() -> new AssertionError(program + " is not on " + path)));
        ProcessBuilder builder = new ProcessBuilder(argv).directory(cwd.toFile());
        builder.environment().put("PATH", path);
        builder.redirectError(ProcessBuilder.Redirect.DISCARD);
        return builder.start();
    }

    /** Ends a process and everything it started. */
    private static void stop(Process process) throws InterruptedException {
        List<ProcessHandle> tree = new ArrayList<>(process.descendants().toList());
        tree.add(process.toHandle());
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            tree.forEach(ProcessHandle::destroy);
        }
        for (ProcessHandle h : tree) {
            h.onExit().orTimeout(5, TimeUnit.SECONDS).exceptionally(e -> {
                h.destroyForcibly();
                return h;
            }).join();
        }
    }

    @Test
    void theLanguageServerCommandAnswersTheLspHandshake(@TempDir Path workspace) throws Exception {
        binDir();
        for (Path dir : templates("lsp")) {
            String command = checkDescriptor(dir);
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                Process process = start(command, workspace);
                MirrordIdeClient client = MirrordIdeClient.over(process.getInputStream(), process.getOutputStream(),
                        targets -> null, new ServiceListener() {}, MirrordIdeClient.Timeouts.defaults(), () -> "");
                try {
                    client.initialize(workspace.toUri().toString());
                    assertTrue(client.sessions().isEmpty(), "a fresh service has no sessions");
                } finally {
                    client.close();
                    process.getOutputStream().close();
                    stop(process);
                }
                assertEquals(0, process.exitValue(), command + " exits cleanly after shutdown/exit");
            });
        }
    }

    @Test
    void theDebugAdapterCommandAnswersTheDapHandshake(@TempDir Path workspace) throws Exception {
        binDir();
        for (Path dir : templates("dap")) {
            String command = checkDescriptor(dir);
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                Process process = start(command, workspace);
                try {
                    OutputStream in = process.getOutputStream();
                    InputStream out = process.getInputStream();
                    Framing.write(in, "{\"seq\":1,\"type\":\"request\",\"command\":\"initialize\",\"arguments\":"
                            + "{\"clientID\":\"lsp4ij\",\"adapterID\":\"" + dir.getFileName() + "\",\"pathFormat\":\"path\","
                            + "\"linesStartAt1\":true,\"columnsStartAt1\":true}}");
                    JsonObject response = null;
                    while (response == null) {
                        String body = Framing.read(out);
                        assertTrue(body != null, command + " closed its output before answering initialize");
                        JsonObject message = JsonParser.parseString(body).getAsJsonObject();
                        if ("response".equals(message.get("type").getAsString())) {
                            response = message;
                        }
                    }
                    assertEquals("initialize", response.get("command").getAsString(), response.toString());
                    assertEquals(1, response.get("request_seq").getAsInt());
                    assertTrue(response.get("success").getAsBoolean(), response.toString());
                    assertTrue(response.getAsJsonObject("body").has("supportsConfigurationDoneRequest"), response.toString());
                } finally {
                    stop(process);
                }
            });
        }
    }
}
