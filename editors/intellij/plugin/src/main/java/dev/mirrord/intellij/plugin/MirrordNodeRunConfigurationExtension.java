package dev.mirrord.intellij.plugin;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.configuration.EnvironmentVariablesData;
import com.intellij.execution.runners.ExecutionEnvironment;
import com.intellij.javascript.nodejs.execution.AbstractNodeTargetRunProfile;
import com.intellij.javascript.nodejs.execution.NodeTargetRun;
import com.intellij.javascript.nodejs.execution.runConfiguration.AbstractNodeRunConfigurationExtension;
import com.intellij.javascript.nodejs.execution.runConfiguration.NodeRunConfigurationLaunchSession;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunEnvironment;
import dev.mirrord.intellij.core.RunKind;
import java.util.Set;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

/**
 * Node.js and npm run configurations (registered from
 * {@code mirrord-node.xml}, loaded only when the JavaScript plugin is).
 * Node configurations do not pass through {@code patchCommandLine}: the
 * environment is set on the {@link NodeTargetRun} by a launch session,
 * just before Node starts, as a {@link RunKind#NODE} launch. The session
 * ends when Node's last layer disconnects (the service reaps it): this
 * extension point offers no process to watch in the platform versions the
 * plugin supports.
 */
public final class MirrordNodeRunConfigurationExtension extends AbstractNodeRunConfigurationExtension {
    @Override
    public boolean isApplicableFor(@NotNull AbstractNodeTargetRunProfile configuration) {
        return true;
    }

    @Override
    public @Nullable NodeRunConfigurationLaunchSession createLaunchSession(@NotNull AbstractNodeTargetRunProfile configuration,
                                                                           @NotNull ExecutionEnvironment environment) {
        MirrordProjectService service = MirrordProjectService.of(configuration.getProject());
        if (!service.enabled()) {
            return null;
        }
        return new NodeRunConfigurationLaunchSession() {
            @Override
            public void addNodeOptionsTo(@NotNull NodeTargetRun targetRun) throws ExecutionException {
                EnvironmentVariablesData data = targetRun.getEnvData();
                PrepareLaunchResult result = service.prepare(RunKind.NODE, data.getEnvs(), Set.of(), null);
                RunEnvironment env = new RunEnvironment(data.getEnvs(), data.isPassParentEnvs())
                        .patchedBy(result.env(), System.getenv());
                targetRun.setEnvData(EnvironmentVariablesData.create(env.explicit(), env.passParent()));
            }
        };
    }
}
