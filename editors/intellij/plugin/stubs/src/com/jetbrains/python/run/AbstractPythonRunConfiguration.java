/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community python/src/com/jetbrains/python/run/AbstractPythonRunConfiguration.java (the hierarchy up to RunConfigurationBase is flattened)
 */
package com.jetbrains.python.run;

import com.intellij.execution.configurations.RunConfigurationBase;

public abstract class AbstractPythonRunConfiguration<T extends AbstractPythonRunConfiguration<T>> extends RunConfigurationBase<Object> {}
