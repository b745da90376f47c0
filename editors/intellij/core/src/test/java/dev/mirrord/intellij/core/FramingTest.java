package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class FramingTest {
    private static InputStream bytes(String s) {
        return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void roundTripCountsBytesNotCharacters() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Framing.write(out, "{\"x\":\"é→\"}");
        Framing.write(out, "{}");
        String wire = out.toString(StandardCharsets.UTF_8);
        assertTrue(wire.startsWith("Content-Length: 13\r\n\r\n"), wire);
        InputStream in = new ByteArrayInputStream(out.toByteArray());
        assertEquals("{\"x\":\"é→\"}", Framing.read(in));
        assertEquals("{}", Framing.read(in));
        assertNull(Framing.read(in), "a clean end between messages");
    }

    @Test
    void headerNamesAreCaseInsensitiveAndOtherHeadersIgnored() throws IOException {
        String wire = "content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}";
        assertEquals("{}", Framing.read(bytes(wire)));
    }

    @Test
    void brokenHeadersAreNamed() {
        var notNumber = assertThrows(Framing.MalformedFrameException.class, () -> Framing.read(bytes("Content-Length: ten\r\n\r\n")));
        assertTrue(notNumber.getMessage().contains("not a number"), notNumber.getMessage());
        var missing = assertThrows(Framing.MalformedFrameException.class, () -> Framing.read(bytes("Content-Type: x\r\n\r\n{}")));
        assertTrue(missing.getMessage().contains("without a Content-Length"), missing.getMessage());
        var noName = assertThrows(Framing.MalformedFrameException.class, () -> Framing.read(bytes("hello world\r\n\r\n")));
        assertTrue(noName.getMessage().contains("without a name"), noName.getMessage());
        var huge = assertThrows(Framing.MalformedFrameException.class, () -> Framing.read(bytes("Content-Length: 99999999\r\n\r\n")));
        assertTrue(huge.getMessage().contains("out of range"), huge.getMessage());
        var longLine = assertThrows(Framing.MalformedFrameException.class, () -> Framing.read(bytes("x".repeat(10_000))));
        assertTrue(longLine.getMessage().contains("longer than"), longLine.getMessage());
    }

    @Test
    void anEndInsideAFrameIsAnErrorNotACleanEnd() {
        var body = assertThrows(IOException.class, () -> Framing.read(bytes("Content-Length: 10\r\n\r\n{}")));
        assertTrue(body.getMessage().contains("2 of 10 bytes"), body.getMessage());
        var header = assertThrows(IOException.class, () -> Framing.read(bytes("Content-Length: 10\r\n")));
        assertTrue(header.getMessage().contains("inside a message header"), header.getMessage());
    }
}
