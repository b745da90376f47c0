/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/ide-core/src/com/intellij/notification/Notification.java (addAction(AnAction) returns Notification; notify(Project))
 */
package com.intellij.notification;

import com.intellij.openapi.actionSystem.AnAction;
import com.intellij.openapi.project.Project;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public class Notification {
    public @NotNull Notification addAction(@NotNull AnAction action) { throw new AssertionError("compile-only stub"); }

    public void notify(@Nullable Project project) { throw new AssertionError("compile-only stub"); }
}
