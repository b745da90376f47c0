package dev.mirrord.intellij.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * The editor's side of {@code mirrord ide}: the LSP handshake, the
 * {@code mirrord/*} requests as typed calls, {@code mirrord/pickTarget}
 * answered by a {@link TargetPicker}, progress and session ends to a
 * {@link ServiceListener}, and an orderly shutdown (which ends every
 * session the service still runs). Calls block; run them off the UI
 * thread, or use {@link #prepareLaunchAsync} to be able to cancel.
 */
public final class MirrordIdeClient implements AutoCloseable {
    static final String PEER = "mirrord ide";

    /** How long each kind of call may take. */
    public record Timeouts(Duration handshake, Duration request, Duration launch, Duration shutdown) {
        /** Launches start an agent: they get a minute; everything else answers at once. */
        public static Timeouts defaults() {
            return new Timeouts(Duration.ofSeconds(15), Duration.ofSeconds(15), Duration.ofSeconds(60), Duration.ofSeconds(5));
        }
    }

    private final JsonRpcConnection connection;
    private final Timeouts timeouts;
    private final ServiceProcess process;
    /** Set by {@link #close}: the connection's end is then the clean shutdown, not a crash. */
    private volatile boolean closing;

    private MirrordIdeClient(JsonRpcConnection connection, Timeouts timeouts, ServiceProcess process) {
        this.connection = connection;
        this.timeouts = timeouts;
        this.process = process;
    }

    /**
     * Starts {@code binary ide --stdio} in {@code workspace} and does the
     * handshake.
     *
     * @throws MirrordIdeException when the binary does not start or does not answer
     */
    public static MirrordIdeClient start(Path binary, Path workspace, TargetPicker picker, ServiceListener listener, Timeouts timeouts) {
        ServiceProcess process = ServiceProcess.start(binary, workspace);
        Process p = process.process();
        MirrordIdeClient client = over(p.getInputStream(), p.getOutputStream(), picker, listener, timeouts, process::describeExit, process);
        try {
            client.initialize(workspace.toUri().toString());
        } catch (MirrordIdeException e) {
            client.connection.close();
            process.stop(0);
            throw e;
        }
        return client;
    }

    /** A client over given streams (a fake service in tests); call {@link #initialize} next. */
    public static MirrordIdeClient over(InputStream in, OutputStream out, TargetPicker picker, ServiceListener listener,
                                       Timeouts timeouts, Supplier<String> whyClosed) {
        return over(in, out, picker, listener, timeouts, whyClosed, null);
    }

    private static MirrordIdeClient over(InputStream in, OutputStream out, TargetPicker picker, ServiceListener listener,
                                         Timeouts timeouts, Supplier<String> whyClosed, ServiceProcess process) {
        JsonRpcConnection connection = new JsonRpcConnection(PEER, in, out,
                (method, params) -> serve(picker, method, params),
                (method, params) -> notified(listener, method, params),
                whyClosed);
        MirrordIdeClient client = new MirrordIdeClient(connection, timeouts, process);
        connection.onClose(() -> {
            try {
                listener.onClosed(client.closing ? null : connection.closeCause());
            } catch (RuntimeException e) {
                // A listener's failure must not stop the shutdown.
            }
        });
        return client;
    }

    /** The LSP handshake: {@code initialize} then {@code initialized}. */
    public void initialize(String rootUri) {
        JsonObject params = new JsonObject();
        params.addProperty("processId", ProcessHandle.current().pid());
        params.addProperty("rootUri", rootUri);
        params.add("capabilities", new JsonObject());
        JsonObject info = new JsonObject();
        info.addProperty("name", "mirrord-intellij");
        params.add("clientInfo", info);
        JsonElement result = connection.call("initialize", params, timeouts.handshake());
        JsonRpcConnection.decode(PEER, "initialize", result, r -> r.getAsJsonObject().get("capabilities").getAsJsonObject());
        connection.notify("initialized", new JsonObject());
    }

    /** {@code mirrord/listTargets}: the targets a user can pick on this machine. */
    public List<Target> listTargets() {
        JsonElement result = connection.call("mirrord/listTargets", null, timeouts.request());
        return JsonRpcConnection.decode(PEER, "mirrord/listTargets", result, MirrordIdeClient::targets);
    }

    /**
     * {@code mirrord/prepareLaunch} for a resolved configuration (with
     * {@code type}, {@code request: launch}, {@code env}, and optionally a
     * {@code mirrord} object); may ask the {@link TargetPicker}.
     */
    public PrepareLaunchResult prepareLaunch(JsonObject configuration, String workspaceFolder) {
        return JsonRpcConnection.decode(PEER, "mirrord/prepareLaunch",
                JsonRpcConnection.await(prepareLaunchRaw(configuration, workspaceFolder), "mirrord/prepareLaunch"),
                MirrordIdeClient::prepared);
    }

    /** {@link #prepareLaunch}, cancellable: cancelling the future sends {@code $/cancelRequest}. */
    public CompletableFuture<PrepareLaunchResult> prepareLaunchAsync(JsonObject configuration, String workspaceFolder) {
        CompletableFuture<JsonElement> raw = prepareLaunchRaw(configuration, workspaceFolder);
        CompletableFuture<PrepareLaunchResult> typed = raw.thenApply(r -> JsonRpcConnection.decode(PEER, "mirrord/prepareLaunch", r, MirrordIdeClient::prepared));
        typed.whenComplete((r, e) -> {
            if (typed.isCancelled()) {
                raw.cancel(true);
            }
        });
        return typed;
    }

    private CompletableFuture<JsonElement> prepareLaunchRaw(JsonObject configuration, String workspaceFolder) {
        JsonObject params = new JsonObject();
        params.add("configuration", configuration);
        if (workspaceFolder != null) {
            params.addProperty("workspaceFolder", workspaceFolder);
        }
        return connection.request("mirrord/prepareLaunch", params, timeouts.launch());
    }

    /** {@code mirrord/endSession}: ends a session and waits for its intproxy and agent to stop. */
    public void endSession(String sessionId) {
        JsonObject params = new JsonObject();
        params.addProperty("sessionId", sessionId);
        connection.call("mirrord/endSession", params, timeouts.request());
    }

    /** {@code mirrord/sessions}: every session of this service, running or ended. */
    public List<SessionInfo> sessions() {
        JsonElement result = connection.call("mirrord/sessions", null, timeouts.request());
        return JsonRpcConnection.decode(PEER, "mirrord/sessions", result, MirrordIdeClient::sessionList);
    }

    /** The service's PID, or -1 over plain streams. */
    public long pid() {
        return process == null ? -1 : process.pid();
    }

    /** The service's last log lines (for "Show log"). */
    public List<String> logTail() {
        return process == null ? List.of() : process.logTail();
    }

    public boolean isOpen() {
        return connection.isOpen();
    }

    /**
     * {@code shutdown} then {@code exit} (the service ends its sessions), then
     * waits for the process, killing it if it lingers. Never throws.
     */
    @Override
    public void close() {
        closing = true;
        if (connection.isOpen()) {
            try {
                connection.call("shutdown", null, timeouts.shutdown());
                connection.notify("exit", null);
            } catch (MirrordIdeException ignored) {
                // Already gone, or not answering: stopping the process below ends it.
            }
        }
        if (process != null) {
            try {
                process.process().getOutputStream().close();
            } catch (java.io.IOException ignored) {
                // Closed already.
            }
            process.stop(timeouts.shutdown().toMillis());
        }
        connection.close();
    }

    private static JsonElement serve(TargetPicker picker, String method, JsonElement params) throws Exception {
        if (!method.equals("mirrord/pickTarget")) {
            throw new UnsupportedOperationException(method);
        }
        List<Target> offered = JsonRpcConnection.decode(PEER, "mirrord/pickTarget", params, MirrordIdeClient::targets);
        String picked = picker.pick(offered);
        JsonObject answer = new JsonObject();
        if (picked == null) {
            answer.add("target", JsonNull.INSTANCE);
        } else {
            answer.addProperty("target", picked);
        }
        return answer;
    }

    private static void notified(ServiceListener listener, String method, JsonElement params) {
        try {
            if (method.equals("mirrord/progress")) {
                JsonObject p = params.getAsJsonObject();
                listener.onProgress(p.get("id").getAsString(), p.get("message").getAsString(), p.get("done").getAsBoolean());
            } else if (method.equals("mirrord/sessionEnded")) {
                JsonObject p = params.getAsJsonObject();
                listener.onSessionEnded(p.get("sessionId").getAsString(), p.get("reason").getAsString());
            }
        } catch (RuntimeException e) {
            // A notification of an unknown shape is dropped: it asks for no answer.
        }
    }

    private static List<Target> targets(JsonElement result) {
        JsonArray list = result.getAsJsonObject().get("targets").getAsJsonArray();
        List<Target> targets = new ArrayList<>();
        for (JsonElement t : list) {
            JsonObject o = t.getAsJsonObject();
            targets.add(new Target(o.get("path").getAsString(), o.has("description") ? o.get("description").getAsString() : ""));
        }
        return targets;
    }

    private static PrepareLaunchResult prepared(JsonElement result) {
        JsonObject o = result.getAsJsonObject();
        JsonObject configuration = o.get("configuration").getAsJsonObject();
        JsonElement id = o.get("sessionId");
        return new PrepareLaunchResult(configuration, id == null || id.isJsonNull() ? null : id.getAsString());
    }

    private static List<SessionInfo> sessionList(JsonElement result) {
        List<SessionInfo> sessions = new ArrayList<>();
        for (JsonElement s : result.getAsJsonObject().get("sessions").getAsJsonArray()) {
            JsonObject o = s.getAsJsonObject();
            sessions.add(new SessionInfo(o.get("sessionId").getAsString(), o.get("target").getAsString(),
                    o.get("pid").getAsLong(), o.get("since").getAsLong(), o.get("state").getAsString()));
        }
        return sessions;
    }
}
