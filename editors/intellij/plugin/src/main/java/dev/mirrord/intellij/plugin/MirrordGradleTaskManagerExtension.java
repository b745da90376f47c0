package dev.mirrord.intellij.plugin;

import com.intellij.execution.ExecutionException;
import com.intellij.openapi.externalSystem.model.ExternalSystemException;
import com.intellij.openapi.externalSystem.model.task.ExternalSystemTaskId;
import com.intellij.openapi.externalSystem.model.task.ExternalSystemTaskNotificationListener;
import com.intellij.openapi.project.Project;
import dev.mirrord.intellij.core.MirrordIdeException;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunEnvironment;
import dev.mirrord.intellij.core.RunKind;
import java.util.Map;
import java.util.Set;
import org.gradle.util.GradleVersion;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;
import org.jetbrains.plugins.gradle.service.task.GradleTaskManagerExtension;
import org.jetbrains.plugins.gradle.settings.GradleExecutionSettings;

/**
 * Gradle tasks run from the IDE (Gradle run configurations, and
 * application and test runs delegated to Gradle; registered from
 * {@code mirrord-gradle.xml}). Gradle's settings hold the environment the
 * build gets (the JVMs it forks inherit it), as a {@link RunKind#GRADLE}
 * launch. Called on the task's own thread, never the UI's. Settings can
 * only gain variables: an inherited variable to unset switches inheritance
 * off and writes the whole environment (see {@link RunEnvironment}). A
 * failure fails the task. The session ends when the last process with the
 * layer exits (the service reaps it).
 */
public final class MirrordGradleTaskManagerExtension implements GradleTaskManagerExtension {
    @Override
    public void configureTasks(@NotNull String projectPath, @NotNull ExternalSystemTaskId id,
                               @NotNull GradleExecutionSettings settings, @Nullable GradleVersion gradleVersion) {
        Project project = id.findProject();
        if (project == null || !MirrordProjectService.of(project).enabled()) {
            return;
        }
        MirrordProjectService service = MirrordProjectService.of(project);
        RunEnvironment before = new RunEnvironment(settings.getEnv(), settings.isPassParentEnvs());
        Map<String, String> added;
        try {
            PrepareLaunchResult result = service.prepare(RunKind.GRADLE, settings.getEnv(), Set.of(), null);
            RunEnvironment after = before.patchedBy(result.env(), System.getenv());
            added = after.additionsTo(before);
            settings.passParentEnvs(after.passParent());
        } catch (ExecutionException e) {
            // Already shown by prepare. Fail the task: running it without mirrord would look like success.
            throw new ExternalSystemException(e.getMessage());
        } catch (MirrordIdeException e) {
            service.notifyError(e);
            throw new ExternalSystemException(e.getMessage());
        }
        settings.withEnvironmentVariables(added);
    }

    @Override
    public boolean cancelTask(@NotNull ExternalSystemTaskId id, @NotNull ExternalSystemTaskNotificationListener listener) {
        return false;
    }
}
