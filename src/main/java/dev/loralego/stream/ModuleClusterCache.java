package dev.loralego.stream;

import dev.loralego.lego.StreamingModuleClusters;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The decoded clusters of recently updated modules, so a module step need not rebuild its unit pool from the
 * store. Least recently used entries go first once the estimated size passes the budget. An entry is used
 * only while the state bytes in the store are exactly the ones it was cached with, so a rolled-back
 * transaction or a restored task can never make it stale (the state bytes carry a digest of every
 * adapter's units). One cache per JVM, shared by all stream threads: a module key belongs to one task at a
 * time, and entries a task left behind after a rebalance fail the state-bytes check or age out.
 */
final class ModuleClusterCache {
    /** The JVM-wide cache: a quarter of the heap, or {@code -Dloralego.clusterCacheMb=N}. */
    static final ModuleClusterCache SHARED = new ModuleClusterCache(defaultBudget());

    private static long defaultBudget() {
        long mb = Long.getLong("loralego.clusterCacheMb", -1);
        return mb >= 0 ? mb << 20 : Runtime.getRuntime().maxMemory() / 4;
    }

    private record Entry(StreamingModuleClusters clusters, byte[] stateBytes, long bytes) {
    }

    private final long budgetBytes;
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long usedBytes;

    ModuleClusterCache(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    /** The cached clusters of {@code key} if they were cached with exactly {@code stateBytes}. */
    synchronized StreamingModuleClusters get(String key, byte[] stateBytes) {
        Entry e = entries.get(key);
        if (e == null) return null;
        if (!Arrays.equals(e.stateBytes, stateBytes)) {
            remove(key);
            return null;
        }
        return e.clusters;
    }

    synchronized void put(String key, StreamingModuleClusters clusters, byte[] stateBytes) {
        remove(key);
        long bytes = clusters.retainedBytes();
        if (bytes > budgetBytes) return;
        entries.put(key, new Entry(clusters, stateBytes, bytes));
        usedBytes += bytes;
        Iterator<Map.Entry<String, Entry>> it = entries.entrySet().iterator();
        while (usedBytes > budgetBytes && it.hasNext()) {
            Map.Entry<String, Entry> oldest = it.next();
            usedBytes -= oldest.getValue().bytes;
            it.remove();
        }
    }

    synchronized void remove(String key) {
        Entry e = entries.remove(key);
        if (e != null) usedBytes -= e.bytes;
    }

    synchronized void clear() {
        entries.clear();
        usedBytes = 0;
    }
}
