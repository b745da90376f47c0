/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Signatures checked (read through the library index) against: JetBrains/intellij-community plugins/gradle/src/org/jetbrains/plugins/gradle/service/task/GradleTaskManagerExtension.java (cancelTask; configureTasks(String, ExternalSystemTaskId, GradleExecutionSettings, GradleVersion) as intellij-community's GrailsTaskManagerExtension overrides it; EP org.jetbrains.plugins.gradle.taskManager)
 */
package org.jetbrains.plugins.gradle.service.task;

import com.intellij.openapi.externalSystem.model.task.ExternalSystemTaskId;
import com.intellij.openapi.externalSystem.model.task.ExternalSystemTaskNotificationListener;
import org.gradle.util.GradleVersion;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;
import org.jetbrains.plugins.gradle.settings.GradleExecutionSettings;

public interface GradleTaskManagerExtension {
    default void configureTasks(@NotNull String projectPath, @NotNull ExternalSystemTaskId id,
                                @NotNull GradleExecutionSettings settings, @Nullable GradleVersion gradleVersion) {}

    boolean cancelTask(@NotNull ExternalSystemTaskId id, @NotNull ExternalSystemTaskNotificationListener listener);
}
