package dev.mirrord.intellij.core;

import com.google.gson.JsonObject;

/**
 * {@code mirrord/prepareLaunch}'s answer: the configuration to run instead
 * (its {@code env} carries the session) and the session it runs in,
 * {@code null} when the configuration said {@code "mirrord": false}.
 */
public record PrepareLaunchResult(JsonObject configuration, String sessionId) {
    /** The environment to apply to the run configuration. */
    public EnvMerge env() {
        return EnvMerge.fromPrepared(configuration);
    }
}
