package dev.mirrord.intellij.plugin;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.configurations.GeneralCommandLine;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.process.ProcessHandler;
import com.jetbrains.python.run.AbstractPythonRunConfiguration;
import com.jetbrains.python.run.PythonRunConfigurationExtension;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunEnvironment;
import dev.mirrord.intellij.core.RunKind;
import java.util.Set;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

/**
 * Python run and debug configurations (registered from
 * {@code mirrord-python.xml}, loaded only when the Python plugin is):
 * the command line's environment is prepared as a {@link RunKind#PYTHON}
 * launch. PyCharm's debugger (pydevd, {@code --client HOST --port N})
 * connects back on a port its command line names, which the layer keeps
 * local.
 */
public final class MirrordPythonRunConfigurationExtension extends PythonRunConfigurationExtension {
    @Override
    public boolean isApplicableFor(@NotNull AbstractPythonRunConfiguration<?> configuration) {
        return true;
    }

    @Override
    public boolean isEnabledFor(@NotNull AbstractPythonRunConfiguration<?> configuration, @Nullable RunnerSettings runnerSettings) {
        return MirrordProjectService.of(configuration.getProject()).enabled();
    }

    @Override
    protected void patchCommandLine(@NotNull AbstractPythonRunConfiguration<?> configuration, @Nullable RunnerSettings runnerSettings,
                                    @NotNull GeneralCommandLine cmdLine, @NotNull String runnerId) throws ExecutionException {
        MirrordProjectService service = MirrordProjectService.of(configuration.getProject());
        PrepareLaunchResult result = service.prepare(RunKind.PYTHON, cmdLine.getEnvironment(), Set.of(), null);
        RunEnvironment env = new RunEnvironment(cmdLine.getEnvironment(), cmdLine.isPassParentEnvironment())
                .patchedBy(result.env(), cmdLine.getParentEnvironment());
        cmdLine.getEnvironment().clear();
        cmdLine.getEnvironment().putAll(env.explicit());
        if (!env.passParent()) {
            cmdLine.withParentEnvironmentType(GeneralCommandLine.ParentEnvironmentType.NONE);
        }
        MirrordProjectService.rememberSession(configuration, result.sessionId());
    }

    @Override
    protected void attachToProcess(@NotNull AbstractPythonRunConfiguration<?> configuration, @NotNull ProcessHandler handler,
                                   @Nullable RunnerSettings runnerSettings) {
        MirrordProjectService.of(configuration.getProject()).endSessionOnExit(configuration, handler);
    }
}
