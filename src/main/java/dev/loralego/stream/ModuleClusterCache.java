package dev.loralego.stream;

import dev.loralego.lego.StreamingModuleClusters;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The decoded clusters of recently updated modules (centroids and sums, units released), so a module step need
 * not rebuild them from the store — a rebuild re-derives every live adapter's units. An entry is used only while
 * the state bytes in the store are exactly the ones it was cached with, so a rolled-back transaction or a restored
 * task can never make it stale (the state bytes carry a digest of every adapter's units). One cache per JVM, shared
 * by all stream threads: a module key belongs to one task at a time, and entries a task left behind after a
 * rebalance fail the state-bytes check or age out.
 *
 * <p>Replacement is scan-resistant: a version touches every module of a group in turn, so with more modules than
 * fit, plain LRU would evict each entry just before its next use and miss on every step. Here an entry is evicted
 * to make room only once it has gone unused for {@code minIdle} (least recently used first); a new entry that finds
 * no such victim is not cached. So a cyclic pass keeps a stable subset cached, and entries of modules nobody
 * touches any more make room after {@code minIdle}.
 */
final class ModuleClusterCache {
    /**
     * The JVM-wide cache: a quarter of the heap, or {@code -Dloralego.clusterCacheMb=N}; idle time before an entry may
     * be evicted 300 s, or {@code -Dloralego.clusterCacheMinIdleSeconds=S}.
     */
    static final ModuleClusterCache SHARED = new ModuleClusterCache(defaultBudget(),
            TimeUnit.SECONDS.toNanos(Long.getLong("loralego.clusterCacheMinIdleSeconds", 300)), System::nanoTime);

    private static long defaultBudget() {
        long mb = Long.getLong("loralego.clusterCacheMb", -1);
        return mb >= 0 ? mb << 20 : Runtime.getRuntime().maxMemory() / 4;
    }

    private static final class Entry {
        final StreamingModuleClusters clusters;
        final byte[] stateBytes;
        final long bytes;
        long lastUsed;

        Entry(StreamingModuleClusters clusters, byte[] stateBytes, long bytes, long lastUsed) {
            this.clusters = clusters;
            this.stateBytes = stateBytes;
            this.bytes = bytes;
            this.lastUsed = lastUsed;
        }
    }

    private final long budgetBytes;
    private final long minIdleNanos;
    private final LongSupplier clock;
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long usedBytes;
    private long hits;
    private long misses;

    ModuleClusterCache(long budgetBytes, long minIdleNanos, LongSupplier nanoClock) {
        this.budgetBytes = budgetBytes;
        this.minIdleNanos = minIdleNanos;
        this.clock = nanoClock;
    }

    /** The cached clusters of {@code key} if they were cached with exactly {@code stateBytes}. */
    synchronized StreamingModuleClusters get(String key, byte[] stateBytes) {
        Entry e = entries.get(key);
        if (e == null || !Arrays.equals(e.stateBytes, stateBytes)) {
            if (e != null) remove(key);
            misses++;
            return null;
        }
        e.lastUsed = clock.getAsLong();
        hits++;
        return e.clusters;
    }

    /**
     * {@link #get}, and the entry found (if any) leaves the cache: for a caller that mutates the clusters, and puts them
     * back with their new state bytes once its step is complete. A step that fails half-way then leaves nothing cached
     * that no longer matches its state bytes.
     */
    synchronized StreamingModuleClusters take(String key, byte[] stateBytes) {
        StreamingModuleClusters c = get(key, stateBytes);
        if (c != null) remove(key);
        return c;
    }

    synchronized void put(String key, StreamingModuleClusters clusters, byte[] stateBytes) {
        remove(key);
        long bytes = clusters.retainedBytes();
        if (bytes > budgetBytes) return;
        long now = clock.getAsLong();
        Iterator<Map.Entry<String, Entry>> it = entries.entrySet().iterator();
        while (usedBytes + bytes > budgetBytes && it.hasNext()) {
            Entry oldest = it.next().getValue();
            if (now - oldest.lastUsed < minIdleNanos) break; // access order: every later entry is more recent
            usedBytes -= oldest.bytes;
            it.remove();
        }
        if (usedBytes + bytes > budgetBytes) return;
        entries.put(key, new Entry(clusters, stateBytes, bytes, now));
        usedBytes += bytes;
    }

    synchronized void remove(String key) {
        Entry e = entries.remove(key);
        if (e != null) usedBytes -= e.bytes;
    }

    synchronized void clear() {
        entries.clear();
        usedBytes = 0;
    }

    /** Lookups that found a valid entry, and those that did not, since start. */
    synchronized long[] hitsAndMisses() {
        return new long[]{hits, misses};
    }

    synchronized int size() {
        return entries.size();
    }
}
