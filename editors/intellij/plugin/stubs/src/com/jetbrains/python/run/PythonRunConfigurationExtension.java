/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community python/src/com/jetbrains/python/run/PythonRunConfigurationExtension.java (EP Pythonid.runConfigurationExtension)
 */
package com.jetbrains.python.run;

import com.intellij.execution.configuration.RunConfigurationExtensionBase;

public abstract class PythonRunConfigurationExtension extends RunConfigurationExtensionBase<AbstractPythonRunConfiguration<?>> {}
