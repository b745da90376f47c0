/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/openapi/wm/StatusBar.java (updateWidget(String))
 */
package com.intellij.openapi.wm;

import org.jetbrains.annotations.NotNull;

public interface StatusBar {
    void updateWidget(@NotNull String id);
}
