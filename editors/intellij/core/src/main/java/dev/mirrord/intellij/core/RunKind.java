package dev.mirrord.intellij.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.Map;
import java.util.Set;

/**
 * The kinds of run configuration the plugin extends, and the
 * {@code mirrord/prepareLaunch} configuration each one sends. The service
 * rewrites a configuration by its debug {@code type}: every type here
 * reads an {@code env} map, so the answer always has one for
 * {@link EnvMerge}. Go is the exception in what comes back: Go programs
 * make raw syscalls that no LD_PRELOAD hook sees, so the service routes
 * the program through its {@code dlv} link (which installs the seccomp
 * filter and execs the real program) and {@link #routedProgram} reads
 * where that link is.
 */
public enum RunKind {
    /** Java application, JUnit, Maven (through the Java extension): the JVM gets the layer. */
    JAVA("java"),
    /** Gradle tasks: the JVMs Gradle forks inherit the layer. */
    GRADLE("java"),
    /** Python (PyCharm's run and debug configurations). */
    PYTHON("python"),
    /** Node.js and npm run configurations. */
    NODE("node"),
    /** Go application and test configurations (GoLand). */
    GO("go");

    private final String debugType;

    RunKind(String debugType) {
        this.debugType = debugType;
    }

    /** The {@code type} this kind is sent as. */
    public String debugType() {
        return debugType;
    }

    /**
     * The configuration to prepare: {@code type}, {@code request: launch},
     * the user's variables and {@code null} for each name in {@code unset}.
     * For {@link #GO}, {@code program} is the executable the run starts (the
     * built binary, or {@code dlv} when debugging); other kinds ignore it.
     */
    public JsonObject launch(Map<String, String> userEnv, Set<String> unset, String program) {
        JsonObject launch = new JsonObject();
        launch.addProperty("type", debugType);
        launch.addProperty("request", "launch");
        launch.add("env", EnvMerge.toLaunchEnv(userEnv, unset));
        if (this == GO) {
            if (program == null || program.isBlank()) {
                throw new IllegalArgumentException("a Go launch needs the program it starts");
            }
            // The service runs this as the real program behind its link.
            launch.addProperty("dlvToolPath", program);
        }
        return launch;
    }

    /**
     * Checks that {@code prepared} has what a run of this kind reads (the
     * {@code env} map; for {@link #GO} also the link), so a caller can turn
     * a malformed answer into one error before it changes anything.
     *
     * @throws MirrordIdeException naming what is missing
     */
    public void check(PrepareLaunchResult prepared) {
        prepared.env();
        if (this == GO) {
            routedProgram(prepared);
        }
    }

    /**
     * For {@link #GO}: the executable to start instead of the original
     * program (the service's link, which runs the original under the
     * session's seccomp filter).
     *
     * @throws MirrordIdeException when the answer has no {@code dlvToolPath}
     */
    public static String routedProgram(PrepareLaunchResult prepared) {
        JsonElement link = prepared.configuration().get("dlvToolPath");
        if (link == null || !link.isJsonPrimitive() || link.getAsString().isBlank()) {
            throw new MirrordIdeException(MirrordIdeException.Kind.MALFORMED,
                    "mirrord ide prepared a Go configuration without a \"dlvToolPath\" ("
                            + (link == null ? "missing" : link.toString())
                            + "): update mirrord and the plugin together.");
        }
        return link.getAsString();
    }
}
