/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community platform/core-api/src/com/intellij/ide/util/PropertiesComponent.java, as the glue already used them.
 */
package com.intellij.ide.util;

import com.intellij.openapi.project.Project;

public abstract class PropertiesComponent {
    public static PropertiesComponent getInstance(Project project) { throw new AssertionError("compile-only stub"); }

    public abstract String getValue(String name);

    public abstract void setValue(String name, String value);

    public abstract void setValue(String name, boolean value, boolean defaultValue);

    public abstract boolean getBoolean(String name, boolean defaultValue);
}
