package dev.mirrord.intellij.plugin;

import com.intellij.execution.ExecutionException;
import com.intellij.execution.configurations.RunConfigurationBase;
import com.intellij.execution.process.ProcessAdapter;
import com.intellij.execution.process.ProcessEvent;
import com.intellij.execution.process.ProcessHandler;
import com.intellij.ide.util.PropertiesComponent;
import com.intellij.notification.NotificationAction;
import com.intellij.notification.NotificationGroupManager;
import com.intellij.notification.NotificationType;
import com.intellij.openapi.Disposable;
import com.intellij.openapi.application.ApplicationManager;
import com.intellij.openapi.components.Service;
import com.intellij.openapi.fileEditor.FileEditorManager;
import com.intellij.openapi.progress.ProgressManager;
import com.intellij.openapi.project.Project;
import com.intellij.openapi.ui.Messages;
import com.intellij.openapi.util.Key;
import com.intellij.openapi.vfs.LocalFileSystem;
import dev.mirrord.intellij.core.MirrordIdeClient;
import dev.mirrord.intellij.core.MirrordIdeException;
import dev.mirrord.intellij.core.PrepareLaunchResult;
import dev.mirrord.intellij.core.RunKind;
import dev.mirrord.intellij.core.SessionTracker;
import dev.mirrord.intellij.core.Target;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.jetbrains.annotations.NotNull;

/**
 * One {@code mirrord ide} per project, started on first use and shut down
 * with the project; the toggle's state; the {@link SessionTracker} the
 * status bar reads; the one way every run-configuration extension prepares
 * a launch ({@link #prepare}) and ends its session ({@link #rememberSession},
 * {@link #endSessionOnExit}); the target chooser (last choice remembered
 * per project); error notifications with "Open config" and "Show log".
 */
@Service(Service.Level.PROJECT)
public final class MirrordProjectService implements Disposable {
    private static final String ENABLED = "mirrord.enabled";
    private static final String LAST_TARGET = "mirrord.lastTarget";
    /** The session a run configuration was prepared in, from patching its command line to its process. */
    private static final Key<String> SESSION = Key.create("mirrord.sessionId");

    private final Project project;
    private final SessionTracker tracker = new SessionTracker();
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
        tracker.changedElsewhere();
    }

    /** What the status bar shows. */
    public SessionTracker tracker() {
        return tracker;
    }

    /** The running service, started if needed. Call off the UI thread: starting blocks. */
    public synchronized MirrordIdeClient client() {
        if (client == null || !client.isOpen()) {
            String base = project.getBasePath();
            client = MirrordIdeClient.start(Path.of(System.getProperty("mirrord.binary", "mirrord")),
                    Path.of(base == null ? "." : base), this::pick, tracker, MirrordIdeClient.Timeouts.defaults());
        }
        return client;
    }

    /** The service if it is running, without starting one. */
    private synchronized MirrordIdeClient openClient() {
        return client != null && client.isOpen() ? client : null;
    }

    /**
     * {@code mirrord/prepareLaunch} for a run of {@code kind} (see
     * {@link RunKind#launch}), under a modal progress when called on the UI
     * thread; the status bar learns the new session. The answer is checked
     * for what {@code kind} reads ({@link RunKind#check}), so callers read it
     * without failing. A failure is shown as a notification and thrown as
     * the run's {@link ExecutionException}.
     */
    public PrepareLaunchResult prepare(RunKind kind, Map<String, String> userEnv, Set<String> unset, String program)
            throws ExecutionException {
        try {
            return offUiThread(() -> {
                MirrordIdeClient service = client();
                PrepareLaunchResult result = service.prepareLaunch(kind.launch(userEnv, unset, program), project.getBasePath());
                tracker.refresh(service.sessions());
                kind.check(result);
                return result;
            });
        } catch (MirrordIdeException e) {
            notifyError(e);
            throw new ExecutionException(e.getMessage(), e);
        }
    }

    /** Keeps the session {@code configuration} was prepared in until its process starts. */
    public static void rememberSession(RunConfigurationBase<?> configuration, String sessionId) {
        configuration.putCopyableUserData(SESSION, sessionId);
    }

    /** Ends the session remembered for {@code configuration} when {@code handler}'s process ends. */
    public void endSessionOnExit(RunConfigurationBase<?> configuration, ProcessHandler handler) {
        String session = configuration.getCopyableUserData(SESSION);
        if (session == null) {
            return;
        }
        configuration.putCopyableUserData(SESSION, null);
        handler.addProcessListener(new ProcessAdapter() {
            @Override
            public void processTerminated(@NotNull ProcessEvent event) {
                ApplicationManager.getApplication().executeOnPooledThread(() -> {
                    MirrordIdeClient running = openClient();
                    if (running == null) {
                        return; // The service is gone, and its sessions with it.
                    }
                    try {
                        running.endSession(session);
                    } catch (MirrordIdeException e) {
                        // Already ended with its debuggee: nothing to do.
                    }
                });
            }
        });
    }

    /** Answers {@code mirrord/pickTarget} with a modal chooser on the UI thread; the last choice comes first. */
    private String pick(List<Target> targets) {
        PropertiesComponent props = PropertiesComponent.getInstance(project);
        String last = props.getValue(LAST_TARGET);
        String[] paths = targets.stream().map(Target::path).toArray(String[]::new);
        if (paths.length == 0) {
            return null;
        }
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

    /** Runs {@code call} under a modal progress when on the UI thread (starting a session takes seconds). */
    private <R> R offUiThread(java.util.function.Supplier<R> call) {
        if (!ApplicationManager.getApplication().isDispatchThread()) {
            return call.get();
        }
        return ProgressManager.getInstance().runProcessWithProgressSynchronously(
                call::get, "Starting mirrord session", true, project);
    }

    @Override
    public synchronized void dispose() {
        if (client != null) {
            client.close();
        }
    }
}
