/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community platform/editor-ui-api/src/com/intellij/openapi/actionSystem/AnAction.java (getActionUpdateThread), as the glue already used them.
 */
package com.intellij.openapi.actionSystem;

import org.jetbrains.annotations.NotNull;

public abstract class AnAction {
    public @NotNull ActionUpdateThread getActionUpdateThread() { throw new AssertionError("compile-only stub"); }
}
