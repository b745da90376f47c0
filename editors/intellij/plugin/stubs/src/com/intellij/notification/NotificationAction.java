/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/ide-core/src/com/intellij/notification/NotificationAction.java (createSimple(String, Runnable))
 */
package com.intellij.notification;

import com.intellij.openapi.actionSystem.AnAction;
import org.jetbrains.annotations.NotNull;

public abstract class NotificationAction extends AnAction {
    public static @NotNull NotificationAction createSimple(@NotNull String text, @NotNull Runnable performAction) { throw new AssertionError("compile-only stub"); }
}
