/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/execution/src/com/intellij/execution/configuration/RunConfigurationExtensionBase.java
 */
package com.intellij.execution.configuration;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.configurations.GeneralCommandLine;
import com.intellij.execution.configurations.RunConfigurationBase;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.process.ProcessHandler;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public abstract class RunConfigurationExtensionBase<T extends RunConfigurationBase<?>> {
    public abstract boolean isApplicableFor(@NotNull T configuration);

    public abstract boolean isEnabledFor(@NotNull T applicableConfiguration, @Nullable RunnerSettings runnerSettings);

    protected abstract void patchCommandLine(@NotNull T configuration, @Nullable RunnerSettings runnerSettings,
                                             @NotNull GeneralCommandLine cmdLine, @NotNull String runnerId) throws ExecutionException;

    protected void attachToProcess(@NotNull T configuration, @NotNull ProcessHandler handler,
                                   @Nullable RunnerSettings runnerSettings) { throw new AssertionError("compile-only stub"); }
}
