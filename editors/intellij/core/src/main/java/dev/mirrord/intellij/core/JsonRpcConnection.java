package dev.mirrord.intellij.core;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * JSON-RPC 2.0 over LSP framing, both directions: requests with ids,
 * per-request timeouts and {@code $/cancelRequest}, notifications, and
 * requests from the peer answered by a handler on a worker thread. One
 * reader thread; writes are serialised. When the stream ends or turns
 * malformed every pending call fails with a {@link MirrordIdeException}
 * saying so: no caller is left waiting.
 */
public final class JsonRpcConnection implements AutoCloseable {
    /** JSON-RPC: the method does not exist. */
    static final int METHOD_NOT_FOUND = -32601;
    /** JSON-RPC: an internal error while handling a request. */
    static final int INTERNAL_ERROR = -32603;
    /** LSP: the request was cancelled. */
    static final int REQUEST_CANCELLED = -32800;

    /** Answers a request from the peer; returns the result, or throws to answer with an error. */
    @FunctionalInterface
    public interface RequestHandler {
        JsonElement handle(String method, JsonElement params) throws Exception;
    }

    /** Receives the peer's notifications (on the reader thread). */
    @FunctionalInterface
    public interface NotificationHandler {
        void handle(String method, JsonElement params);
    }

    /** Keeps {@code null} members: in an {@code env} map they unset a variable. */
    private static final Gson GSON = new com.google.gson.GsonBuilder().serializeNulls().create();

    private final String peer;
    private final InputStream in;
    private final OutputStream out;
    private final RequestHandler requests;
    private final NotificationHandler notifications;
    private final Supplier<String> whyClosed;
    private final Map<Long, CompletableFuture<JsonElement>> pending = new ConcurrentHashMap<>();
    private final AtomicLong nextId = new AtomicLong(1);
    private final AtomicReference<MirrordIdeException> closed = new AtomicReference<>();
    private final ExecutorService workers;
    private final ScheduledExecutorService timers;
    private final Thread reader;
    /** Guards the close action: {@link #shutDown} and {@link #onClose} may race, and it must run once. */
    private final Object closeLock = new Object();
    private Runnable onCloseAction;
    private boolean shutDownDone;

    /**
     * @param peer what the peer is called in messages ({@code mirrord ide})
     * @param whyClosed adds what is known when the stream ends (an exit code, the last lines of a log)
     */
    public JsonRpcConnection(String peer, InputStream in, OutputStream out, RequestHandler requests,
                             NotificationHandler notifications, Supplier<String> whyClosed) {
        this.peer = peer;
        this.in = in;
        this.out = out;
        this.requests = requests;
        this.notifications = notifications;
        this.whyClosed = whyClosed;
        this.workers = Executors.newCachedThreadPool(daemon("mirrord-rpc-handler"));
        this.timers = Executors.newSingleThreadScheduledExecutor(daemon("mirrord-rpc-timer"));
        this.reader = daemon("mirrord-rpc-reader").newThread(this::readLoop);
        this.reader.start();
    }

    /**
     * Runs {@code action} once when the connection closes, for any reason
     * (at once if it is closed already). One action per connection.
     */
    public void onClose(Runnable action) {
        boolean now;
        synchronized (closeLock) {
            if (onCloseAction != null) {
                throw new IllegalStateException("onClose is already set");
            }
            onCloseAction = action;
            now = shutDownDone;
        }
        if (now) {
            action.run();
        }
    }

    /** Why the connection closed, or {@code null} while it is open. */
    public MirrordIdeException closeCause() {
        return closed.get();
    }

    /**
     * Sends a request; the future completes with its result or fails with a
     * {@link MirrordIdeException}. Cancelling the future sends
     * {@code $/cancelRequest}; after {@code timeout} it fails with
     * {@link MirrordIdeException.Kind#TIMEOUT} (and is cancelled at the peer).
     */
    public CompletableFuture<JsonElement> request(String method, Object params, Duration timeout) {
        long id = nextId.getAndIncrement();
        CompletableFuture<JsonElement> future = new CompletableFuture<>();
        MirrordIdeException down = closed.get();
        if (down != null) {
            future.completeExceptionally(down);
            return future;
        }
        pending.put(id, future);
        JsonObject message = new JsonObject();
        message.addProperty("jsonrpc", "2.0");
        message.addProperty("id", id);
        message.addProperty("method", method);
        if (params != null) {
            message.add("params", params instanceof JsonElement tree ? tree : GSON.toJsonTree(params));
        }
        future.whenComplete((result, error) -> {
            pending.remove(id);
            if (error instanceof CancellationException || isTimeout(error)) {
                cancelAtPeer(id);
            }
        });
        java.util.concurrent.ScheduledFuture<?> timer;
        try {
            timer = timers.schedule(() -> future.completeExceptionally(new MirrordIdeException(
                MirrordIdeException.Kind.TIMEOUT,
                peer + " did not answer " + method + " within " + seconds(timeout)
                        + ": it may be stuck starting a session. Check its log (Show log), then retry; "
                        + "a target that takes longer to reach needs a longer timeout in the mirrord settings.")),
                timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            future.completeExceptionally(closed.get() != null ? closed.get() : crashed("the connection is closing"));
            return future;
        }
        future.whenComplete((result, error) -> timer.cancel(false));
        try {
            send(message);
        } catch (MirrordIdeException e) {
            future.completeExceptionally(e);
        }
        return future;
    }

    /** {@link #request} and waits; a failure is rethrown as the {@link MirrordIdeException} it is. */
    public JsonElement call(String method, Object params, Duration timeout) {
        return await(request(method, params, timeout), method);
    }

    /** Sends a notification; fails only when the connection is closed. */
    public void notify(String method, Object params) {
        JsonObject message = new JsonObject();
        message.addProperty("jsonrpc", "2.0");
        message.addProperty("method", method);
        if (params != null) {
            message.add("params", params instanceof JsonElement tree ? tree : GSON.toJsonTree(params));
        }
        send(message);
    }

    /** Whether the connection is still open. */
    public boolean isOpen() {
        return closed.get() == null;
    }

    /** Closes the connection (not the peer): pending calls fail as cancelled. */
    @Override
    public void close() {
        shutDown(new MirrordIdeException(MirrordIdeException.Kind.CANCELLED,
                "the connection to " + peer + " was closed by the editor"), true);
    }

    /** Waits for the reader thread to finish (after the stream ends), at most {@code timeout}. */
    public boolean awaitReaderExit(Duration timeout) throws InterruptedException {
        reader.join(Math.max(1, timeout.toMillis()));
        return !reader.isAlive();
    }

    static JsonElement await(CompletableFuture<JsonElement> future, String method) {
        try {
            return future.get();
        } catch (CancellationException e) {
            throw new MirrordIdeException(MirrordIdeException.Kind.CANCELLED, method + " was cancelled", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof MirrordIdeException m) {
                throw m;
            }
            throw new MirrordIdeException(MirrordIdeException.Kind.CRASHED, method + " failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            future.cancel(true);
            throw new MirrordIdeException(MirrordIdeException.Kind.CANCELLED, method + " was interrupted", e);
        }
    }

    private static boolean isTimeout(Throwable error) {
        return error instanceof MirrordIdeException m && m.kind() == MirrordIdeException.Kind.TIMEOUT;
    }

    private void cancelAtPeer(long id) {
        if (closed.get() != null) {
            return;
        }
        JsonObject params = new JsonObject();
        params.addProperty("id", id);
        try {
            notify("$/cancelRequest", params);
        } catch (MirrordIdeException ignored) {
            // Closed meanwhile: nothing left to cancel.
        }
    }

    private void send(JsonObject message) {
        MirrordIdeException down = closed.get();
        if (down != null) {
            throw down;
        }
        try {
            synchronized (out) {
                Framing.write(out, message.toString());
            }
        } catch (IOException e) {
            MirrordIdeException crashed = crashed("writing to it failed (" + e.getMessage() + ")");
            shutDown(crashed, false);
            throw crashed;
        }
    }

    private void readLoop() {
        MirrordIdeException cause;
        try {
            while (true) {
                String body = Framing.read(in);
                if (body == null) {
                    cause = closed.get() != null ? closed.get() : crashed("it closed its output");
                    break;
                }
                dispatch(body);
            }
        } catch (Framing.MalformedFrameException e) {
            cause = new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                    peer + " sent something that is not a protocol message: " + e.getMessage()
                            + ". Something else may be printing to its stdout; make sure the configured mirrord binary is mirrord itself (not a wrapper script that prints) and update it."
                            + closedDetail(), e);
        } catch (MalformedMessageException e) {
            cause = new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                    peer + " sent a message that is not JSON-RPC: " + e.getMessage()
                            + ". The plugin and mirrord may be of different versions: update both." + closedDetail(), e);
        } catch (IOException e) {
            cause = closed.get() != null ? closed.get() : crashed(e.getMessage());
        }
        shutDown(cause, false);
    }

    private void dispatch(String body) throws MalformedMessageException {
        JsonObject message;
        try {
            JsonElement parsed = JsonParser.parseString(body);
            if (!parsed.isJsonObject()) {
                throw new MalformedMessageException("expected an object, got " + cut(body));
            }
            message = parsed.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new MalformedMessageException("its body is not JSON (" + e.getMessage() + "): " + cut(body));
        }
        JsonElement id = message.get("id");
        JsonElement method = message.get("method");
        if (method != null && method.isJsonPrimitive()) {
            JsonElement params = message.has("params") ? message.get("params") : JsonNull.INSTANCE;
            if (id == null || id.isJsonNull()) {
                notifications.handle(method.getAsString(), params);
            } else {
                workers.execute(() -> answer(id, method.getAsString(), params));
            }
            return;
        }
        if (id == null || !id.isJsonPrimitive() || !id.getAsJsonPrimitive().isNumber()) {
            throw new MalformedMessageException("a response without a numeric id: " + cut(body));
        }
        CompletableFuture<JsonElement> future = pending.get(id.getAsLong());
        if (future == null) {
            return; // Answer to a call that timed out or was cancelled.
        }
        JsonElement error = message.get("error");
        if (error != null && !error.isJsonNull()) {
            future.completeExceptionally(requestFailed(error));
        } else if (message.has("result")) {
            future.complete(message.get("result"));
        } else {
            throw new MalformedMessageException("a response with neither result nor error: " + cut(body));
        }
    }

    private MirrordIdeException requestFailed(JsonElement error) {
        if (!error.isJsonObject()) {
            return new MirrordIdeException(MirrordIdeException.Kind.MALFORMED, peer + " answered with an error that is not an object: " + cut(error.toString()));
        }
        JsonObject e = error.getAsJsonObject();
        String message = e.has("message") && e.get("message").isJsonPrimitive() ? e.get("message").getAsString() : error.toString();
        Integer code = e.has("code") && e.get("code").isJsonPrimitive() && e.get("code").getAsJsonPrimitive().isNumber()
                ? e.get("code").getAsInt() : null;
        if (code != null && code == REQUEST_CANCELLED) {
            return new MirrordIdeException(MirrordIdeException.Kind.CANCELLED, message, code, null);
        }
        return new MirrordIdeException(MirrordIdeException.Kind.REQUEST_FAILED, message, code, null);
    }

    private void answer(JsonElement id, String method, JsonElement params) {
        JsonObject reply = new JsonObject();
        reply.addProperty("jsonrpc", "2.0");
        reply.add("id", id);
        try {
            JsonElement result = requests.handle(method, params);
            reply.add("result", result == null ? JsonNull.INSTANCE : result);
        } catch (UnsupportedOperationException e) {
            reply.add("error", error(METHOD_NOT_FOUND, "the editor does not handle " + method));
        } catch (Exception e) {
            reply.add("error", error(INTERNAL_ERROR, method + " failed in the editor: " + e.getMessage()));
        }
        try {
            send(reply);
        } catch (MirrordIdeException ignored) {
            // Closed while the handler ran: nobody is waiting for the answer.
        }
    }

    private static JsonObject error(int code, String message) {
        JsonObject error = new JsonObject();
        error.addProperty("code", code);
        error.add("message", new JsonPrimitive(message));
        return error;
    }

    private MirrordIdeException crashed(String what) {
        return new MirrordIdeException(MirrordIdeException.Kind.CRASHED,
                peer + " stopped: " + what + "." + closedDetail()
                        + " Check its log (Show log); start the run again to start a new service, and report the log if it keeps happening.");
    }

    private String closedDetail() {
        String detail = whyClosed.get();
        return detail == null || detail.isBlank() ? "" : " " + detail.trim();
    }

    private void shutDown(MirrordIdeException cause, boolean byUs) {
        if (!closed.compareAndSet(null, cause)) {
            return;
        }
        for (CompletableFuture<JsonElement> future : pending.values()) {
            future.completeExceptionally(cause);
        }
        pending.clear();
        workers.shutdownNow();
        timers.shutdownNow();
        if (byUs) {
            try {
                in.close();
            } catch (IOException ignored) {
                // Already closed.
            }
        }
        runOnClose();
    }

    /** Runs the close action if it is set; {@link #onClose} runs it otherwise. Called once. */
    private void runOnClose() {
        Runnable action;
        synchronized (closeLock) {
            shutDownDone = true;
            action = onCloseAction;
        }
        if (action != null) {
            action.run();
        }
    }

    private static String cut(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    /** A frame whose body is not a JSON-RPC message. */
    static final class MalformedMessageException extends Exception {
        MalformedMessageException(String message) {
            super(message);
        }
    }

    /** Maps a JSON value to a typed one, turning a wrong shape into a {@link MirrordIdeException}. */
    static <T> T decode(String peer, String method, JsonElement result, Function<JsonElement, T> decoder) {
        try {
            return decoder.apply(result);
        } catch (RuntimeException e) {
            if (e instanceof MirrordIdeException m) {
                throw m;
            }
            throw new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                    peer + " answered " + method + " with an unexpected shape (" + e.getMessage() + "): "
                            + cut(String.valueOf(result)) + ". The plugin and mirrord are probably of different versions: update both.", e);
        }
    }
}
