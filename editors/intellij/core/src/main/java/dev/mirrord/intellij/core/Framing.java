package dev.mirrord.intellij.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The LSP base protocol's framing: {@code Content-Length: N\r\n\r\n} then N
 * bytes of UTF-8 JSON. Reading is strict: a frame that cannot be parsed
 * cannot be skipped either, so it is an error, never a guess.
 */
public final class Framing {
    /** Larger than any message the service sends; a bigger length is a corrupt header. */
    static final int MAX_BODY = 64 * 1024 * 1024;
    private static final int MAX_HEADER_LINE = 8 * 1024;

    private Framing() {}

    /** Writes one message; the caller serialises writers. */
    public static void write(OutputStream out, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        byte[] header = ("Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        out.write(header);
        out.write(body);
        out.flush();
    }

    /**
     * Reads one message body, or returns {@code null} at a clean end of
     * stream (between messages).
     *
     * @throws MalformedFrameException for a header or body that is not a frame
     * @throws IOException when reading fails or the stream ends inside a frame
     */
    public static String read(InputStream in) throws IOException {
        int length = -1;
        boolean first = true;
        while (true) {
            String line = readLine(in, first);
            if (line == null) {
                return null;
            }
            first = false;
            if (line.isEmpty()) {
                break;
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                throw new MalformedFrameException("a header line without a name: \"" + printable(line) + "\"");
            }
            String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).trim();
            if (name.equals("content-length")) {
                try {
                    length = Integer.parseInt(value);
                } catch (NumberFormatException e) {
                    throw new MalformedFrameException("Content-Length is not a number: \"" + printable(value) + "\"");
                }
                if (length < 0 || length > MAX_BODY) {
                    throw new MalformedFrameException("Content-Length " + length + " is out of range");
                }
            }
        }
        if (length < 0) {
            throw new MalformedFrameException("a message without a Content-Length header");
        }
        byte[] body = in.readNBytes(length);
        if (body.length < length) {
            throw new IOException("the stream ended inside a message (" + body.length + " of " + length + " bytes)");
        }
        return new String(body, StandardCharsets.UTF_8);
    }

    /** One header line without its CRLF; {@code null} at end of stream before any byte of the first line. */
    private static String readLine(InputStream in, boolean first) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (first && line.size() == 0) {
                    return null;
                }
                throw new IOException("the stream ended inside a message header");
            }
            if (b == '\n') {
                byte[] bytes = line.toByteArray();
                int end = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, end, StandardCharsets.US_ASCII);
            }
            line.write(b);
            if (line.size() > MAX_HEADER_LINE) {
                throw new MalformedFrameException("a header line longer than " + MAX_HEADER_LINE + " bytes (is something else writing to the service's stdout?)");
            }
        }
    }

    private static String printable(String s) {
        String cut = s.length() > 80 ? s.substring(0, 80) + "..." : s;
        return cut.replaceAll("\\p{Cntrl}", "?");
    }

    /** Bytes on the stream that are not an LSP frame. */
    public static final class MalformedFrameException extends IOException {
        public MalformedFrameException(String message) {
            super(message);
        }
    }
}
