package dev.mirrord.intellij.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * What the status bar shows: the sessions of one project's service that
 * are running (learned from {@code mirrord/sessions} after each launch, and
 * forgotten on {@code mirrord/sessionEnded} or when the service closes),
 * the step a starting session is at ({@code mirrord/progress}), and the
 * toggle's state. It is the client's {@link ServiceListener}; its methods
 * are called on the connection's reader thread and on pooled threads, and
 * {@link #status} on the UI thread, so the state sits behind one lock that
 * is never held while calling out. Change listeners run after the lock is
 * released, on the thread that made the change.
 */
public final class SessionTracker implements ServiceListener {
    /** The widget's text and tooltip. */
    public record Status(String text, String tooltip) {}

    private final Object lock = new Object();
    private final Map<String, String> running = new LinkedHashMap<>();
    private final Map<String, String> starting = new LinkedHashMap<>();
    private final List<Runnable> changeListeners = new CopyOnWriteArrayList<>();

    /** Calls {@code listener} after every change (to repaint the widget). */
    public void onChange(Runnable listener) {
        changeListeners.add(listener);
    }

    public void removeChangeListener(Runnable listener) {
        changeListeners.remove(listener);
    }

    /** Something the status depends on changed outside the tracker (the toggle): repaint. */
    public void changedElsewhere() {
        changed();
    }

    /** Takes the service's {@code mirrord/sessions} answer as the running sessions. */
    public void refresh(List<SessionInfo> sessions) {
        synchronized (lock) {
            running.clear();
            for (SessionInfo s : sessions) {
                if (s.running()) {
                    running.put(s.sessionId(), s.target());
                }
            }
        }
        changed();
    }

    @Override
    public void onProgress(String id, String message, boolean done) {
        synchronized (lock) {
            if (done) {
                starting.remove(id);
            } else {
                starting.put(id, message);
            }
        }
        changed();
    }

    @Override
    public void onSessionEnded(String sessionId, String reason) {
        synchronized (lock) {
            running.remove(sessionId);
        }
        changed();
    }

    @Override
    public void onClosed(MirrordIdeException cause) {
        synchronized (lock) {
            running.clear();
            starting.clear();
        }
        changed();
    }

    /** The targets of the running sessions, oldest first. */
    public List<String> runningTargets() {
        synchronized (lock) {
            return new ArrayList<>(running.values());
        }
    }

    /**
     * The widget's text: the toggle's state, else the step a session is
     * starting at, else the target of the running session(s); the tooltip
     * lists every running session and says what a click does.
     */
    public Status status(boolean enabled) {
        List<String> targets;
        List<String> steps;
        List<String> sessions = new ArrayList<>();
        synchronized (lock) {
            targets = new ArrayList<>(running.values());
            steps = new ArrayList<>(starting.values());
            running.forEach((id, target) -> sessions.add(target + " (session " + id + ")"));
        }
        String text;
        if (!steps.isEmpty()) {
            text = "mirrord: " + steps.get(steps.size() - 1);
        } else if (!targets.isEmpty()) {
            text = "mirrord: " + targets.get(0) + (targets.size() > 1 ? " +" + (targets.size() - 1) : "");
            if (!enabled) {
                text += " (off)";
            }
        } else {
            text = enabled ? "mirrord: on" : "mirrord: off";
        }
        String click = enabled ? "Click to run without mirrord." : "Click to run and debug with mirrord.";
        String tooltip = sessions.isEmpty() ? "No mirrord session is running. " + click
                : "Running: " + String.join(", ", sessions) + ". " + click;
        return new Status(text, tooltip);
    }

    private void changed() {
        for (Runnable listener : changeListeners) {
            listener.run();
        }
    }
}
