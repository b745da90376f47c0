package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class SessionTrackerTest {
    private static SessionInfo running(String id, String target) {
        return new SessionInfo(id, target, 100, 1, "running");
    }

    @Test
    void theTextFollowsTheToggleTheStartingStepAndTheRunningSessions() {
        SessionTracker tracker = new SessionTracker();
        AtomicInteger changes = new AtomicInteger();
        tracker.onChange(changes::incrementAndGet);
        assertEquals("mirrord: off", tracker.status(false).text());
        assertEquals("mirrord: on", tracker.status(true).text());
        assertTrue(tracker.status(true).tooltip().startsWith("No mirrord session is running."), tracker.status(true).tooltip());

        tracker.onProgress("launch-1", "starting the agent", false);
        assertEquals("mirrord: starting the agent", tracker.status(true).text());
        tracker.onProgress("launch-1", "running in pid/7", true);
        tracker.refresh(List.of(running("s1", "pid/7"), new SessionInfo("s0", "pid/3", 90, 0, "ended")));
        assertEquals("mirrord: pid/7", tracker.status(true).text(), "ended sessions are not shown");
        tracker.refresh(List.of(running("s1", "pid/7"), running("s2", "targetless")));
        assertEquals("mirrord: pid/7 +1", tracker.status(true).text());
        assertEquals("Running: pid/7 (session s1), targetless (session s2). Click to run without mirrord.", tracker.status(true).tooltip());
        assertEquals("mirrord: pid/7 +1 (off)", tracker.status(false).text(), "switched off while sessions still run");

        tracker.onSessionEnded("s1", "debuggee exited");
        assertEquals(List.of("targetless"), tracker.runningTargets());
        tracker.onClosed(null);
        assertEquals("mirrord: on", tracker.status(true).text(), "nothing runs once the service is gone");
        assertEquals(6, changes.get(), "every event repaints");
    }

    /** As the client's listener: progress and session ends arrive from the service. */
    @Test
    void itListensToTheService() {
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            SessionTracker tracker = new SessionTracker();
            try (FakeService fake = new FakeService()) {
                MirrordIdeClient client = fake.client(t -> null, tracker, Duration.ofSeconds(5));
                Future<?> server = Executors.newSingleThreadExecutor().submit(() -> {
                    fake.handshake();
                    fake.send("{\"jsonrpc\":\"2.0\",\"method\":\"mirrord/progress\",\"params\":{\"id\":\"l1\",\"message\":\"agent started\",\"done\":false}}");
                    fake.reply(fake.receive("mirrord/sessions"),
                            "{\"sessions\":[{\"sessionId\":\"s1\",\"target\":\"pid/7\",\"pid\":99,\"since\":5,\"state\":\"running\"}]}");
                    fake.send("{\"jsonrpc\":\"2.0\",\"method\":\"mirrord/sessionEnded\",\"params\":{\"sessionId\":\"s1\",\"reason\":\"debuggee exited\"}}");
                    fake.closeOutput();
                    return null;
                });
                client.initialize("file:///work");
                tracker.refresh(client.sessions());
                server.get();
                // The end of the stream reaches the tracker on the reader thread.
                while (!tracker.status(true).text().equals("mirrord: on")) {
                    Thread.sleep(10);
                }
                assertEquals(List.of(), tracker.runningTargets(), "the service's end clears the starting step and the sessions");
                client.close();
            }
        });
    }
}
