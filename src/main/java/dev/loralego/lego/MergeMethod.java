package dev.loralego.lego;

import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * The merge methods: LoRA-LEGO and the baselines of ALGORITHM.md §7, each merging one module. Names in lower case
 * ({@code lego}, {@code cat}, {@code linear}, {@code svd}, {@code ties}, {@code dare}, {@code task_arithmetic}) are
 * accepted by {@link #parse(String)}.
 *
 * <p>Weights: every method uses {@link AdapterModule#weight()} as given. LoRA-LEGO treats them as sample weights
 * (a weighted average over the adapters targeting the module); {@code linear}, {@code svd} and {@code dare} expect
 * weights already normalised over ALL adapters of the merge ({@link #normaliseWeights(double[])}); {@code cat},
 * {@code ties} and {@code task_arithmetic} use them as coefficients (default 1).
 */
public enum MergeMethod {
    /** LoRA-LEGO ({@link LegoMerger}). */
    LEGO {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return LegoMerger.mergeModule(module, adapters, lego);
        }
    },
    /** Exact {@code Σ w_t ΔW_t}, rank {@code Σ r_t} ({@link ConcatenationMerge#cat}). */
    CAT {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return ConcatenationMerge.cat(module, adapters);
        }
    },
    /** Exact weighted average, weights normalised by the caller ({@link ConcatenationMerge#linear}). */
    LINEAR {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return ConcatenationMerge.linear(module, adapters);
        }
    },
    /** Best rank-k approximation of {@code Σ w_t ΔW_t} ({@link SvdMerge}). */
    SVD {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return SvdMerge.merge(module, adapters, baseline.resolveK(adapters));
        }
    },
    /** TIES-Merging on dense updates, then rank k ({@link TiesMerge}). */
    TIES {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return TiesMerge.merge(module, adapters, baseline.densityOr(BaselineOptions.TIES_DEFAULT_DENSITY),
                    baseline.lambda(), baseline.resolveK(adapters));
        }
    },
    /** DARE on dense updates, then rank k ({@link DareMerge}). */
    DARE {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return DareMerge.merge(module, adapters, baseline.densityOr(BaselineOptions.DARE_DEFAULT_DENSITY),
                    baseline.seed(), baseline.resolveK(adapters));
        }
    },
    /** Exact {@code λ Σ w_t ΔW_t} ({@link ConcatenationMerge#taskArithmetic}). */
    TASK_ARITHMETIC {
        @Override
        public MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego, BaselineOptions baseline) {
            return ConcatenationMerge.taskArithmetic(module, adapters, baseline.lambda());
        }
    };

    /**
     * Merges one module.
     *
     * @param module   module name
     * @param adapters the adapters targeting it (not modified)
     * @param lego     options of {@link #LEGO} (ignored by the baselines)
     * @param baseline options of the baselines (ignored by {@link #LEGO})
     */
    public abstract MergedModule merge(String module, List<AdapterModule> adapters, LegoOptions lego,
                                       BaselineOptions baseline);

    /** The lower-case name used on the command line and in manifests. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses a method name, case-insensitive, {@code -} accepted for {@code _}.
     *
     * @throws IllegalArgumentException listing the known names
     */
    public static MergeMethod parse(String name) {
        Objects.requireNonNull(name, "method");
        String n = name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
        for (MergeMethod m : values()) {
            if (m.name().equals(n)) return m;
        }
        throw new IllegalArgumentException("unknown merge method '" + name
                + "', expected one of lego, cat, linear, svd, ties, dare, task_arithmetic");
    }

    /**
     * Weights divided by their sum (for {@code linear}, {@code svd}, {@code dare}): pass the weights of ALL adapters
     * of the merge, so that a module an adapter does not target counts as a zero update for it.
     *
     * @param weights finite, {@code > 0} (not modified)
     * @return a new array summing to 1 (up to rounding)
     */
    public static double[] normaliseWeights(double[] weights) {
        Objects.requireNonNull(weights, "weights");
        if (weights.length == 0) throw new IllegalArgumentException("no weights to normalise");
        double s = 0;
        for (int i = 0; i < weights.length; i++) {
            if (!(weights[i] > 0) || !Double.isFinite(weights[i])) {
                throw new IllegalArgumentException("weight " + i + " must be finite and > 0, got " + weights[i]);
            }
            s += weights[i];
        }
        double[] out = new double[weights.length];
        for (int i = 0; i < weights.length; i++) out[i] = weights[i] / s;
        return out;
    }
}
