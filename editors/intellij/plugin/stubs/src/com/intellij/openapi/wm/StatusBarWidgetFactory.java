/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/openapi/wm/StatusBarWidgetFactory.java (2023+ form, createWidget(Project) a default method)
 */
package com.intellij.openapi.wm;

import com.intellij.openapi.project.Project;
import org.jetbrains.annotations.NotNull;

public interface StatusBarWidgetFactory {
    @NotNull
    String getId();

    @NotNull
    String getDisplayName();

    boolean isAvailable(@NotNull Project project);

    default @NotNull StatusBarWidget createWidget(@NotNull Project project) {
        throw new AbstractMethodError("createWidget is not implemented");
    }
}
