/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: no public source (GoLand's Go plugin); the overridden signatures as public plugins override them against 2023-2024 SDKs (e.g. ashald/EnvFile and fehnomenal's intellij-direnv GoRunConfigurationExtension subclasses); EP com.goide.runConfigurationExtension from the IntelliJ SDK docs' extension point list
 */
package com.goide.execution.extension;

import com.goide.execution.GoRunConfigurationBase;
import com.goide.execution.GoRunningState;
import com.intellij.execution.ExecutionException;
import com.intellij.execution.configuration.RunConfigurationExtensionBase;
import com.intellij.execution.configurations.GeneralCommandLine;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.target.TargetedCommandLineBuilder;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public abstract class GoRunConfigurationExtension extends RunConfigurationExtensionBase<GoRunConfigurationBase<?>> {
    @Override
    protected void patchCommandLine(@NotNull GoRunConfigurationBase<?> configuration, @Nullable RunnerSettings runnerSettings,
                                    @NotNull GeneralCommandLine cmdLine, @NotNull String runnerId) throws ExecutionException { throw new AssertionError("compile-only stub"); }

    protected void patchCommandLine(@NotNull GoRunConfigurationBase<?> configuration, @Nullable RunnerSettings runnerSettings,
                                    @NotNull TargetedCommandLineBuilder cmdLine, @NotNull String runnerId,
                                    @NotNull GoRunningState<? extends GoRunConfigurationBase<?>> state,
                                    @NotNull GoRunningState.CommandLineType commandLineType) throws ExecutionException { throw new AssertionError("compile-only stub"); }
}
