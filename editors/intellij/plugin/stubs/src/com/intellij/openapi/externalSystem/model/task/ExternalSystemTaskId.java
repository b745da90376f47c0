/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/external-system-api/src/com/intellij/openapi/externalSystem/model/task/ExternalSystemTaskId.java (@Nullable findProject())
 */
package com.intellij.openapi.externalSystem.model.task;

import com.intellij.openapi.project.Project;
import org.jetbrains.annotations.Nullable;

public final class ExternalSystemTaskId {
    public @Nullable Project findProject() { throw new AssertionError("compile-only stub"); }
}
