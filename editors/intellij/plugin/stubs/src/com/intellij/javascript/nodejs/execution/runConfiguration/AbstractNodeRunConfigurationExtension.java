/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: no public source (the JavaScript plugin); the signatures as public plugins override and call them against 2023-2024 SDKs (Doppler's and mise's AbstractNodeRunConfigurationExtension subclasses); EP JavaScript.nodeRunConfigurationExtension from the IntelliJ SDK docs' extension point list (isEnabledFor and patchCommandLine are implemented there; extensions override isApplicableFor and createLaunchSession)
 */
package com.intellij.javascript.nodejs.execution.runConfiguration;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.configuration.RunConfigurationExtensionBase;
import com.intellij.execution.configurations.GeneralCommandLine;
import com.intellij.execution.configurations.RunnerSettings;
import com.intellij.execution.runners.ExecutionEnvironment;
import com.intellij.javascript.nodejs.execution.AbstractNodeTargetRunProfile;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public abstract class AbstractNodeRunConfigurationExtension extends RunConfigurationExtensionBase<AbstractNodeTargetRunProfile> {
    public abstract @Nullable NodeRunConfigurationLaunchSession createLaunchSession(@NotNull AbstractNodeTargetRunProfile configuration,
                                                                                    @NotNull ExecutionEnvironment environment) throws ExecutionException;

    @Override
    public final boolean isEnabledFor(@NotNull AbstractNodeTargetRunProfile configuration, @Nullable RunnerSettings runnerSettings) { throw new AssertionError("compile-only stub"); }

    @Override
    protected final void patchCommandLine(@NotNull AbstractNodeTargetRunProfile configuration, @Nullable RunnerSettings runnerSettings,
                                          @NotNull GeneralCommandLine cmdLine, @NotNull String runnerId) { throw new AssertionError("compile-only stub"); }
}
