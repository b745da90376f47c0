package dev.mirrord.intellij.core;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The environment of a run as IntelliJ's run configurations hold it: the
 * variables written explicitly, and whether the IDE's own environment is
 * inherited under them ({@code passParentEnvs}). {@link #patchedBy} applies
 * a prepared {@link EnvMerge}: the session's variables are written in, and
 * a variable to unset is removed; when that variable would be inherited,
 * the inheritance is switched off and the whole environment written out
 * instead, since no run configuration can remove one inherited variable.
 * Every run-configuration extension of the plugin (Java, Python, Go,
 * Node.js, Gradle) goes through here, so the rule is tested once.
 */
public record RunEnvironment(Map<String, String> explicit, boolean passParent) {
    public RunEnvironment {
        explicit = Collections.unmodifiableMap(new LinkedHashMap<>(explicit));
    }

    /**
     * This environment with {@code merge} applied. {@code parent} is the
     * environment the run would inherit (the IDE's); it is read only when a
     * variable to unset is inherited.
     */
    public RunEnvironment patchedBy(EnvMerge merge, Map<String, String> parent) {
        if (merge.toUnset().isEmpty() || !passParent) {
            return new RunEnvironment(merge.applyTo(explicit), passParent);
        }
        Map<String, String> whole = new LinkedHashMap<>(parent);
        whole.putAll(explicit);
        return new RunEnvironment(merge.applyTo(whole), false);
    }

    /**
     * The variables a sink that can only add (ExternalSystem's settings,
     * TargetedCommandLineBuilder's {@code addEnvironmentVariable}) must add
     * to {@code before}'s explicit variables to reach this environment.
     *
     * @throws MirrordIdeException when one of {@code before}'s explicit
     *     variables would have to go, which such a sink cannot do
     */
    public Map<String, String> additionsTo(RunEnvironment before) {
        for (String name : before.explicit.keySet()) {
            if (!explicit.containsKey(name)) {
                throw new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                        "mirrord ide asked to unset " + name + ", which this run configuration sets itself and cannot remove: "
                                + "remove " + name + " from the run configuration's environment variables.");
            }
        }
        Map<String, String> added = new LinkedHashMap<>();
        explicit.forEach((name, value) -> {
            if (!value.equals(before.explicit.get(name))) {
                added.put(name, value);
            }
        });
        return added;
    }
}
