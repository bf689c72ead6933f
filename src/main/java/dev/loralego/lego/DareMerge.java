package dev.loralego.lego;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The {@code dare} baseline: DARE (Yu et al., "Language Models are Super Mario: Absorbing Abilities from
 * Homologous Models as a Free Lunch", ICML 2024) on the dense updates {@code ΔW_t = s_t B_t A_t}, then factorised to
 * rank {@code k}.
 *
 * <p>Each entry of each {@code ΔW_t} is kept with probability {@code density} ({@code u < density}, {@code u} the
 * next {@code nextDouble()} of the adapter's RNG, one draw per entry in row-major order) and rescaled by
 * {@code 1/density}; the merged update is {@code Σ_t w_t · dropped_t} (weights normalised by the caller, as for
 * {@code linear}), factorised to its best rank-{@code min(k, dOut, dIn)} approximation
 * ({@link LowRankFactorisation#ofDenseTruncated}).
 *
 * <p>Seeding: adapter {@code t} (its index in the given list) draws from {@code new SplittableRandom(s_t)} with
 * {@code s_t = mix(mix(seed + γ (t + 1)) ^ fnv1a64(module))}, {@code mix} the SplitMix64 finaliser, {@code γ} the
 * golden-ratio increment and {@code fnv1a64} the 64-bit FNV-1a hash of the module name's UTF-8 bytes: stable across
 * JVMs and runs. The order of the list therefore matters; callers pass adapters in a fixed order (e.g. by id).
 */
public final class DareMerge {

    private DareMerge() {
    }

    /**
     * @param density keep probability, in {@code (0, 1]}
     * @param seed    seed of the drop masks
     * @param k       rank of the result, {@code ≥ 1}
     */
    public static MergedModule merge(String module, List<AdapterModule> adapters, double density, long seed, int k) {
        return DenseUpdates.factor(mergeDense(module, adapters, density, seed), adapters.get(0).dOut(),
                adapters.get(0).dIn(), checkK(module, k));
    }

    /** The dense merged update {@code Σ_t w_t · dropped_t}, row-major {@code dOut × dIn}, before factorisation. */
    public static double[] mergeDense(String module, List<AdapterModule> adapters, double density, long seed) {
        AdapterModule.requireCommonShape(module, adapters);
        AdapterModule.requireFinite(module, adapters);
        if (!(density > 0 && density <= 1)) {
            throw new IllegalArgumentException("module " + module + ": DARE density must be in (0, 1], got " + density);
        }
        int dIn = adapters.get(0).dIn(), dOut = adapters.get(0).dOut();
        double[] out = new double[dOut * dIn];
        double[] rowBuf = new double[dIn];
        for (int t = 0; t < adapters.size(); t++) {
            AdapterModule m = adapters.get(t);
            SplittableRandom rng = new SplittableRandom(adapterSeed(seed, module, t));
            double w = m.weight();
            for (int o = 0; o < dOut; o++) {
                DenseUpdates.row(m, o, 1.0, rowBuf);
                int wr = o * dIn;
                for (int i = 0; i < dIn; i++) {
                    if (rng.nextDouble() < density) out[wr + i] += w * (rowBuf[i] / density);
                }
            }
        }
        return out;
    }

    /** The seed of adapter {@code index}'s drop mask for a module (see the class comment). */
    public static long adapterSeed(long seed, String module, int index) {
        return mix(mix(seed + 0x9E3779B97F4A7C15L * (index + 1L)) ^ fnv1a64(module));
    }

    /** 64-bit FNV-1a of the UTF-8 bytes of {@code s}. */
    public static long fnv1a64(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte v : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= v & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private static int checkK(String module, int k) {
        if (k < 1) throw new IllegalArgumentException("module " + module + ": k must be >= 1, got " + k);
        return k;
    }
}
