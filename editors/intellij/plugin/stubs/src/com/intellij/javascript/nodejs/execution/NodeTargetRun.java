/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: no public source (the JavaScript plugin); the signatures as public plugins override and call them against 2023-2024 SDKs (Doppler's and mise's AbstractNodeRunConfigurationExtension subclasses); EP JavaScript.nodeRunConfigurationExtension from the IntelliJ SDK docs' extension point list (envData is a Kotlin property: getEnvData/setEnvData)
 */
package com.intellij.javascript.nodejs.execution;

import com.intellij.execution.configuration.EnvironmentVariablesData;
import org.jetbrains.annotations.NotNull;

public final class NodeTargetRun {
    public @NotNull EnvironmentVariablesData getEnvData() { throw new AssertionError("compile-only stub"); }

    public void setEnvData(@NotNull EnvironmentVariablesData envData) { throw new AssertionError("compile-only stub"); }
}
