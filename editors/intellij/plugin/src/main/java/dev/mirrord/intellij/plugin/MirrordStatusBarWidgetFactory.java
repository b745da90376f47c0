package dev.mirrord.intellij.plugin;

import com.intellij.openapi.project.Project;
import com.intellij.openapi.wm.StatusBarWidget;
import com.intellij.openapi.wm.StatusBarWidgetFactory;
import org.jetbrains.annotations.NotNull;

/** Puts {@link MirrordStatusBarWidget} in every project's status bar. */
public final class MirrordStatusBarWidgetFactory implements StatusBarWidgetFactory {
    @Override
    public @NotNull String getId() {
        return MirrordStatusBarWidget.ID;
    }

    @Override
    public @NotNull String getDisplayName() {
        return "mirrord";
    }

    @Override
    public boolean isAvailable(@NotNull Project project) {
        return true;
    }

    @Override
    public @NotNull StatusBarWidget createWidget(@NotNull Project project) {
        return new MirrordStatusBarWidget(project);
    }
}
