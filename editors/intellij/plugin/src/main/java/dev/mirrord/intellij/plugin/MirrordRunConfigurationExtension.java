package dev.mirrord.intellij.plugin;

import com.google.gson.JsonObject;
import com.intellij.execution.ExecutionException;
import com.intellij.execution.RunConfigurationExtension;
import com.intellij.execution.configurations.JavaParameters;
import com.intellij.execution.configurations.RunConfigurationBase;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.process.ProcessAdapter;
import com.intellij.execution.process.ProcessEvent;
import com.intellij.execution.process.ProcessHandler;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.progress.ProgressManager;
import com.intellij.openapi.util.Key;
import dev.mirrord.intellij.core.EnvMerge;
import dev.mirrord.intellij.core.MirrordIdeException;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.jetbrains.annotations.NotNull;

/**
 * Java and JUnit run configurations (every {@code JavaParameters}-based
 * one): when mirrord is on, the configuration's environment goes to
 * {@code mirrord/prepareLaunch} as a {@code java} launch and comes back
 * with the session's variables, merged by {@link EnvMerge}; the session
 * ends when the run's process does.
 */
public final class MirrordRunConfigurationExtension extends RunConfigurationExtension {
    private static final Key<String> SESSION = Key.create("mirrord.sessionId");

    @Override
    public boolean isApplicableFor(@NotNull RunConfigurationBase<?> configuration) {
        return true;
    }

    @Override
    public <T extends RunConfigurationBase<?>> void updateJavaParameters(@NotNull T configuration, @NotNull JavaParameters params,
                                                                         RunnerSettings runnerSettings) throws ExecutionException {
        MirrordProjectService service = MirrordProjectService.of(configuration.getProject());
        if (!service.enabled()) {
            return;
        }
        JsonObject launch = new JsonObject();
        launch.addProperty("type", "java");
        launch.addProperty("request", "launch");
        launch.add("env", EnvMerge.toLaunchEnv(params.getEnv(), Set.of()));
        PrepareLaunchResult result;
        try {
            result = offUiThread(() -> service.client().prepareLaunch(launch, configuration.getProject().getBasePath()));
        } catch (MirrordIdeException e) {
            service.notifyError(e);
            throw new ExecutionException(e.getMessage(), e);
        }
        EnvMerge env = result.env();
        if (env.toUnset().isEmpty() || !params.isPassParentEnvs()) {
            params.setEnv(new HashMap<>(env.applyTo(params.getEnv())));
        } else {
            // Unsetting an inherited variable: pass the whole environment explicitly instead.
            Map<String, String> whole = new HashMap<>(System.getenv());
            whole.putAll(params.getEnv());
            params.setEnv(new HashMap<>(env.applyTo(whole)));
            params.setPassParentEnvs(false);
        }
        configuration.putCopyableUserData(SESSION, result.sessionId());
    }

    @Override
    protected void attachToProcess(@NotNull RunConfigurationBase<?> configuration, @NotNull ProcessHandler handler,
                                   RunnerSettings runnerSettings) {
        String session = configuration.getCopyableUserData(SESSION);
        if (session == null) {
            return;
        }
        configuration.putCopyableUserData(SESSION, null);
        handler.addProcessListener(new ProcessAdapter() {
            @Override
            public void processTerminated(@NotNull ProcessEvent event) {
                ApplicationManager.getApplication().executeOnPooledThread(() -> {
                    try {
                        MirrordProjectService.of(configuration.getProject()).client().endSession(session);
                    } catch (MirrordIdeException e) {
                        // Already ended with its debuggee: nothing to do.
                    }
                });
            }
        });
    }

    /** Runs {@code call} under a modal progress when on the UI thread (starting a session takes seconds). */
    private static <R> R offUiThread(java.util.function.Supplier<R> call) {
        if (!ApplicationManager.getApplication().isDispatchThread()) {
            return call.get();
        }
        return ProgressManager.getInstance().runProcessWithProgressSynchronously(
                call::get, "Starting mirrord session", true, null);
    }
}
