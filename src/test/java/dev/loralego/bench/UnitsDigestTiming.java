package dev.loralego.bench;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.MinimalSemanticUnits;

import java.util.Locale;
import java.util.SplittableRandom;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * Plain timing loop for the digest that checks re-derived units (CRC-32C and CRC-32 of the units' bytes), on the
 * units of one llama-7b MLP module of a rank-16 adapter (≈ 2 MB as bytes): through a full copy
 * ({@link MinimalSemanticUnits#toBytes()}) and through {@link MinimalSemanticUnits#streamBytes} with a 64 KiB
 * buffer, as {@code StreamingModuleClusters} does. Both must give the same value; prints the mean per digest of
 * each repetition. Single-threaded.
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.bench.UnitsDigestTiming [calls] [reps]
 * </pre>
 */
public final class UnitsDigestTiming {

    private UnitsDigestTiming() {
    }

    /**
     * Runs the timing.
     *
     * @param args optional {@code calls} per repetition (default 50) and {@code reps} (default 8; the first ones
     *             are the JIT's warm-up)
     */
    public static void main(String[] args) {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 50;
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        SplittableRandom rng = new SplittableRandom(1);
        int rank = 16, dIn = 4096, dOut = 11008;
        double[] a = new double[rank * dIn];
        double[] b = new double[dOut * rank];
        for (int i = 0; i < a.length; i++) a[i] = rng.nextDouble() - 0.5;
        for (int i = 0; i < b.length; i++) b[i] = (rng.nextDouble() - 0.5) * 1e-2;
        MinimalSemanticUnits units = MinimalSemanticUnits.of(new AdapterModule("x", 1.0, 2.0, rank, dIn, dOut, a, b),
                CanonicalForm.SVD);
        for (int rep = 0; rep < reps; rep++) {
            long copied = 0, streamed = 0;
            long t0 = System.nanoTime();
            for (int i = 0; i < calls; i++) copied = ofCopy(units);
            long t1 = System.nanoTime();
            for (int i = 0; i < calls; i++) streamed = ofStream(units);
            long t2 = System.nanoTime();
            if (copied != streamed) throw new AssertionError("the two digests differ");
            System.out.printf(Locale.ROOT, "copy %.3f ms, streamed %.3f ms per digest%n",
                    (t1 - t0) / 1e6 / calls, (t2 - t1) / 1e6 / calls);
        }
    }

    private static long ofCopy(MinimalSemanticUnits units) {
        byte[] bytes = units.toBytes();
        CRC32C c1 = new CRC32C();
        c1.update(bytes, 0, bytes.length);
        CRC32 c2 = new CRC32();
        c2.update(bytes, 0, bytes.length);
        return (c1.getValue() << 32) | c2.getValue();
    }

    private static long ofStream(MinimalSemanticUnits units) {
        CRC32C c1 = new CRC32C();
        CRC32 c2 = new CRC32();
        units.streamBytes(64 << 10, chunk -> {
            c1.update(chunk.array(), chunk.position(), chunk.remaining());
            c2.update(chunk.array(), chunk.position(), chunk.remaining());
        });
        return (c1.getValue() << 32) | c2.getValue();
    }
}
