package dev.loralego.cli;

import java.io.PrintStream;

/**
 * A one-line progress bar redrawn in place on a terminal; on a pipe or file it prints nothing, so logs stay
 * clean. Thread-safe.
 */
final class ProgressBar {
    private static final int WIDTH = 30;
    private final PrintStream out;
    private final boolean enabled;
    private final String label;
    private final long startNanos = System.nanoTime();
    private int lastDrawnPercent = -1;

    ProgressBar(PrintStream out, String label) {
        this(out, label, System.console() != null && !"dumb".equals(System.getenv("TERM")));
    }

    ProgressBar(PrintStream out, String label, boolean enabled) {
        this.out = out;
        this.label = label;
        this.enabled = enabled;
    }

    synchronized void update(int done, int total, String item) {
        if (!enabled || total <= 0) return;
        int percent = (int) (100L * done / total);
        if (percent == lastDrawnPercent && done != total) return;
        lastDrawnPercent = percent;
        int filled = (int) ((long) WIDTH * done / total);
        double secs = (System.nanoTime() - startNanos) / 1e9;
        String shown = item.length() > 40 ? "…" + item.substring(item.length() - 39) : item;
        out.printf("\r%s [%s%s] %d/%d %5.1fs %-40s", label, "#".repeat(filled), " ".repeat(WIDTH - filled), done, total, secs, shown);
        if (done == total) out.println();
        out.flush();
    }
}
