package dev.mirrord.intellij.plugin;

import com.goide.execution.GoRunConfigurationBase;
import com.goide.execution.GoRunningState;
import com.goide.execution.extension.GoRunConfigurationExtension;
import com.intellij.execution.ExecutionException;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.process.ProcessHandler;
import com.intellij.execution.target.TargetedCommandLineBuilder;
import dev.mirrord.intellij.core.EnvMerge;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunKind;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

/**
 * Go run and debug configurations (GoLand; registered from
 * {@code mirrord-go.xml}). Go programs make raw syscalls, so LD_PRELOAD
 * does nothing for them: the run's executable (the built program, or
 * {@code dlv} when debugging) goes to the service as a {@link RunKind#GO}
 * launch, and the command line starts the service's link instead, which
 * installs the session's seccomp filter and execs the original with the
 * same arguments. Only the {@code RUN} command line is patched, never the
 * build.
 */
public final class MirrordGoRunConfigurationExtension extends GoRunConfigurationExtension {
    @Override
    public boolean isApplicableFor(@NotNull GoRunConfigurationBase<?> configuration) {
        return true;
    }

    @Override
    public boolean isEnabledFor(@NotNull GoRunConfigurationBase<?> configuration, @Nullable RunnerSettings runnerSettings) {
        return MirrordProjectService.of(configuration.getProject()).enabled();
    }

    @Override
    protected void patchCommandLine(@NotNull GoRunConfigurationBase<?> configuration, @Nullable RunnerSettings runnerSettings,
                                    @NotNull TargetedCommandLineBuilder cmdLine, @NotNull String runnerId,
                                    @NotNull GoRunningState<? extends GoRunConfigurationBase<?>> state,
                                    @NotNull GoRunningState.CommandLineType commandLineType) throws ExecutionException {
        if (commandLineType != GoRunningState.CommandLineType.RUN) {
            return;
        }
        String program;
        try {
            program = cmdLine.getExePath().getLocalValue().blockingGet(10, TimeUnit.SECONDS);
        } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
            throw new ExecutionException("mirrord: cannot tell which program this Go run starts: " + e.getMessage(), e);
        }
        MirrordProjectService service = MirrordProjectService.of(configuration.getProject());
        // The run's own variables stay on the command line; only the session's are added.
        PrepareLaunchResult result = service.prepare(RunKind.GO, Map.of(), Set.of(), program);
        // Checked by prepare: the link is there.
        EnvMerge env = result.env();
        cmdLine.setExePath(RunKind.routedProgram(result));
        env.toSet().forEach(cmdLine::addEnvironmentVariable);
        env.toUnset().forEach(cmdLine::removeEnvironmentVariable);
        MirrordProjectService.rememberSession(configuration, result.sessionId());
    }

    @Override
    protected void attachToProcess(@NotNull GoRunConfigurationBase<?> configuration, @NotNull ProcessHandler handler,
                                   @Nullable RunnerSettings runnerSettings) {
        MirrordProjectService.of(configuration.getProject()).endSessionOnExit(configuration, handler);
    }
}
