/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community platform/ide-core/src/com/intellij/notification/NotificationGroup.kt (createNotification(title, content, type)), as the glue already used them.
 */
package com.intellij.notification;

import org.jetbrains.annotations.NotNull;

public final class NotificationGroup {
    public @NotNull Notification createNotification(@NotNull String title, @NotNull String content, @NotNull NotificationType type) { throw new AssertionError("compile-only stub"); }
}
