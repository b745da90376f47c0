package dev.mirrord.intellij.core;

/** What the service tells the editor without being asked. Called on the connection's reader thread: return quickly. */
public interface ServiceListener {
    /** {@code mirrord/progress}: one step while a session starts; {@code done} on the last one of {@code id}. */
    default void onProgress(String id, String message, boolean done) {}

    /** {@code mirrord/sessionEnded}: a session is over ({@code requested}, {@code debuggee exited}, {@code editor closed}). */
    default void onSessionEnded(String sessionId, String reason) {}

    /** The connection is closed: {@code cause} is {@code null} after a clean shutdown. */
    default void onClosed(MirrordIdeException cause) {}
}
