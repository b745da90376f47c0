package dev.mirrord.intellij.core;

/**
 * Something went wrong talking to {@code mirrord ide}. The message is meant
 * for the user as it is: it names the cause and what to do about it.
 */
public class MirrordIdeException extends RuntimeException {
    /** Why a call failed, for code that reacts differently to each. */
    public enum Kind {
        /** The service could not be started (binary missing, not executable). */
        START,
        /** The service exited or closed its output while a call was pending. */
        CRASHED,
        /** The service sent bytes that are not a JSON-RPC message, or a result of the wrong shape. */
        MALFORMED,
        /** The service did not answer in time. */
        TIMEOUT,
        /** The caller cancelled the call. */
        CANCELLED,
        /** The service answered with a JSON-RPC error (its message is already for the user). */
        REQUEST_FAILED
    }

    private final Kind kind;
    private final Integer code;

    public MirrordIdeException(Kind kind, String message) {
        this(kind, message, null, null);
    }

    public MirrordIdeException(Kind kind, String message, Throwable cause) {
        this(kind, message, null, cause);
    }

    public MirrordIdeException(Kind kind, String message, Integer code, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.code = code;
    }

    public Kind kind() {
        return kind;
    }

    /** The JSON-RPC error code for {@link Kind#REQUEST_FAILED}, else {@code null}. */
    public Integer code() {
        return code;
    }
}
