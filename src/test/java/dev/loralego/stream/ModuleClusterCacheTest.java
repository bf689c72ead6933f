package dev.loralego.stream;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.ParameterReweighting;
import dev.loralego.lego.StreamingModuleClusters;
import dev.loralego.lego.StreamingOptions;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

/** Replacement of {@link ModuleClusterCache}: stale state bytes miss, a cyclic pass keeps a stable subset, idle entries age out. */
class ModuleClusterCacheTest {

    private static StreamingModuleClusters clusters(String module) {
        StreamingModuleClusters s = new StreamingModuleClusters(module,
                new LegoOptions(2, Map.of(), 1L, 1, 10, CanonicalForm.NONE, FeatureNorm.NONE, ParameterReweighting.L2, true),
                StreamingOptions.defaults());
        s.upsert("a", new AdapterModule("a", 1.0, 1.0, 1, 3, 2, new double[]{1, 2, 3}, new double[]{4, 5}));
        return s;
    }

    @Test
    void aCyclicPassOverMoreModulesThanFitKeepsAStableSubsetCached() {
        AtomicLong now = new AtomicLong();
        long size = clusters("m0").retainedBytes();
        ModuleClusterCache cache = new ModuleClusterCache(3 * size, 1_000, now::get);
        StreamingModuleClusters[] c = new StreamingModuleClusters[5];
        byte[][] state = new byte[5][];
        for (int i = 0; i < 5; i++) {
            c[i] = clusters("m" + i);
            state[i] = c[i].toStateBytes();
        }
        int hits = 0;
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < 5; i++) {
                now.addAndGet(10); // well within minIdle: everything is in use
                if (cache.get("m" + i, state[i]) != null) hits++;
                cache.put("m" + i, c[i], state[i]);
            }
        }
        // three of five fit: after the first round they hit every time (plain LRU would never hit)
        assertEquals(3 * 3, hits);
        assertEquals(3, cache.size());
    }

    @Test
    void idleEntriesMakeRoomAndStaleStateBytesMiss() {
        AtomicLong now = new AtomicLong();
        long size = clusters("m0").retainedBytes();
        ModuleClusterCache cache = new ModuleClusterCache(2 * size, 1_000, now::get);
        StreamingModuleClusters a = clusters("a"), b = clusters("b"), c = clusters("c");
        cache.put("a", a, a.toStateBytes());
        cache.put("b", b, b.toStateBytes());
        cache.put("c", c, c.toStateBytes());
        assertNull(cache.get("c", c.toStateBytes()), "no idle victim: c is not cached");
        now.addAndGet(500);
        assertSame(b, cache.get("b", b.toStateBytes()));
        now.addAndGet(700); // a idle for 1200 > 1000, b for 700
        cache.put("c", c, c.toStateBytes());
        assertNull(cache.get("a", a.toStateBytes()), "the idle entry made room");
        assertNotNull(cache.get("b", b.toStateBytes()));
        assertNotNull(cache.get("c", c.toStateBytes()));
        byte[] other = b.toStateBytes().clone();
        other[other.length - 1] ^= 1;
        assertNull(cache.get("b", other), "different state bytes: stale");
        assertNull(cache.get("b", b.toStateBytes()), "and the stale entry is gone");
    }
}
