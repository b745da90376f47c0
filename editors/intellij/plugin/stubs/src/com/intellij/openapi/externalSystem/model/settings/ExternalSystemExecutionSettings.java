/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/external-system-api/src/com/intellij/openapi/externalSystem/model/settings/ExternalSystemExecutionSettings.java (2024: getEnv, isPassParentEnvs, withEnvironmentVariables, passParentEnvs)
 */
package com.intellij.openapi.externalSystem.model.settings;

import java.util.Map;
import org.jetbrains.annotations.NotNull;

public class ExternalSystemExecutionSettings {
    public @NotNull Map<String, String> getEnv() { throw new AssertionError("compile-only stub"); }

    public boolean isPassParentEnvs() { throw new AssertionError("compile-only stub"); }

    public ExternalSystemExecutionSettings withEnvironmentVariables(Map<String, String> envs) { throw new AssertionError("compile-only stub"); }

    public ExternalSystemExecutionSettings passParentEnvs(boolean passParentEnvs) { throw new AssertionError("compile-only stub"); }
}
