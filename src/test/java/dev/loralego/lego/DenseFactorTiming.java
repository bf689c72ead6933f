package dev.loralego.lego;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Plain timing loop for the dense baselines ({@code ties}, {@code dare}) on the gpt2 module shapes: the dense passes
 * ({@link TiesMerge#mergeDense}, {@link DareMerge#mergeDense}) against the factorisation, full SVD
 * ({@link LowRankFactorisation#ofDense}) against the truncated route ({@link LowRankFactorisation#ofDenseTruncated}).
 * Three random rank-8 adapters per shape; not a JMH benchmark: one warm-up round, then the mean of {@code reps}
 * calls of each step. Single-threaded.
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.lego.DenseFactorTiming [reps] [k...]
 * </pre>
 */
public final class DenseFactorTiming {

    private DenseFactorTiming() {
    }

    /**
     * Runs the timing and prints one line per shape and k.
     *
     * @param args optional {@code reps} (default 3), then the ranks k (default 8 64)
     */
    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        List<Integer> ks = new ArrayList<>();
        for (int i = 1; i < args.length; i++) ks.add(Integer.parseInt(args[i]));
        if (ks.isEmpty()) ks = List.of(8, 64);
        // {dIn, dOut, name}: gpt2 c_attn 768 → 2304, attn.c_proj 768 → 768, mlp.c_proj 3072 → 768
        Object[][] shapes = {{768, 2304, "c_attn"}, {768, 768, "attn.c_proj"}, {3072, 768, "mlp.c_proj"}};
        double sink = 0;
        for (Object[] s : shapes) {
            int dIn = (Integer) s[0], dOut = (Integer) s[1];
            List<AdapterModule> adapters = adapters(dIn, dOut);
            for (int round = 0; round < 2; round++) {
                boolean print = round == 1;
                int n = print ? reps : 1;
                double[] ties = null, dare = null;
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) ties = TiesMerge.mergeDense("m", adapters, 0.2, 1.0);
                long t1 = System.nanoTime();
                for (int i = 0; i < n; i++) dare = DareMerge.mergeDense("m", adapters, 0.5, 42L);
                long t2 = System.nanoTime();
                for (int i = 0; i < n; i++) sink += LowRankFactorisation.ofDense(ties, dOut, dIn).singularValues()[0];
                long t3 = System.nanoTime();
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT,
                        "%-11s %4d -> %-4d  ties dense %6.0f ms  dare dense %5.0f ms  ofDense %6.0f ms", s[2], dIn, dOut,
                        (t1 - t0) / 1e6 / n, (t2 - t1) / 1e6 / n, (t3 - t2) / 1e6 / n));
                for (int k : ks) {
                    long t4 = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                        sink += LowRankFactorisation.ofDenseTruncated(ties, dOut, dIn, k).singularValues()[0];
                    }
                    line.append(String.format(Locale.ROOT, "  truncated k=%d %5.0f ms", k, (System.nanoTime() - t4) / 1e6 / n));
                }
                if (print) System.out.println(line);
            }
        }
        System.out.println("(sink " + (sink != 0) + ")");
    }

    private static List<AdapterModule> adapters(int dIn, int dOut) {
        SplittableRandom rng = new SplittableRandom(7);
        List<AdapterModule> out = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            int r = 8;
            double[] a = new double[r * dIn], b = new double[dOut * r];
            for (int i = 0; i < a.length; i++) a[i] = (2 * rng.nextDouble() - 1) * Math.sqrt(1.0 / dIn);
            for (int i = 0; i < b.length; i++) b[i] = 1e-2 * (2 * rng.nextDouble() - 1);
            out.add(new AdapterModule("t" + t, 1.0, 4.0, r, dIn, dOut, a, b));
        }
        return out;
    }
}
