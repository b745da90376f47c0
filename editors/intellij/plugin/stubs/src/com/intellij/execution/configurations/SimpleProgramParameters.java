/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community SimpleProgramParameters.java (the env members SimpleJavaParameters inherits: getEnv, setEnv, isPassParentEnvs, setPassParentEnvs), as the glue already used them.
 */
package com.intellij.execution.configurations;

import java.util.Map;
import org.jetbrains.annotations.NotNull;

public class SimpleProgramParameters {
    public @NotNull Map<String, String> getEnv() { throw new AssertionError("compile-only stub"); }

    public void setEnv(Map<String, String> env) { throw new AssertionError("compile-only stub"); }

    public boolean isPassParentEnvs() { throw new AssertionError("compile-only stub"); }

    public void setPassParentEnvs(boolean passDefaultEnvs) { throw new AssertionError("compile-only stub"); }
}
