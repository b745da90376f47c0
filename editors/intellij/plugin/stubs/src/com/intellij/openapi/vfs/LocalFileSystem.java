/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/analysis-api/src/com/intellij/openapi/vfs/LocalFileSystem.java (findFileByNioFile(Path))
 */
package com.intellij.openapi.vfs;

import java.nio.file.Path;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

public abstract class LocalFileSystem {
    public static LocalFileSystem getInstance() { throw new AssertionError("compile-only stub"); }

    public @Nullable VirtualFile findFileByNioFile(@NotNull Path file) { throw new AssertionError("compile-only stub"); }
}
