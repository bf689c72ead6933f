package dev.loralego.stream;

import java.util.concurrent.atomic.AtomicLong;

/**
 * JVM-wide counts of the Lloyd refinements the module mergers ran, for metrics and benchmarks: those that
 * refinement certificates showed to be no-ops (no unit would move; only adapters in doubt were re-derived) and
 * those that ran Lloyd on the whole pool (see docs/streaming-state.md).
 */
public final class RefinementStatistics {
    private static final AtomicLong CERTIFIED = new AtomicLong();
    private static final AtomicLong FULL = new AtomicLong();

    private RefinementStatistics() {
    }

    /** Refinements that left their module as it was, recognised by certificates, since the JVM started. */
    public static long certified() {
        return CERTIFIED.get();
    }

    /** Refinements that ran Lloyd on the whole pool (some unit moved), since the JVM started. */
    public static long full() {
        return FULL.get();
    }

    static void record(boolean certified) {
        (certified ? CERTIFIED : FULL).incrementAndGet();
    }
}
