package dev.mirrord.intellij.core;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * An in-memory stand-in for {@code mirrord ide}: two pipes, the client on
 * one end, the test script on the other reading the client's messages and
 * writing whatever it likes (valid answers, broken frames, nothing).
 */
final class FakeService implements AutoCloseable {
    final InputStream clientIn;
    final OutputStream clientOut;
    private final InputStream serverIn;
    private final OutputStream serverOut;

    FakeService() throws IOException {
        Pipe toClient = Pipe.open();
        Pipe toServer = Pipe.open();
        clientIn = Channels.newInputStream(toClient.source());
        serverOut = Channels.newOutputStream(toClient.sink());
        serverIn = Channels.newInputStream(toServer.source());
        clientOut = Channels.newOutputStream(toServer.sink());
    }

    /** A client over this fake with short timeouts. */
    MirrordIdeClient client(TargetPicker picker, ServiceListener listener, Duration timeout) {
        MirrordIdeClient.Timeouts t = new MirrordIdeClient.Timeouts(timeout, timeout, timeout, Duration.ofMillis(200));
        return MirrordIdeClient.over(clientIn, clientOut, picker, listener, t, () -> "(fake service closed)");
    }

    /** The next message from the client. */
    JsonObject receive() throws IOException {
        String body = Framing.read(serverIn);
        if (body == null) {
            throw new IOException("the client closed its output");
        }
        return JsonParser.parseString(body).getAsJsonObject();
    }

    /** The next message from the client whose method is {@code method}, skipping others. */
    JsonObject receive(String method) throws IOException {
        while (true) {
            JsonObject m = receive();
            if (m.has("method") && m.get("method").getAsString().equals(method)) {
                return m;
            }
        }
    }

    void send(String json) throws IOException {
        Framing.write(serverOut, json);
    }

    void sendRaw(String bytes) throws IOException {
        serverOut.write(bytes.getBytes(StandardCharsets.UTF_8));
        serverOut.flush();
    }

    void reply(JsonObject request, String resultJson) throws IOException {
        send("{\"jsonrpc\":\"2.0\",\"id\":" + request.get("id") + ",\"result\":" + resultJson + "}");
    }

    /** Answers the handshake's {@code initialize}. */
    void handshake() throws IOException {
        JsonObject init = receive("initialize");
        reply(init, "{\"capabilities\":{}}");
        receive("initialized");
    }

    /** The service "crashes": its output ends. */
    void closeOutput() throws IOException {
        serverOut.close();
    }

    @Override
    public void close() throws IOException {
        serverOut.close();
        serverIn.close();
    }
}
