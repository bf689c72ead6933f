package dev.loralego.cli;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * A one-line progress bar redrawn in place on a terminal; on a pipe or file it prints nothing, so logs stay
 * clean. Thread-safe; worker threads may report their counts out of order, so a count not above the last one
 * drawn is ignored (the bar never moves back, and nothing is drawn after the final line).
 */
final class ProgressBar {
    private static final int WIDTH = 30;
    private final PrintWriter out;
    private final boolean enabled;
    private final String label;
    private final long startNanos = System.nanoTime();
    private int lastDrawnPercent = -1;
    private int lastDone = -1;

    ProgressBar(PrintStream out, String label) {
        this(new PrintWriter(out, true), label);
    }

    ProgressBar(PrintWriter out, String label) {
        this(out, label, System.console() != null && !"dumb".equals(System.getenv("TERM")));
    }

    ProgressBar(PrintWriter out, String label, boolean enabled) {
        this.out = out;
        this.label = label;
        this.enabled = enabled;
    }

    synchronized void update(int done, int total, String item) {
        if (!enabled || total <= 0 || done <= lastDone) return;
        lastDone = done;
        int percent = (int) (100L * done / total);
        if (percent == lastDrawnPercent && done != total) return;
        lastDrawnPercent = percent;
        int filled = (int) ((long) WIDTH * done / total);
        double secs = (System.nanoTime() - startNanos) / 1e9;
        String shown = item.length() > 40 ? "…" + item.substring(item.length() - 39) : item;
        out.printf(Locale.ROOT, "\r%s [%s%s] %d/%d %5.1fs %-40s", label, "#".repeat(filled), " ".repeat(WIDTH - filled), done, total, secs, shown);
        if (done == total) out.println();
        out.flush();
    }
}
