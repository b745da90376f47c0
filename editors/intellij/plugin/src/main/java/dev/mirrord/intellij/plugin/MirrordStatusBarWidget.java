package dev.mirrord.intellij.plugin;

import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.wm.StatusBar;
import com.intellij.openapi.wm.StatusBarWidget;
import com.intellij.util.Consumer;
import dev.mirrord.intellij.core.SessionTracker;
import java.awt.event.MouseEvent;
import org.jetbrains.annotations.NotNull;
import org.jetbrains.annotations.Nullable;

/**
 * The status bar's mirrord entry: the text and tooltip are
 * {@link SessionTracker#status} (off/on, the step a session is starting at,
 * the running session's target); a click flips the toggle. It repaints
 * when the tracker changes, on the UI thread.
 */
public final class MirrordStatusBarWidget implements StatusBarWidget, StatusBarWidget.TextPresentation {
    static final String ID = "mirrord.status";

    private final Project project;
    private final Runnable repaint = this::repaint;
    private StatusBar statusBar;

    MirrordStatusBarWidget(Project project) {
        this.project = project;
        MirrordProjectService.of(project).tracker().onChange(repaint);
    }

    @Override
    public @NotNull String ID() {
        return ID;
    }

    @Override
    public @Nullable WidgetPresentation getPresentation() {
        return this;
    }

    @Override
    public void install(@NotNull StatusBar statusBar) {
        this.statusBar = statusBar;
    }

    @Override
    public @NotNull String getText() {
        return status().text();
    }

    @Override
    public float getAlignment() {
        return 0.5f;
    }

    @Override
    public @Nullable String getTooltipText() {
        return status().tooltip();
    }

    @Override
    public @Nullable Consumer<MouseEvent> getClickConsumer() {
        return event -> {
            MirrordProjectService service = MirrordProjectService.of(project);
            service.setEnabled(!service.enabled());
        };
    }

    @Override
    public void dispose() {
        MirrordProjectService.of(project).tracker().removeChangeListener(repaint);
        statusBar = null;
    }

    private SessionTracker.Status status() {
        return MirrordProjectService.of(project).tracker().status(MirrordProjectService.of(project).enabled());
    }

    /** The tracker calls this on whatever thread changed it; the status bar is repainted on the UI thread. */
    private void repaint() {
        ApplicationManager.getApplication().invokeLater(() -> {
            StatusBar bar = statusBar;
            if (bar != null && !project.isDisposed()) {
                bar.updateWidget(ID);
            }
        });
    }
}
