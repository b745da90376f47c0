package dev.mirrord.intellij.core;

/** One session of the service ({@code mirrord/sessions}); {@code state} is {@code running} or {@code ended}. */
public record SessionInfo(String sessionId, String target, long pid, long since, String state) {
    public boolean running() {
        return "running".equals(state);
    }
}
