package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.loralego.lego.NaiveReference.EXACT_TOL;
import static dev.loralego.lego.NaiveReference.assertClose;
import static dev.loralego.lego.NaiveReference.gaussians;
import static dev.loralego.lego.NaiveReference.randomAdapter;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Minimal semantic units: the two properties of ALGORITHM.md §1, folding, and the canonical forms of §2. */
class MinimalSemanticUnitsTest {

    /** Tolerance for equality of SVD units computed from different (but equivalent) factorisations. */
    private static final double SVD_UNIT_TOL = 1e-8;

    @ParameterizedTest(name = "r={0} dIn={1} dOut={2}")
    @CsvSource({"1,3,2", "4,7,5", "8,16,24", "6,3,4"})
    void permutingUnitsLeavesDeltaWUnchanged(int r, int dIn, int dOut) {
        SplittableRandom rng = new SplittableRandom(11L * r + dIn);
        for (int trial = 0; trial < 5; trial++) {
            AdapterModule m = randomAdapter("t", rng, r, dIn, dOut, 0.5 + rng.nextDouble(), 1.0);
            int[] perm = permutation(rng, r);
            double[] pa = new double[r * dIn], pb = new double[dOut * r];
            for (int j = 0; j < r; j++) {
                System.arraycopy(m.a(), perm[j] * dIn, pa, j * dIn, dIn);
                for (int o = 0; o < dOut; o++) pb[o * r + j] = m.b()[o * r + perm[j]];
            }
            AdapterModule permuted = new AdapterModule("p", 1.0, m.scaling(), r, dIn, dOut, pa, pb);
            assertClose(NaiveReference.deltaW(m), NaiveReference.deltaW(permuted), EXACT_TOL, "dense ΔW");
            assertClose(NaiveReference.deltaW(m), MinimalSemanticUnits.of(permuted, CanonicalForm.NONE).deltaW(),
                    EXACT_TOL, "units ΔW");
        }
    }

    @ParameterizedTest(name = "adapters={0} dIn={1} dOut={2}")
    @CsvSource({"2,3,2", "3,8,5", "5,12,20"})
    void concatenatedUnitsOutputTheSumOfOutputs(int adapters, int dIn, int dOut) {
        SplittableRandom rng = new SplittableRandom(97L * adapters + dOut);
        List<AdapterModule> list = new ArrayList<>();
        for (int t = 0; t < adapters; t++) {
            list.add(randomAdapter("a" + t, rng, 1 + rng.nextInt(6), dIn, dOut, 0.25 + 2 * rng.nextDouble(), 1.0));
        }
        UnitPool pool = LegoMerger.pool(list, CanonicalForm.NONE);
        int dim = dIn + dOut;
        for (int trial = 0; trial < 4; trial++) {
            double[] x = gaussians(rng, dIn);
            // concatenated LoRA: y = Σ_u b_u (a_u · x)
            double[] y = new double[dOut];
            for (int u = 0; u < pool.size(); u++) {
                double ax = 0;
                for (int i = 0; i < dIn; i++) ax += pool.units()[u * dim + i] * x[i];
                for (int o = 0; o < dOut; o++) y[o] += pool.units()[u * dim + dIn + o] * ax;
            }
            // sum of outputs: Σ_t s_t B_t (A_t x)
            double[] expected = new double[dOut];
            for (AdapterModule m : list) {
                for (int j = 0; j < m.rank(); j++) {
                    double ax = 0;
                    for (int i = 0; i < dIn; i++) ax += m.a()[j * dIn + i] * x[i];
                    for (int o = 0; o < dOut; o++) expected[o] += m.scaling() * m.b()[o * m.rank() + j] * ax;
                }
            }
            assertClose(expected, y, EXACT_TOL, "concatenated output");
        }
    }

    @Test
    void foldingGivesTheScaledProduct() {
        SplittableRandom rng = new SplittableRandom(5);
        AdapterModule m = randomAdapter("t", rng, 4, 6, 9, 2.75, 3.0);
        double[] x = MinimalSemanticUnits.fold(m);
        double h = Math.sqrt(2.75);
        // each unit is [sqrt(s) a_i ; sqrt(s) b_i], the merge weight NOT multiplied in
        for (int i = 0; i < 4; i++) {
            for (int c = 0; c < 6; c++) assertEquals(h * m.a()[i * 6 + c], x[i * 15 + c], 0.0);
            for (int o = 0; o < 9; o++) assertEquals(h * m.b()[o * 4 + i], x[i * 15 + 6 + o], 0.0);
        }
        assertClose(NaiveReference.deltaW(m), NaiveReference.unitsDeltaW(x, 4, 6, 9), EXACT_TOL, "Σ b aᵀ = s B A");
    }

    @ParameterizedTest(name = "{0} r={1} dIn={2} dOut={3}")
    @CsvSource({"NONE,4,7,5", "BALANCED,4,7,5", "SVD,4,7,5", "SVD,8,16,24", "SVD,6,3,4", "SVD,5,4,3", "BALANCED,6,3,4"})
    void canonicalFormsKeepDeltaW(CanonicalForm form, int r, int dIn, int dOut) {
        SplittableRandom rng = new SplittableRandom(31L * r + dOut);
        AdapterModule m = randomAdapter("t", rng, r, dIn, dOut, 0.3 + rng.nextDouble(), 1.0);
        MinimalSemanticUnits u = MinimalSemanticUnits.of(m, form);
        assertClose(NaiveReference.deltaW(m), NaiveReference.unitsDeltaW(u.units(), u.count(), dIn, dOut), EXACT_TOL,
                form + " ΔW");
        assertEquals(form == CanonicalForm.SVD ? Math.min(r, Math.min(dIn, dOut)) : r, u.count(), "unit count");
        if (form != CanonicalForm.NONE) assertSignRule(u);
    }

    @Test
    void balancedUnitsHaveEqualHalves() {
        SplittableRandom rng = new SplittableRandom(17);
        AdapterModule m = randomAdapter("t", rng, 5, 6, 11, 4.0, 1.0);
        MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.BALANCED);
        for (int i = 0; i < u.count(); i++) {
            double na = 0, nb = 0;
            for (int c = 0; c < 6; c++) na += sq(u.units()[i * 17 + c]);
            for (int c = 6; c < 17; c++) nb += sq(u.units()[i * 17 + c]);
            assertEquals(Math.sqrt(na), Math.sqrt(nb), 1e-12 * Math.sqrt(na), "‖a‖ = ‖b‖ for unit " + i);
        }
    }

    @Test
    void svdUnitsDoNotDependOnTheAdaptersBasis() {
        SplittableRandom rng = new SplittableRandom(23);
        int r = 5, dIn = 12, dOut = 9;
        for (int trial = 0; trial < 5; trial++) {
            AdapterModule m = randomAdapter("t", rng, r, dIn, dOut, 1.5, 1.0);
            // G = I + 0.3 N: well conditioned with overwhelming probability; checked below
            DMatrixRMaj g = DMatrixRMaj.wrap(r, r, gaussians(rng, r * r));
            CommonOps_DDRM.scale(0.3, g);
            for (int i = 0; i < r; i++) g.add(i, i, 1.0);
            DMatrixRMaj gInv = new DMatrixRMaj(r, r);
            assertTrue(CommonOps_DDRM.invert(g.copy(), gInv), "G invertible");
            assertTrue(org.ejml.dense.row.NormOps_DDRM.conditionP2(g) < 20, "G well conditioned");
            DMatrixRMaj bg = new DMatrixRMaj(dOut, r), ga = new DMatrixRMaj(r, dIn);
            CommonOps_DDRM.mult(DMatrixRMaj.wrap(dOut, r, m.b().clone()), g, bg);
            CommonOps_DDRM.mult(gInv, DMatrixRMaj.wrap(r, dIn, m.a().clone()), ga);
            AdapterModule changed = new AdapterModule("t", 1.0, 1.5, r, dIn, dOut, ga.data, bg.data);
            MinimalSemanticUnits u1 = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
            MinimalSemanticUnits u2 = MinimalSemanticUnits.of(changed, CanonicalForm.SVD);
            assertEquals(u1.count(), u2.count());
            assertClose(u1.units(), u2.units(), SVD_UNIT_TOL, "SVD units of (B G, G⁻¹ A) vs (B, A)");
        }
    }

    @Test
    void svdUnitsAreOrthogonalDirectionsInDescendingOrder() {
        SplittableRandom rng = new SplittableRandom(29);
        AdapterModule m = randomAdapter("t", rng, 6, 10, 14, 2.0, 1.0);
        MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
        int dim = 24;
        double previous = Double.POSITIVE_INFINITY;
        for (int i = 0; i < u.count(); i++) {
            for (int j = 0; j < i; j++) {
                double da = 0, db = 0;
                for (int c = 0; c < 10; c++) da += u.units()[i * dim + c] * u.units()[j * dim + c];
                for (int c = 10; c < dim; c++) db += u.units()[i * dim + c] * u.units()[j * dim + c];
                assertEquals(0.0, da, 1e-10, "a parts orthogonal");
                assertEquals(0.0, db, 1e-10, "b parts orthogonal");
            }
            double na = 0;
            for (int c = 0; c < 10; c++) na += sq(u.units()[i * dim + c]);
            assertTrue(na <= previous * (1 + 1e-12), "singular values descending");
            previous = na;
        }
    }

    @Test
    void zeroUnitsAreDroppedByBalancedAndSvdButKeptByNone() {
        SplittableRandom rng = new SplittableRandom(37);
        AdapterModule m = randomAdapter("t", rng, 4, 6, 5, 1.0, 1.0);
        double[] b = m.b().clone();
        for (int o = 0; o < 5; o++) b[o * 4 + 2] = 0.0; // unit 2 has b = 0
        AdapterModule deficient = new AdapterModule("t", 1.0, 1.0, 4, 6, 5, m.a(), b);
        assertEquals(4, MinimalSemanticUnits.of(deficient, CanonicalForm.NONE).count());
        MinimalSemanticUnits balanced = MinimalSemanticUnits.of(deficient, CanonicalForm.BALANCED);
        assertArrayEquals(new int[]{0, 1, 3}, balanced.rankIndex());
        MinimalSemanticUnits svd = MinimalSemanticUnits.of(deficient, CanonicalForm.SVD);
        assertEquals(3, svd.count(), "rank-3 product gives 3 SVD units");
        assertClose(NaiveReference.deltaW(deficient), svd.deltaW(), EXACT_TOL, "ΔW of rank-deficient adapter");

        AdapterModule fresh = new AdapterModule("init", 1.0, 2.0, 4, 6, 5, m.a(), new double[20]); // PEFT init: B = 0
        assertEquals(0, MinimalSemanticUnits.of(fresh, CanonicalForm.SVD).count());
        assertEquals(0, MinimalSemanticUnits.of(fresh, CanonicalForm.BALANCED).count());
    }

    @Test
    void signRuleBreaksTiesAtTheLowestIndex() {
        // b = (-2, 2): equal magnitudes, the first one decides: negative, so the unit is negated
        AdapterModule m = new AdapterModule("t", 1.0, 1.0, 1, 2, 2, new double[]{1, 3}, new double[]{-2, 2});
        MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.BALANCED);
        double c = Math.sqrt(Math.sqrt(8) / Math.sqrt(10));
        assertArrayEquals(new double[]{-c, -3 * c, 2 / c, -2 / c}, u.units(), 1e-15);
    }

    @Test
    void nonFiniteFactorsAreRejectedNamingTheAdapter() {
        AdapterModule m = new AdapterModule("broken", 1.0, 1.0, 1, 2, 2, new double[]{1, Double.NaN}, new double[]{1, 2});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MinimalSemanticUnits.of(m, CanonicalForm.NONE));
        assertTrue(e.getMessage().contains("broken") && e.getMessage().contains("A[1]"), e.getMessage());
    }

    private static void assertSignRule(MinimalSemanticUnits u) {
        int dim = u.dim();
        for (int i = 0; i < u.count(); i++) {
            double best = 0, val = 0;
            for (int o = 0; o < u.dOut(); o++) {
                double v = u.units()[i * dim + u.dIn() + o];
                if (Math.abs(v) > best) {
                    best = Math.abs(v);
                    val = v;
                }
            }
            assertTrue(val > 0, "largest |b| entry of unit " + i + " is positive");
        }
    }

    private static int[] permutation(SplittableRandom rng, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    private static double sq(double v) {
        return v * v;
    }

    @Test
    void rederivingFromTheKeptSmallMatricesGivesTheSameUnitsBitForBit() {
        SplittableRandom rng = new SplittableRandom(77);
        int[][] shapes = {{16, 64, 96}, {4, 40, 7}, {7, 9, 33}, {1, 5, 5}, {3, 3, 3}};
        for (int[] sh : shapes) {
            AdapterModule m = randomAdapter("x", rng, sh[0], sh[1], sh[2], 0.5 + rng.nextDouble(), 1.0);
            MinimalSemanticUnits first = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
            assertTrue(first.replay() != null, "tall, well-conditioned factors take CholeskyQR2");
            MinimalSemanticUnits again = MinimalSemanticUnits.rederive(m, CanonicalForm.SVD, first.replay());
            assertArrayEquals(first.toBytes(), again.toBytes(), "r " + sh[0] + ", dIn " + sh[1] + ", dOut " + sh[2]);
            // another scale is another factorisation: the plan is not used, the result is that of a fresh derivation
            AdapterModule rescaled = new AdapterModule("x", 1.0, m.scaling() * 2, m.rank(), m.dIn(), m.dOut(), m.a(), m.b());
            assertArrayEquals(MinimalSemanticUnits.of(rescaled, CanonicalForm.SVD).toBytes(),
                    MinimalSemanticUnits.rederive(rescaled, CanonicalForm.SVD, first.replay()).toBytes());
        }
    }

    @Test
    void streamedBytesAreTheBytesOfToBytesWhateverTheChunkSize() {
        SplittableRandom rng = new SplittableRandom(79);
        String longId = "adapter-" + "x".repeat(200);
        for (String id : List.of("a", longId)) {
            AdapterModule m = randomAdapter(id, rng, 5, 13, 11, 0.75, 2.0);
            MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
            byte[] whole = u.toBytes();
            assertArrayEquals(documentedLayout(u), whole, "toBytes writes the documented layout");
            for (int chunk : new int[]{8, 9, 15, 16, 23, 64, 1 << 16}) {
                ByteArrayOutputStream streamed = new ByteArrayOutputStream();
                List<Integer> sizes = new ArrayList<>();
                u.streamBytes(chunk, b -> {
                    sizes.add(b.remaining());
                    streamed.write(b.array(), b.position(), b.remaining());
                });
                assertArrayEquals(whole, streamed.toByteArray(), "id of " + id.length() + " chars, chunks of " + chunk);
                assertTrue(sizes.stream().allMatch(n -> n > 0 && n <= chunk), "chunk sizes " + sizes);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> MinimalSemanticUnits.of(
                randomAdapter("a", rng, 2, 3, 3, 1.0, 1.0), CanonicalForm.NONE).streamBytes(7, b -> { }));
    }

    /** The layout {@link MinimalSemanticUnits#toBytes()} documents, written value by value. */
    private static byte[] documentedLayout(MinimalSemanticUnits u) {
        byte[] id = u.adapterId().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(2 + 4 + id.length + 8 + 16 + 4 * u.count() + 8 * u.units().length);
        b.put((byte) 'U').put((byte) 1).putInt(id.length).put(id).putLong(Double.doubleToRawLongBits(u.weight()));
        b.putInt(u.sourceRank()).putInt(u.dIn()).putInt(u.dOut()).putInt(u.count());
        for (int r : u.rankIndex()) b.putInt(r);
        for (double v : u.units()) b.putLong(Double.doubleToRawLongBits(v));
        assertEquals(0, b.remaining());
        return b.array();
    }

    @Test
    void factorsOutsideTheCholeskyRouteKeepNoPlanAndOtherFormsIgnoreIt() {
        SplittableRandom rng = new SplittableRandom(78);
        // B = 0 (PEFT's initial state) and a wide A (dIn < r) take the Householder route
        AdapterModule zeroB = new AdapterModule("z", 1.0, 1.0, 4, 12, 10, gaussians(rng, 4 * 12), new double[10 * 4]);
        AdapterModule wide = randomAdapter("w", rng, 6, 4, 20, 1.0, 1.0);
        for (AdapterModule m : List.of(zeroB, wide)) {
            MinimalSemanticUnits u = MinimalSemanticUnits.of(m, CanonicalForm.SVD);
            assertEquals(null, u.replay());
            assertArrayEquals(u.toBytes(), MinimalSemanticUnits.rederive(m, CanonicalForm.SVD, null).toBytes());
        }
        AdapterModule m = randomAdapter("b", rng, 5, 20, 30, 1.0, 1.0);
        LowRankFactorisation.Replay plan = MinimalSemanticUnits.of(m, CanonicalForm.SVD).replay();
        for (CanonicalForm c : List.of(CanonicalForm.NONE, CanonicalForm.BALANCED)) {
            assertArrayEquals(MinimalSemanticUnits.of(m, c).toBytes(), MinimalSemanticUnits.rederive(m, c, plan).toBytes());
        }
    }
}
