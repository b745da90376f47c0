package dev.mirrord.intellij.plugin;

import com.intellij.ide.util.PropertiesComponent;
import com.intellij.notification.NotificationAction;
import com.intellij.notification.NotificationGroupManager;
import com.intellij.notification.NotificationType;
import com.intellij.openapi.Disposable;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.fileEditor.FileEditorManager;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.ui.Messages;
import com.intellij.openapi.vfs.LocalFileSystem;
import dev.mirrord.intellij.core.MirrordIdeClient;
import dev.mirrord.intellij.core.MirrordIdeException;
import dev.mirrord.intellij.core.ServiceListener;
import dev.mirrord.intellij.core.Target;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One {@code mirrord ide} per project, started on first use and shut down
 * with the project; the toggle's state; the target chooser (last choice
 * remembered per project); error notifications with "Open config" and
 * "Show log".
 */
@Service(Service.Level.PROJECT)
public final class MirrordProjectService implements Disposable {
    private static final String ENABLED = "mirrord.enabled";
    private static final String LAST_TARGET = "mirrord.lastTarget";

    private final Project project;
    private MirrordIdeClient client;

    public MirrordProjectService(Project project) {
        this.project = project;
    }

    public static MirrordProjectService of(Project project) {
        return project.getService(MirrordProjectService.class);
    }

    public boolean enabled() {
        return PropertiesComponent.getInstance(project).getBoolean(ENABLED, false);
    }

    public void setEnabled(boolean on) {
        PropertiesComponent.getInstance(project).setValue(ENABLED, on, false);
    }

    /** The running service, started if needed. Call off the UI thread: starting blocks. */
    public synchronized MirrordIdeClient client() {
        if (client == null || !client.isOpen()) {
            String base = project.getBasePath();
            client = MirrordIdeClient.start(Path.of(System.getProperty("mirrord.binary", "mirrord")),
                    Path.of(base == null ? "." : base), this::pick, new ServiceListener() {},
                    MirrordIdeClient.Timeouts.defaults());
        }
        return client;
    }

    /** Answers {@code mirrord/pickTarget} with a modal chooser on the UI thread; the last choice comes first. */
    private String pick(List<Target> targets) {
        PropertiesComponent props = PropertiesComponent.getInstance(project);
        String last = props.getValue(LAST_TARGET);
        String[] paths = targets.stream().map(Target::path).toArray(String[]::new);
        AtomicReference<String> chosen = new AtomicReference<>();
        ApplicationManager.getApplication().invokeAndWait(() -> {
            int index = Messages.showChooseDialog(project, "No target is set in the mirrord config. Run against:",
                    "mirrord: Pick a Target", null, paths, last != null && List.of(paths).contains(last) ? last : paths[0]);
            if (index >= 0) {
                chosen.set(paths[index]);
            }
        });
        if (chosen.get() != null) {
            props.setValue(LAST_TARGET, chosen.get());
        }
        return chosen.get();
    }

    /** An error balloon with the message as the service or the client wrote it. */
    public void notifyError(MirrordIdeException e) {
        var notification = NotificationGroupManager.getInstance().getNotificationGroup("mirrord")
                .createNotification("mirrord", e.getMessage(), NotificationType.ERROR);
        String base = project.getBasePath();
        if (base != null) {
            notification.addAction(NotificationAction.createSimple("Open config", () -> {
                var file = LocalFileSystem.getInstance().findFileByNioFile(Path.of(base, ".mirrord", "mirrord.json"));
                if (file != null) {
                    FileEditorManager.getInstance(project).openFile(file, true);
                }
            }));
        }
        MirrordIdeClient current = client;
        if (current != null) {
            notification.addAction(NotificationAction.createSimple("Show log", () ->
                    Messages.showInfoMessage(project, String.join("\n", current.logTail()), "mirrord ide Log")));
        }
        notification.notify(project);
    }

    @Override
    public synchronized void dispose() {
        if (client != null) {
            client.close();
        }
    }
}
