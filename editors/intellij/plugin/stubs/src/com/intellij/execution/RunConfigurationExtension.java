/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community java/execution/openapi/src/com/intellij/execution/RunConfigurationExtension.java (2021+ form)
 */
package com.intellij.execution;

import com.intellij.execution.configuration.RunConfigurationExtensionBase;
import com.intellij.execution.configurations.GeneralCommandLine;
import com.intellij.execution.configurations.JavaParameters;
import com.intellij.execution.configurations.RunConfigurationBase;
import com.intellij.execution.configurations.RunnerSettings;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public abstract class RunConfigurationExtension extends RunConfigurationExtensionBase<RunConfigurationBase<?>> {
    public abstract <T extends RunConfigurationBase<?>> void updateJavaParameters(@NotNull T configuration,
            @NotNull JavaParameters params, @Nullable RunnerSettings runnerSettings) throws ExecutionException;

    @Override
    protected void patchCommandLine(@NotNull RunConfigurationBase configuration, RunnerSettings runnerSettings,
                                    @NotNull GeneralCommandLine cmdLine, @NotNull String runnerId) throws ExecutionException { throw new AssertionError("compile-only stub"); }

    @Override
    public boolean isEnabledFor(@NotNull RunConfigurationBase applicableConfiguration, @Nullable RunnerSettings runnerSettings) { throw new AssertionError("compile-only stub"); }
}
