/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: no public source (GoLand's Go plugin); the overridden signatures as public plugins override them against 2023-2024 SDKs (e.g. ashald/EnvFile and fehnomenal's intellij-direnv GoRunConfigurationExtension subclasses); EP com.goide.runConfigurationExtension from the IntelliJ SDK docs' extension point list (only the constant the glue compares with is declared)
 */
package com.goide.execution;

public abstract class GoRunningState<T extends GoRunConfigurationBase<?>> {
    public enum CommandLineType { RUN }
}
