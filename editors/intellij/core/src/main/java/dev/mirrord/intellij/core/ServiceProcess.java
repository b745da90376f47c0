package dev.mirrord.intellij.core;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The {@code mirrord ide --stdio} process: started in the project's
 * directory, its stderr (the service's log) kept as the last lines for
 * error messages and "Show log", and stopped for sure when done.
 */
public final class ServiceProcess {
    private static final int LOG_LINES = 40;

    private final Process process;
    private final Deque<String> log = new ArrayDeque<>();
    private final Thread logReader;

    private ServiceProcess(Process process) {
        this.process = process;
        this.logReader = new Thread(this::readLog, "mirrord-ide-log");
        this.logReader.setDaemon(true);
        this.logReader.start();
    }

    /**
     * Starts {@code binary ide --stdio} in {@code workspace}.
     *
     * @throws MirrordIdeException naming the binary and how to fix the path
     */
    public static ServiceProcess start(Path binary, Path workspace) {
        ProcessBuilder builder = new ProcessBuilder(List.of(binary.toString(), "ide", "--stdio"))
                .directory(workspace.toFile())
                .redirectInput(ProcessBuilder.Redirect.PIPE)
                .redirectOutput(ProcessBuilder.Redirect.PIPE)
                .redirectError(ProcessBuilder.Redirect.PIPE);
        try {
            return new ServiceProcess(builder.start());
        } catch (IOException e) {
            throw new MirrordIdeException(MirrordIdeException.Kind.START,
                    "cannot start " + binary + " ide (" + e.getMessage() + "): install mirrord, or set the path of the mirrord binary in the mirrord settings.", e);
        }
    }

    public Process process() {
        return process;
    }

    public long pid() {
        return process.pid();
    }

    /** The last lines the service logged. */
    public synchronized List<String> logTail() {
        return List.copyOf(log);
    }

    /**
     * What is known after its stdout ended: the exit code (waiting a moment
     * for it) and the last lines of its log.
     */
    public String describeExit() {
        StringBuilder why = new StringBuilder();
        try {
            if (process.waitFor(2, TimeUnit.SECONDS)) {
                why.append("It exited with code ").append(process.exitValue()).append('.');
            } else {
                why.append("It is still running but closed its output.");
            }
            logReader.join(500);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<String> tail = logTail();
        if (!tail.isEmpty()) {
            why.append(" Its last log lines: ").append(String.join(" | ", tail.subList(Math.max(0, tail.size() - 5), tail.size())));
        }
        return why.toString();
    }

    /** Waits up to {@code millis} for the process to exit, then kills it; returns its exit code. */
    public int stop(long millis) {
        try {
            if (!process.waitFor(millis, TimeUnit.MILLISECONDS)) {
                process.destroy();
                if (!process.waitFor(2, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
        return process.isAlive() ? -1 : process.exitValue();
    }

    private void readLog() {
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                synchronized (this) {
                    if (log.size() == LOG_LINES) {
                        log.removeFirst();
                    }
                    log.addLast(line);
                }
            }
        } catch (IOException ignored) {
            // The process is gone.
        }
    }
}
