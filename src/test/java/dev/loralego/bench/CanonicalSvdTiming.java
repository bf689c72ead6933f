package dev.loralego.bench;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.MinimalSemanticUnits;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Plain timing loop for {@code MinimalSemanticUnits.of(m, CanonicalForm.SVD)} on the llama-7b module shapes
 * (r = 16; MLP 4096 → 11008, attention 4096 → 4096). Not a JMH benchmark: warms up, then times {@code calls}
 * calls per repetition and prints the mean per call of each repetition. Single-threaded.
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.bench.CanonicalSvdTiming [calls] [reps]
 * </pre>
 */
public final class CanonicalSvdTiming {

    private CanonicalSvdTiming() {
    }

    /**
     * Runs the timing and prints one line per shape.
     *
     * @param args optional {@code calls} per repetition (default 50) and {@code reps} (default 5)
     */
    public static void main(String[] args) {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 50;
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int[][] shapes = {{16, 4096, 11008}, {16, 4096, 4096}};
        for (int[] s : shapes) {
            AdapterModule m = adapter(s[0], s[1], s[2]);
            double sink = 0;
            for (int i = 0; i < 3 * calls; i++) sink += MinimalSemanticUnits.of(m, CanonicalForm.SVD).units()[0];
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "r=%d dIn=%d dOut=%d ms/call:", s[0], s[1], s[2]));
            for (int rep = 0; rep < reps; rep++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < calls; i++) sink += MinimalSemanticUnits.of(m, CanonicalForm.SVD).units()[0];
                line.append(String.format(Locale.ROOT, " %.2f", (System.nanoTime() - t0) / 1e6 / calls));
            }
            System.out.println(line + "   (sink " + (sink != 0) + ")");
        }
    }

    private static AdapterModule adapter(int r, int dIn, int dOut) {
        SplittableRandom rng = new SplittableRandom(7);
        double[] a = new double[r * dIn], b = new double[dOut * r];
        double bound = Math.sqrt(1.0 / dIn);
        for (int i = 0; i < a.length; i++) a[i] = (2 * rng.nextDouble() - 1) * bound;  // Kaiming-uniform-like A
        for (int i = 0; i < b.length; i++) b[i] = 1e-3 * (2 * rng.nextDouble() - 1);     // a trained, non-zero B
        return new AdapterModule("timing", 1.0, 2.0, r, dIn, dOut, a, b);
    }
}
