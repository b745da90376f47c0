/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community platform/execution/src/com/intellij/execution/configurations/RunConfigurationBase.java (extends UserDataHolderBase; getProject()), as the glue already used them.
 */
package com.intellij.execution.configurations;

import com.intellij.openapi.project.Project;
import com.intellij.openapi.util.UserDataHolderBase;
import org.jetbrains.annotations.NotNull;

public abstract class RunConfigurationBase<T> extends UserDataHolderBase {
    public final @NotNull Project getProject() { throw new AssertionError("compile-only stub"); }
}
