package dev.mirrord.intellij.core;

import java.util.List;

/**
 * Answers {@code mirrord/pickTarget}: the service found no target in the
 * configuration and asks the user. Called on a worker thread, never the
 * reader thread, so it may block until the user chooses (a UI
 * implementation hands the choice over to its UI thread and waits).
 */
@FunctionalInterface
public interface TargetPicker {
    /** The chosen target's path (e.g. {@code pid/4242}), or {@code null} when the user cancelled. */
    String pick(List<Target> targets) throws Exception;
}
