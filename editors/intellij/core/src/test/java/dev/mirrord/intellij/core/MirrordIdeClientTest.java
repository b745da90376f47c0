package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The client against {@link FakeService}: every failure ends in a named exception, never a hang. */
class MirrordIdeClientTest {
    private static final Duration NO_HANG = Duration.ofSeconds(10);
    private static final String LAUNCH = "{\"type\":\"java\",\"request\":\"launch\",\"env\":{\"USER_VAR\":\"kept\",\"DROP_ME\":null}}";

    private FakeService fake;
    private MirrordIdeClient client;
    private final List<String> events = new CopyOnWriteArrayList<>();
    private final ServiceListener listener = new ServiceListener() {
        @Override
        public void onProgress(String id, String message, boolean done) {
            events.add("progress " + id + " " + message + " " + done);
        }

        @Override
        public void onSessionEnded(String sessionId, String reason) {
            events.add("ended " + sessionId + " " + reason);
        }

        @Override
        public void onClosed(MirrordIdeException cause) {
            events.add("closed " + (cause == null ? "cleanly" : cause.kind()));
        }
    };

    @BeforeEach
    void setUp() throws IOException {
        fake = new FakeService();
    }

    @AfterEach
    void tearDown() throws IOException {
        if (client != null) {
            client.close();
        }
        fake.close();
    }

    /** Connects with {@code timeout} per call and answers the handshake. */
    private void connect(TargetPicker picker, Duration timeout) throws Exception {
        client = fake.client(picker, listener, timeout);
        Future<?> server = Executors.newSingleThreadExecutor().submit(() -> {
            fake.handshake();
            return null;
        });
        client.initialize("file:///work");
        server.get();
    }

    private static JsonObject json(String s) {
        return JsonParser.parseString(s).getAsJsonObject();
    }

    /** Runs {@code script} as the service while the test thread calls the client. */
    private static Future<?> serve(ThrowingRunnable script) {
        return Executors.newSingleThreadExecutor().submit(() -> {
            script.run();
            return null;
        });
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void handshakeAndTypedCalls() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(5));
            Future<?> server = serve(() -> {
                JsonObject list = fake.receive("mirrord/listTargets");
                fake.reply(list, "{\"targets\":[{\"path\":\"targetless\",\"description\":\"no target\"},{\"path\":\"pid/7\",\"description\":\"standin\"}]}");
                JsonObject sessions = fake.receive("mirrord/sessions");
                fake.reply(sessions, "{\"sessions\":[{\"sessionId\":\"s1\",\"target\":\"pid/7\",\"pid\":99,\"since\":5,\"state\":\"running\"}]}");
                JsonObject end = fake.receive("mirrord/endSession");
                assertEquals("s1", end.getAsJsonObject("params").get("sessionId").getAsString());
                fake.reply(end, "null");
            });
            assertEquals(List.of(new Target("targetless", "no target"), new Target("pid/7", "standin")), client.listTargets());
            assertEquals(List.of(new SessionInfo("s1", "pid/7", 99, 5, "running")), client.sessions());
            client.endSession("s1");
            server.get();
        });
    }

    @Test
    void pickTargetIsAnsweredByThePickerAndProgressReachesTheListener() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            List<List<Target>> offered = new CopyOnWriteArrayList<>();
            connect(targets -> {
                offered.add(targets);
                return "pid/7";
            }, Duration.ofSeconds(5));
            CompletableFuture<JsonObject> answer = new CompletableFuture<>();
            Future<?> server = serve(() -> {
                JsonObject launch = fake.receive("mirrord/prepareLaunch");
                assertEquals("kept", launch.getAsJsonObject("params").getAsJsonObject("configuration")
                        .getAsJsonObject("env").get("USER_VAR").getAsString());
                JsonObject sentEnv = launch.getAsJsonObject("params").getAsJsonObject("configuration").getAsJsonObject("env");
                assertTrue(sentEnv.has("DROP_ME") && sentEnv.get("DROP_ME").isJsonNull(), "a null (unset) reaches the service: " + sentEnv);
                fake.send("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"mirrord/pickTarget\",\"params\":{\"targets\":[{\"path\":\"pid/7\",\"description\":\"standin\"}]}}");
                JsonObject picked = fake.receive();
                answer.complete(picked);
                fake.send("{\"jsonrpc\":\"2.0\",\"method\":\"mirrord/progress\",\"params\":{\"id\":\"launch-1\",\"message\":\"agent started\",\"done\":false}}");
                fake.send("{\"jsonrpc\":\"2.0\",\"method\":\"mirrord/progress\",\"params\":{\"id\":\"launch-1\",\"message\":\"running in pid/7\",\"done\":true}}");
                fake.reply(launch, "{\"configuration\":{\"type\":\"java\",\"env\":{\"USER_VAR\":\"kept\",\"MIRRORD_X\":\"1\"},\"mirrord\":false},\"sessionId\":\"s1\"}");
                fake.send("{\"jsonrpc\":\"2.0\",\"method\":\"mirrord/sessionEnded\",\"params\":{\"sessionId\":\"s1\",\"reason\":\"debuggee exited\"}}");
            });
            PrepareLaunchResult result = client.prepareLaunch(json(LAUNCH), "file:///work");
            server.get();
            assertEquals("s1", result.sessionId());
            assertEquals("1", result.env().applyTo(java.util.Map.of()).get("MIRRORD_X"));
            assertEquals(List.of(List.of(new Target("pid/7", "standin"))), offered);
            assertEquals(json("{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"target\":\"pid/7\"}}"), answer.get());
            // The notification after the answer arrives on the reader thread: wait for it.
            while (events.size() < 3) {
                Thread.sleep(10);
            }
            assertEquals(List.of("progress launch-1 agent started false", "progress launch-1 running in pid/7 true",
                    "ended s1 debuggee exited"), events);
        });
    }

    @Test
    void aCancelledPickAnswersNullAndAFailingPickerAnswersAnError() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            List<Integer> calls = new CopyOnWriteArrayList<>();
            connect(targets -> {
                calls.add(1);
                if (calls.size() == 1) {
                    return null;
                }
                throw new IllegalStateException("no project open");
            }, Duration.ofSeconds(5));
            fake.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"mirrord/pickTarget\",\"params\":{\"targets\":[]}}");
            assertEquals(json("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"target\":null}}"), fake.receive());
            fake.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"mirrord/pickTarget\",\"params\":{\"targets\":[]}}");
            JsonObject failed = fake.receive();
            assertEquals(-32603, failed.getAsJsonObject("error").get("code").getAsInt());
            assertTrue(failed.getAsJsonObject("error").get("message").getAsString().contains("no project open"), failed.toString());
            fake.send("{\"jsonrpc\":\"2.0\",\"id\":\"w\",\"method\":\"window/workDoneProgress/create\",\"params\":{}}");
            JsonObject unknown = fake.receive();
            assertEquals("w", unknown.get("id").getAsString());
            assertEquals(-32601, unknown.getAsJsonObject("error").get("code").getAsInt());
        });
    }

    @Test
    void aServiceErrorIsPassedOnAsItsMessage() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(5));
            Future<?> server = serve(() -> {
                JsonObject launch = fake.receive("mirrord/prepareLaunch");
                fake.send("{\"jsonrpc\":\"2.0\",\"id\":" + launch.get("id") + ",\"error\":{\"code\":-32803,\"message\":\"the mirrord config is not valid: feature.fs\"}}");
            });
            var e = assertThrows(MirrordIdeException.class, () -> client.prepareLaunch(json(LAUNCH), null));
            server.get();
            assertEquals(MirrordIdeException.Kind.REQUEST_FAILED, e.kind());
            assertEquals(-32803, e.code());
            assertEquals("the mirrord config is not valid: feature.fs", e.getMessage());
            assertTrue(client.isOpen(), "an error answer does not close the connection");
        });
    }

    @Test
    void aMalformedFrameFailsThePendingCallAndNamesTheCause() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(30));
            Future<?> server = serve(() -> {
                fake.receive("mirrord/listTargets");
                fake.sendRaw("warning: something printed to stdout\r\n\r\n");
            });
            var e = assertThrows(MirrordIdeException.class, () -> client.listTargets());
            server.get();
            assertEquals(MirrordIdeException.Kind.MALFORMED, e.kind());
            assertTrue(e.getMessage().contains("not a protocol message") && e.getMessage().contains("stdout"), e.getMessage());
            assertTrue(!client.isOpen());
            var after = assertThrows(MirrordIdeException.class, () -> client.sessions());
            assertEquals(MirrordIdeException.Kind.MALFORMED, after.kind(), "later calls fail at once with the same cause");
        });
    }

    @Test
    void aBodyThatIsNotJsonRpcIsNamed() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(30));
            Future<?> server = serve(() -> {
                fake.receive("mirrord/sessions");
                fake.send("{\"jsonrpc\":\"2.0\",\"id\":");
            });
            var e = assertThrows(MirrordIdeException.class, () -> client.sessions());
            server.get();
            assertEquals(MirrordIdeException.Kind.MALFORMED, e.kind());
            assertTrue(e.getMessage().contains("not JSON"), e.getMessage());
        });
    }

    @Test
    void aResultOfTheWrongShapeIsNamed() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(5));
            Future<?> server = serve(() -> {
                JsonObject launch = fake.receive("mirrord/prepareLaunch");
                fake.reply(launch, "{\"config\":{}}");
            });
            var e = assertThrows(MirrordIdeException.class, () -> client.prepareLaunch(json(LAUNCH), null));
            server.get();
            assertEquals(MirrordIdeException.Kind.MALFORMED, e.kind());
            assertTrue(e.getMessage().contains("unexpected shape") && e.getMessage().contains("update both"), e.getMessage());
            assertTrue(client.isOpen(), "one odd result does not close the connection");
        });
    }

    @Test
    void aCrashMidRequestFailsItWithWhatIsKnown() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(30));
            Future<?> server = serve(() -> {
                fake.receive("mirrord/prepareLaunch");
                fake.sendRaw("Content-Length: 100\r\n\r\n{\"jsonrpc\"");
                fake.closeOutput();
            });
            var e = assertThrows(MirrordIdeException.class, () -> client.prepareLaunch(json(LAUNCH), null));
            server.get();
            assertEquals(MirrordIdeException.Kind.CRASHED, e.kind());
            assertTrue(e.getMessage().startsWith("mirrord ide stopped: the stream ended inside a message"), e.getMessage());
            assertTrue(e.getMessage().contains("(fake service closed)") && e.getMessage().contains("Show log"), e.getMessage());
            // Pending calls fail first; the listener hears next, on the reader thread.
            while (events.isEmpty()) {
                Thread.sleep(10);
            }
            assertEquals(List.of("closed CRASHED"), events, "the listener hears of the crash once");
        });
    }

    @Test
    void aCleanCloseIsReportedWithoutACause() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(5));
            Future<?> server = serve(() -> {
                fake.reply(fake.receive("shutdown"), "null");
                fake.receive("exit");
                fake.closeOutput();
            });
            client.close();
            server.get();
            assertEquals(List.of("closed cleanly"), events);
            client.close();
            assertEquals(List.of("closed cleanly"), events, "once, however often close is called");
        });
    }

    @Test
    void aTimeoutFailsTheCallAndCancelsItAtTheService() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofMillis(300));
            CompletableFuture<JsonObject> cancel = new CompletableFuture<>();
            CompletableFuture<JsonObject> request = new CompletableFuture<>();
            Future<?> server = serve(() -> {
                request.complete(fake.receive("mirrord/prepareLaunch"));
                cancel.complete(fake.receive("$/cancelRequest"));
            });
            long started = System.nanoTime();
            var e = assertThrows(MirrordIdeException.class, () -> client.prepareLaunch(json(LAUNCH), null));
            long millis = (System.nanoTime() - started) / 1_000_000;
            server.get();
            assertEquals(MirrordIdeException.Kind.TIMEOUT, e.kind());
            assertTrue(e.getMessage().contains("did not answer mirrord/prepareLaunch within 300 ms"), e.getMessage());
            assertTrue(millis >= 250, "failed after " + millis + " ms, before the timeout");
            assertEquals(request.get().get("id"), cancel.get().getAsJsonObject("params").get("id"));
            // A late answer to the timed-out call is dropped; the connection still works.
            fake.reply(request.get(), "{\"configuration\":{},\"sessionId\":null}");
            Future<?> next = serve(() -> fake.reply(fake.receive("mirrord/sessions"), "{\"sessions\":[]}"));
            assertEquals(List.of(), client.sessions());
            next.get();
        });
    }

    @Test
    void cancellingALaunchSendsCancelRequest() {
        assertTimeoutPreemptively(NO_HANG, () -> {
            connect(targets -> null, Duration.ofSeconds(30));
            CompletableFuture<PrepareLaunchResult> launch = client.prepareLaunchAsync(json(LAUNCH), null);
            JsonObject request = fake.receive("mirrord/prepareLaunch");
            launch.cancel(true);
            JsonObject cancel = fake.receive("$/cancelRequest");
            assertEquals(request.get("id"), cancel.getAsJsonObject("params").get("id"));
            assertThrows(CancellationException.class, launch::get);
        });
    }

    @Test
    void aServiceThatExitsDuringTheHandshakeIsNamedWithItsExitCodeAndLog(@TempDir Path dir) throws IOException {
        Path script = dir.resolve("mirrord");
        Files.writeString(script, "#!/bin/sh\necho 'error: cannot read the config' >&2\nexit 3\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertTimeoutPreemptively(NO_HANG, () -> {
            var e = assertThrows(MirrordIdeException.class,
                    () -> MirrordIdeClient.start(script, dir, t -> null, listener, MirrordIdeClient.Timeouts.defaults()));
            // The exit may be seen as the end of stdout or as a failed write of `initialize`.
            assertEquals(MirrordIdeException.Kind.CRASHED, e.kind(), e.getMessage());
            assertTrue(e.getMessage().contains("exited with code 3") && e.getMessage().contains("cannot read the config"), e.getMessage());
        });
    }

    @Test
    void aMissingBinaryIsNamedWithTheFix(@TempDir Path dir) {
        Path missing = dir.resolve("no-such-mirrord");
        var e = assertThrows(MirrordIdeException.class,
                () -> MirrordIdeClient.start(missing, dir, t -> null, listener, MirrordIdeClient.Timeouts.defaults()));
        assertEquals(MirrordIdeException.Kind.START, e.kind());
        assertTrue(e.getMessage().contains(missing.toString()) && e.getMessage().contains("install mirrord"), e.getMessage());
    }

}
