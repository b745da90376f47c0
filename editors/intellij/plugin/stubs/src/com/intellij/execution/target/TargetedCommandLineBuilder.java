/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/execution/target/TargetedCommandLineBuilder.kt (2023 copyright): var exePath: TargetValue<String>, setExePath(String), addEnvironmentVariable(String, String?) and (String, TargetValue<String>?), removeEnvironmentVariable(String)
 */
package com.intellij.execution.target;

import com.intellij.execution.target.value.TargetValue;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public class TargetedCommandLineBuilder {
    public @NotNull TargetValue<String> getExePath() { throw new AssertionError("compile-only stub"); }

    public void setExePath(@NotNull TargetValue<String> exePath) { throw new AssertionError("compile-only stub"); }

    public void setExePath(@NotNull String exePath) { throw new AssertionError("compile-only stub"); }

    public void addEnvironmentVariable(@NotNull String name, @Nullable TargetValue<String> value) { throw new AssertionError("compile-only stub"); }

    public void addEnvironmentVariable(@NotNull String name, @Nullable String value) { throw new AssertionError("compile-only stub"); }

    public void removeEnvironmentVariable(@NotNull String name) { throw new AssertionError("compile-only stub"); }
}
