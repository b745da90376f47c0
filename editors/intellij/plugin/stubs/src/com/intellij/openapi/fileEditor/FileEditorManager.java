/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community platform/analysis-api/src/com/intellij/openapi/fileEditor/FileEditorManager.java (FileEditor @NotNull [] openFile(VirtualFile, boolean))
 */
package com.intellij.openapi.fileEditor;

import com.intellij.openapi.project.Project;
import com.intellij.openapi.vfs.VirtualFile;
import org.jetbrains.annotations.NotNull;

public abstract class FileEditorManager {
    public static FileEditorManager getInstance(Project project) { throw new AssertionError("compile-only stub"); }

    public abstract FileEditor @NotNull [] openFile(@NotNull VirtualFile file, boolean focusEditor);
}
