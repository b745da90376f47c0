/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/core-api/src/com/intellij/openapi/progress/ProgressManager.java (runProcessWithProgressSynchronously(ThrowableComputable, String, boolean, Project))
 */
package com.intellij.openapi.progress;

import com.intellij.openapi.project.Project;
import com.intellij.openapi.util.ThrowableComputable;

public abstract class ProgressManager {
    public static ProgressManager getInstance() { throw new AssertionError("compile-only stub"); }

    public abstract <T, E extends Exception> T runProcessWithProgressSynchronously(ThrowableComputable<T, E> process,
            String progressTitle, boolean canBeCanceled, Project project) throws E;
}
