package dev.mirrord.intellij.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * The environment a run configuration ends up with under mirrord.
 * {@code mirrord/prepareLaunch} returns the configuration's {@code env} map
 * with the session's variables written in: the user's variables it did not
 * set are kept, and a {@code null} value means "unset this variable" (the
 * user's own unsets, passed through). IntelliJ run configurations hold a
 * {@code Map<String, String>} plus the inherited parent environment, so the
 * result has both what to set and what to remove.
 */
public final class EnvMerge {
    private final Map<String, String> set;
    private final Set<String> unset;

    private EnvMerge(Map<String, String> set, Set<String> unset) {
        this.set = set;
        this.unset = unset;
    }

    /**
     * The configuration's {@code env} as sent to {@code prepareLaunch}: the
     * user's variables, and {@code null} for each name in {@code unset}.
     */
    public static JsonObject toLaunchEnv(Map<String, String> userEnv, Set<String> unset) {
        JsonObject env = new JsonObject();
        userEnv.forEach(env::addProperty);
        for (String name : unset) {
            env.add(name, com.google.gson.JsonNull.INSTANCE);
        }
        return env;
    }

    /**
     * Reads the {@code env} map of a prepared configuration; a value that is
     * neither a string nor {@code null} is written as its JSON text (as the
     * debug adapters do).
     *
     * @throws MirrordIdeException when {@code env} is missing or not an object
     */
    public static EnvMerge fromPrepared(JsonObject configuration) {
        JsonElement env = configuration.get("env");
        if (env == null || !env.isJsonObject()) {
            throw new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                    "mirrord ide prepared a configuration without an \"env\" map (" + (env == null ? "missing" : env.toString())
                            + "): send a \"type\" whose adapter reads an env map (e.g. \"java\"), or update mirrord and the plugin together.");
        }
        Map<String, String> set = new LinkedHashMap<>();
        Set<String> unset = new LinkedHashSet<>();
        for (Map.Entry<String, JsonElement> e : env.getAsJsonObject().entrySet()) {
            JsonElement v = e.getValue();
            if (v.isJsonNull()) {
                unset.add(e.getKey());
            } else if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isString()) {
                set.put(e.getKey(), v.getAsString());
            } else {
                set.put(e.getKey(), v.toString());
            }
        }
        return new EnvMerge(set, unset);
    }

    /** Variables to set, in the service's order. */
    public Map<String, String> toSet() {
        return Map.copyOf(set);
    }

    /** Variables to remove, inherited ones included. */
    public Set<String> toUnset() {
        return Set.copyOf(unset);
    }

    /**
     * {@code base} (the run configuration's variables, or the whole
     * environment the process would get) with the prepared variables set
     * and the unset ones removed; {@code base} itself is not changed.
     */
    public Map<String, String> applyTo(Map<String, String> base) {
        Map<String, String> merged = new LinkedHashMap<>(base);
        merged.putAll(set);
        merged.keySet().removeAll(unset);
        return merged;
    }
}
