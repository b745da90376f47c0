/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-util-io/src/com/intellij/execution/configurations/GeneralCommandLine.java
 */
package com.intellij.execution.configurations;

import java.util.Map;
import org.jetbrains.annotations.NotNull;

public class GeneralCommandLine {
    public enum ParentEnvironmentType { NONE, SYSTEM, CONSOLE }

    public @NotNull Map<String, String> getEnvironment() { throw new AssertionError("compile-only stub"); }

    public boolean isPassParentEnvironment() { throw new AssertionError("compile-only stub"); }

    public @NotNull GeneralCommandLine withParentEnvironmentType(@NotNull ParentEnvironmentType type) { throw new AssertionError("compile-only stub"); }

    public @NotNull Map<String, String> getParentEnvironment() { throw new AssertionError("compile-only stub"); }
}
