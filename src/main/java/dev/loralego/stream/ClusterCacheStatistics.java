package dev.loralego.stream;

/** Read-only view of the JVM-wide module cluster cache's effectiveness, for metrics and benchmarks. */
public final class ClusterCacheStatistics {
    private ClusterCacheStatistics() {
    }

    /** Module steps that found their clusters in memory since the JVM started. */
    public static long hits() {
        return ModuleClusterCache.SHARED.hitsAndMisses()[0];
    }

    /** Module steps that had to rebuild their clusters from the store (re-deriving every live adapter's units). */
    public static long misses() {
        return ModuleClusterCache.SHARED.hitsAndMisses()[1];
    }
}
