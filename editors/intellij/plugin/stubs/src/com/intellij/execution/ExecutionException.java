/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * JetBrains/intellij-community platform/util/src/com/intellij/execution/ExecutionException.java, as the glue already used them.
 */
package com.intellij.execution;

public class ExecutionException extends Exception {
    public ExecutionException(String message) {
        super(message);
    }

    public ExecutionException(String message, Throwable cause) {
        super(message, cause);
    }
}
