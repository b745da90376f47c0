/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/openapi/ui/Messages.java (showChooseDialog(Project, String, String, Icon, String[], String), deprecated but present; showInfoMessage(Project, String, String))
 */
package com.intellij.openapi.ui;

import com.intellij.openapi.project.Project;
import javax.swing.Icon;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public class Messages {
    public static int showChooseDialog(Project project, String message, String title, Icon icon, String[] values,
                                       String initialValue) { throw new AssertionError("compile-only stub"); }

    public static void showInfoMessage(@Nullable Project project, String message, @NotNull String title) { throw new AssertionError("compile-only stub"); }
}
