package dev.loralego.stream;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;

/**
 * JVM-wide count of module steps that have waited for their layer record longer than {@link #OVERDUE}, for the
 * metrics endpoint. A module task waits for its layer by design (a version must not depend on how the layers and
 * the tasks interleave), and {@code publish} writes both in one transaction, so a long wait means that a producer
 * committed a publish event without its layer record (or with one keyed to another module, or undecodable): the
 * group then holds at that version until the layer is written. Each {@link ModuleMerger} reports its own count.
 */
public final class LayerWaits {
    /** How long a module step may wait for its layer before it is reported. */
    public static final Duration OVERDUE = Duration.ofSeconds(60);

    private static final ConcurrentHashMap<Object, Integer> OVERDUE_BY_PROCESSOR = new ConcurrentHashMap<>();

    private LayerWaits() {
    }

    /** Module steps of this JVM that have waited for their layer longer than {@link #OVERDUE}. */
    public static int overdue() {
        int n = 0;
        for (int v : OVERDUE_BY_PROCESSOR.values()) n += v;
        return n;
    }

    static void report(Object processor, int overdue) {
        if (overdue == 0) {
            OVERDUE_BY_PROCESSOR.remove(processor);
        } else {
            OVERDUE_BY_PROCESSOR.put(processor, overdue);
        }
    }
}
