/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/execution/src/com/intellij/execution/configuration/EnvironmentVariablesData.java (create(Map, boolean), getEnvs, isPassParentEnvs)
 */
package com.intellij.execution.configuration;

import java.util.Map;
import org.jetbrains.annotations.NotNull;

public final class EnvironmentVariablesData {
    public static @NotNull EnvironmentVariablesData create(@NotNull Map<String, String> envs, boolean passParentEnvs) { throw new AssertionError("compile-only stub"); }

    public @NotNull Map<String, String> getEnvs() { throw new AssertionError("compile-only stub"); }

    public boolean isPassParentEnvs() { throw new AssertionError("compile-only stub"); }
}
