package dev.loralego.lego;

import dev.loralego.peft.PeftAdapter;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The TIES trim by selection ({@link TiesMerge#trimToTop}, {@link TiesMerge#selectThreshold}) against two references
 * written here: the implementation it replaced (sort all magnitudes, {@link #sortedTrim}), verbatim, and an index
 * sort with the documented rule (largest magnitude first, lowest index first among equal magnitudes,
 * {@link #indexSortTrim}) for NaN-free inputs. Results are compared bit for bit ({@code -0.0} included).
 */
class TiesTrimSelectTest {

    /** The trim before the selection: a full sort of the magnitudes (kept as the reference, NaN behaviour included). */
    static void sortedTrim(double[] v, int keep) {
        int size = v.length;
        double[] mags = new double[size];
        for (int e = 0; e < size; e++) mags[e] = Math.abs(v[e]);
        Arrays.sort(mags);
        double threshold = mags[size - keep];
        int above = 0;
        for (int e = 0; e < size; e++) if (Math.abs(v[e]) > threshold) above++;
        int tiesLeft = keep - above;
        for (int e = 0; e < size; e++) {
            double mag = Math.abs(v[e]);
            if (mag > threshold) continue;
            if (mag == threshold && tiesLeft > 0) {
                tiesLeft--;
                continue;
            }
            v[e] = 0.0;
        }
    }

    /** The documented rule, for inputs without NaN: the first {@code keep} indices by (|v| descending, index). */
    static void indexSortTrim(double[] v, int keep) {
        Integer[] order = IntStream.range(0, v.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.<Integer>comparingDouble(e -> -Math.abs(v[e])).thenComparingInt(e -> e));
        boolean[] kept = new boolean[v.length];
        for (int i = 0; i < keep; i++) kept[order[i]] = true;
        for (int e = 0; e < v.length; e++) if (!kept[e]) v[e] = 0.0;
    }

    private static long[] bits(double[] v) {
        long[] out = new long[v.length];
        for (int i = 0; i < v.length; i++) out[i] = Double.doubleToRawLongBits(v[i]);
        return out;
    }

    private static void assertSameTrim(double[] v, int keep, boolean checkIndexSort, String what) {
        double[] expected = v.clone(), actual = v.clone();
        sortedTrim(expected, keep);
        TiesMerge.trimToTop(actual, keep, new double[v.length]);
        assertArrayEquals(bits(expected), bits(actual), what);
        if (checkIndexSort) {
            double[] byIndex = v.clone();
            indexSortTrim(byIndex, keep);
            assertArrayEquals(bits(byIndex), bits(actual), what + " (index sort)");
        }
        double[] mags = new double[v.length];
        for (int e = 0; e < v.length; e++) mags[e] = Math.abs(v[e]);
        Arrays.sort(mags);
        double t = TiesMerge.selectThreshold(v, keep, new double[v.length]);
        assertEquals(0, Double.compare(mags[v.length - keep], t), what + " threshold");
    }

    /** One of the value families: Gaussian, wide exponents, heavy ties, zeros of both signs, subnormals, ±∞. */
    private static double draw(SplittableRandom rng, int family) {
        switch (family) {
            case 0:
                return rng.nextGaussian() * 1e-3;
            case 1:
                return (rng.nextBoolean() ? 1 : -1) * Math.pow(2, rng.nextInt(-1074, 1024)) * (1 + rng.nextDouble());
            case 2: {
                double[] small = {0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5};
                return small[rng.nextInt(small.length)];
            }
            case 3:
                return rng.nextInt(4) == 0 ? rng.nextGaussian() : (rng.nextBoolean() ? 0.0 : -0.0);
            case 4:
                return (rng.nextBoolean() ? 1 : -1) * Double.MIN_VALUE * rng.nextInt(1, 5);
            case 5: {
                int c = rng.nextInt(10);
                if (c == 0) return Double.POSITIVE_INFINITY;
                if (c == 1) return Double.NEGATIVE_INFINITY;
                if (c == 2) return Double.MAX_VALUE;
                return rng.nextGaussian();
            }
            default:
                // values that share their top 47 bits, differing only in the low mantissa bits
                return Double.longBitsToDouble(0x3FF0_0000_0000_0000L | rng.nextLong(1 << 20))
                        * (rng.nextBoolean() ? 1 : -1);
        }
    }

    private static int[] keeps(SplittableRandom rng, int size) {
        double[] densities = {1e-9, 1e-3, 0.2, 0.5, 0.999, 1.0};
        int[] out = new int[densities.length + 3];
        for (int i = 0; i < densities.length; i++) {
            out[i] = (int) Math.max(1, Math.min(size, Math.round(densities[i] * size)));
        }
        out[densities.length] = 1;
        out[densities.length + 1] = size;
        out[densities.length + 2] = 1 + rng.nextInt(size);
        return out;
    }

    @Test
    void randomMatricesMatchBothReferences() {
        SplittableRandom rng = new SplittableRandom(20240611L);
        for (int round = 0; round < 700; round++) {
            int size = round < 50 ? 1 + round : 1 + rng.nextInt(round % 10 == 0 ? 5000 : 300);
            int family = round % 7;
            double[] v = new double[size];
            for (int e = 0; e < size; e++) v[e] = draw(rng, family);
            for (int keep : keeps(rng, size)) {
                assertSameTrim(v, keep, true, "round " + round + " family " + family + " size " + size + " keep " + keep);
            }
        }
    }

    @Test
    void allEqualMagnitudesZerosAndExtremes() {
        for (int size : new int[]{1, 2, 7, 1000, 70_000}) {
            double[] equal = new double[size], zeros = new double[size], signed = new double[size];
            for (int e = 0; e < size; e++) {
                equal[e] = e % 3 == 0 ? -0.25 : 0.25;
                zeros[e] = e % 2 == 0 ? -0.0 : 0.0;
                signed[e] = e % 2 == 0 ? -Double.MAX_VALUE : Double.POSITIVE_INFINITY;
            }
            for (int keep : new int[]{1, 2, size / 2, size - 1, size}) {
                if (keep < 1 || keep > size) continue;
                assertSameTrim(equal, keep, true, "equal " + size + "/" + keep);
                assertSameTrim(zeros, keep, true, "zeros " + size + "/" + keep);
                assertSameTrim(signed, keep, true, "extremes " + size + "/" + keep);
            }
        }
        // kept -0.0 stays -0.0, dropped entries become +0.0
        double[] v = {-0.0, 0.0, -0.0, 3.0};
        TiesMerge.trimToTop(v, 2, new double[4]);
        assertArrayEquals(bits(new double[]{-0.0, 0.0, 0.0, 3.0}), bits(v));
    }

    @Test
    void nanIsTreatedAsTheSortedTrimTreatsIt() {
        // Arrays.sort puts NaN last: a NaN threshold zeroes everything; otherwise NaN entries are zeroed and the
        // ties at the threshold may take their places.
        double negNaN = Double.longBitsToDouble(0xFFF8_0000_0000_0001L), oddNaN = Double.longBitsToDouble(0x7FF0_0000_0000_0001L);
        double[][] cases = {
                {Double.NaN, 1, 1, 1},
                {Double.NaN, 2, 1, 1},
                {Double.NaN, Double.NaN, 5, -5, 3},
                {negNaN, oddNaN, Double.POSITIVE_INFINITY, 0.0, -0.0},
                {Double.NaN},
        };
        for (double[] c : cases) {
            for (int keep = 1; keep <= c.length; keep++) assertSameTrim(c, keep, false, Arrays.toString(c) + " keep " + keep);
        }
        SplittableRandom rng = new SplittableRandom(99);
        for (int round = 0; round < 300; round++) {
            int size = 1 + rng.nextInt(200);
            double[] v = new double[size];
            for (int e = 0; e < size; e++) {
                int c = rng.nextInt(8);
                v[e] = c == 0 ? Double.NaN : c == 1 ? negNaN : draw(rng, 2 + rng.nextInt(2));
            }
            for (int keep : keeps(rng, size)) assertSameTrim(v, keep, false, "NaN round " + round + " keep " + keep);
        }
    }

    // ---- the real gpt2 fixtures ----

    private static final List<String> FIXTURES =
            List.of("gpt2-tigrinya-causal", "gpt2-imdb-seqcls-cattn", "gpt2-seqcls-cattn-cproj");

    private static List<AdapterModule> inputs(List<PeftAdapter> adapters, String module) throws Exception {
        List<AdapterModule> out = new ArrayList<>();
        for (PeftAdapter a : adapters) {
            var info = a.modules().get(module);
            if (info == null) continue;
            out.add(new AdapterModule(a.directory().getFileName().toString(), 1.0, info.scaling(), info.rank(),
                    info.dIn(), info.dOut(), a.readA(module), a.readB(module)));
        }
        return out;
    }

    /** {@link TiesMerge#mergeDense} as it was, with {@link #sortedTrim}. */
    private static double[] sortedMergeDense(List<AdapterModule> adapters, double density, double lambda) {
        int dIn = adapters.get(0).dIn(), size = dIn * adapters.get(0).dOut();
        int keep = (int) Math.max(1, Math.min(size, Math.round(density * size)));
        double[] tau = new double[size], rowBuf = new double[dIn], sum = new double[size], acc = new double[size];
        for (AdapterModule m : adapters) {
            DenseUpdates.full(m, m.weight(), tau, rowBuf);
            sortedTrim(tau, keep);
            for (int e = 0; e < size; e++) sum[e] += tau[e];
        }
        int[] count = new int[size];
        for (AdapterModule m : adapters) {
            DenseUpdates.full(m, m.weight(), tau, rowBuf);
            sortedTrim(tau, keep);
            for (int e = 0; e < size; e++) {
                double v = tau[e];
                if (v != 0 && sum[e] != 0 && (v > 0) == (sum[e] > 0)) {
                    acc[e] += v;
                    count[e]++;
                }
            }
        }
        for (int e = 0; e < size; e++) acc[e] = count[e] > 0 ? lambda * (acc[e] / count[e]) : 0.0;
        return acc;
    }

    @Test
    void realFixturesMergeExactlyAsBefore() throws Exception {
        List<PeftAdapter> adapters = new ArrayList<>();
        try {
            for (String name : FIXTURES) adapters.add(PeftAdapter.open(fixture(name)));
            // per-adapter trims of every module of layer 0, at three densities
            for (int layer : new int[]{0}) {
                for (String kind : new String[]{"attn.c_attn", "attn.c_proj", "mlp.c_proj"}) {
                    String module = "transformer.h." + layer + "." + kind;
                    for (AdapterModule m : inputs(adapters, module)) {
                        int size = m.dOut() * m.dIn();
                        double[] tau = new double[size];
                        DenseUpdates.full(m, 1.0, tau, new double[m.dIn()]);
                        for (double density : new double[]{1e-6, 0.2, 0.9}) {
                            int keep = (int) Math.max(1, Math.min(size, Math.round(density * size)));
                            double[] expected = tau.clone(), actual = tau.clone();
                            sortedTrim(expected, keep);
                            TiesMerge.trimToTop(actual, keep, new double[size]);
                            assertArrayEquals(bits(expected), bits(actual), module + " " + m.adapterId() + " " + density);
                        }
                    }
                }
            }
            // the whole merge (default density 0.2, λ 1, k 8) of a module targeted by three adapters and one by two
            for (String module : new String[]{"transformer.h.0.attn.c_attn", "transformer.h.5.attn.c_proj"}) {
                List<AdapterModule> in = inputs(adapters, module);
                assertTrue(in.size() >= 2, module);
                double[] dense = sortedMergeDense(in, 0.2, 1.0);
                assertArrayEquals(bits(dense), bits(TiesMerge.mergeDense(module, in, 0.2, 1.0)), module + " dense");
                MergedModule expected = DenseUpdates.factor(dense, in.get(0).dOut(), in.get(0).dIn(), 8);
                MergedModule actual = TiesMerge.merge(module, in, 0.2, 1.0, 8);
                assertArrayEquals(bits(expected.a()), bits(actual.a()), module + " A");
                assertArrayEquals(bits(expected.b()), bits(actual.b()), module + " B");
            }
        } finally {
            for (PeftAdapter a : adapters) a.close();
        }
    }

    private static Path fixture(String name) throws URISyntaxException {
        URL url = TiesTrimSelectTest.class.getResource("/real-adapters/" + name);
        if (url == null) throw new IllegalStateException("fixture " + name + " missing from the test classpath");
        return Path.of(url.toURI());
    }
}
