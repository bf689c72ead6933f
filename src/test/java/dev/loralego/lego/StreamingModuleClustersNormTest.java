package dev.loralego.lego;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The per-adapter update norm cache of {@link StreamingModuleClusters} (what the service's norm guard reads instead
 * of copying the pool every step) and {@link StreamingModuleClusters#unitDim()}.
 */
class StreamingModuleClustersNormTest {
    private static final String MODULE = "model.layers.0.self_attn.q_proj";
    /** Relative agreement of the factored norm with the dense ‖s·B·A‖_F (rounding only). */
    private static final double DENSE_TOL = 1e-10;

    private static StreamingModuleClusters state(CanonicalForm canonical) {
        LegoOptions o = new LegoOptions(3, Map.of(), 7L, 2, 100, canonical, FeatureNorm.NONE, ParameterReweighting.L2, true);
        return new StreamingModuleClusters(MODULE, o, new StreamingOptions(1.0, 0));
    }

    /** ‖s · B · A‖_F from the dense product, written out directly. */
    private static double denseNorm(AdapterModule m) {
        double sum = 0;
        for (int o = 0; o < m.dOut(); o++) {
            for (int c = 0; c < m.dIn(); c++) {
                double v = 0;
                for (int i = 0; i < m.rank(); i++) v += m.b()[o * m.rank() + i] * m.a()[i * m.dIn() + c];
                v *= m.scaling();
                sum += v * v;
            }
        }
        return Math.sqrt(sum);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(CanonicalForm.class)
    void updateNormIsTheDenseNormAndTheSameBitsAsOverThePoolRows(CanonicalForm canonical) {
        SplittableRandom rng = new SplittableRandom(11);
        StreamingModuleClusters s = state(canonical);
        int dIn = 9, dOut = 13;
        AdapterModule a = randomAdapter("a", rng, 4, dIn, dOut, 0.75, 1.0);
        AdapterModule b = randomAdapter("b", rng, 5, dIn, dOut, 2.0, 0.5);
        AdapterModule c = randomAdapter("c", rng, 3, dIn, dOut, 1.25, 2.0);
        s.upsert("a", a);
        s.upsert("b", b);
        s.upsert("c", c);
        UnitPool pool = s.pool();
        int[] owner = pool.ownerAdapter();
        List<String> ids = s.liveAdapters();
        int start = 0;
        for (int t = 0; t < ids.size(); t++) {
            int count = 0;
            while (start + count < owner.length && owner[start + count] == t) count++;
            double overPool = UpdateNorms.ofCanonicalUnits(pool.units(), start, count, dIn, dOut, canonical);
            assertEquals(Double.doubleToRawLongBits(overPool), Double.doubleToRawLongBits(s.updateNorm(ids.get(t))),
                    "adapter " + ids.get(t));
            start += count;
        }
        for (AdapterModule m : List.of(a, b, c)) {
            double dense = denseNorm(m);
            assertEquals(dense, s.updateNorm(m.adapterId()), DENSE_TOL * dense, "adapter " + m.adapterId());
        }
    }

    @Test
    void aReplacedAdapterGetsItsNewNormAndPeersKeepTheirs() {
        SplittableRandom rng = new SplittableRandom(5);
        StreamingModuleClusters s = state(CanonicalForm.SVD);
        AdapterModule a1 = randomAdapter("a", rng, 3, 6, 8, 1.0, 1.0);
        AdapterModule b = randomAdapter("b", rng, 3, 6, 8, 1.0, 1.0);
        s.upsert("a", a1);
        s.upsert("b", b);
        double before = s.updateNorm("a");
        double peer = s.updateNorm("b");
        AdapterModule a2 = randomAdapter("a", rng, 3, 6, 8, 3.0, 1.0);
        s.upsert("a", a2);
        assertNotEquals(before, s.updateNorm("a"));
        assertEquals(denseNorm(a2), s.updateNorm("a"), DENSE_TOL * denseNorm(a2));
        assertEquals(Double.doubleToRawLongBits(peer), Double.doubleToRawLongBits(s.updateNorm("b")));
        s.retract("a");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.updateNorm("a"));
        assertEquals(true, e.getMessage().contains("adapter a") && e.getMessage().contains(MODULE), e.getMessage());
    }

    @Test
    void unitDimIsDInPlusDOutAndZeroWhenEmpty() {
        StreamingModuleClusters s = state(CanonicalForm.NONE);
        assertEquals(0, s.unitDim());
        s.upsert("a", randomAdapter("a", new SplittableRandom(3), 2, 6, 10, 1.0, 1.0));
        assertEquals(16, s.unitDim());
        s.retract("a");
        assertEquals(0, s.unitDim());
    }
}
