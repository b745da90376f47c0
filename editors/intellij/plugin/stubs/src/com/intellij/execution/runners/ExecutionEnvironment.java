/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signature checked against: JetBrains/intellij-community platform/execution/src/com/intellij/execution/runners/ExecutionEnvironment.java
 */
package com.intellij.execution.runners;

public class ExecutionEnvironment {}
