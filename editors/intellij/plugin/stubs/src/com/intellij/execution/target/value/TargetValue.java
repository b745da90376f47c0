/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/platform-api/src/com/intellij/execution/target/value/TargetValue.java: Promise<T> getLocalValue()
 */
package com.intellij.execution.target.value;

import org.jetbrains.concurrency.Promise;

public interface TargetValue<T> {
    Promise<T> getLocalValue();
}
