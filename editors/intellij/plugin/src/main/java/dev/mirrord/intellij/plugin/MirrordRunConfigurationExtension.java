package dev.mirrord.intellij.plugin;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.RunConfigurationExtension;
import com.intellij.execution.configurations.JavaParameters;
import com.intellij.execution.configurations.RunConfigurationBase;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.process.ProcessHandler;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunEnvironment;
import dev.mirrord.intellij.core.RunKind;
import java.util.HashMap;
import java.util.Set;
import org.jetbrains.annotations.NotNull;

/**
 * Java application, JUnit and Maven run configurations (every
 * {@code JavaParameters}-based one; Maven's calls the Java extensions too):
 * when mirrord is on, the environment goes to {@code mirrord/prepareLaunch}
 * as a {@link RunKind#JAVA} launch and comes back with the session's
 * variables, applied by {@link RunEnvironment}; the session ends when the
 * run's process does.
 */
public final class MirrordRunConfigurationExtension extends RunConfigurationExtension {
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
        PrepareLaunchResult result = service.prepare(RunKind.JAVA, params.getEnv(), Set.of(), null);
        RunEnvironment env = new RunEnvironment(params.getEnv(), params.isPassParentEnvs())
                .patchedBy(result.env(), System.getenv());
        params.setEnv(new HashMap<>(env.explicit()));
        params.setPassParentEnvs(env.passParent());
        MirrordProjectService.rememberSession(configuration, result.sessionId());
    }

    @Override
    protected void attachToProcess(@NotNull RunConfigurationBase<?> configuration, @NotNull ProcessHandler handler,
                                   RunnerSettings runnerSettings) {
        MirrordProjectService.of(configuration.getProject()).endSessionOnExit(configuration, handler);
    }
}
