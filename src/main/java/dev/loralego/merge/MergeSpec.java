package dev.loralego.merge;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * A merge method with all its options: what {@code merge} runs on every module.
 *
 * @param method   LoRA-LEGO or a baseline
 * @param lego     options of LoRA-LEGO (ignored by baselines)
 * @param baseline options of the baselines (ignored by LoRA-LEGO)
 */
public record MergeSpec(MergeMethod method, LegoOptions lego, BaselineOptions baseline) {
    public MergeSpec {
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(lego, "lego");
        Objects.requireNonNull(baseline, "baseline");
    }

    /** LoRA-LEGO with {@code options}. */
    public static MergeSpec lego(LegoOptions options) {
        return new MergeSpec(MergeMethod.LEGO, options, BaselineOptions.defaults());
    }

    /**
     * The per-adapter weights the method expects, from the user's: {@code linear}, {@code svd} and
     * {@code dare} approximate a weighted average, so their weights are normalised over all adapters (a module
     * an adapter does not target counts as zero for it); the others use the weights as given.
     */
    public double[] adapterWeights(double[] userWeights) {
        return switch (method) {
            case LINEAR, SVD, DARE -> MergeMethod.normaliseWeights(userWeights);
            default -> userWeights.clone();
        };
    }

    /** Merges one module. */
    public MergedModule mergeModule(String module, List<AdapterModule> adapters) {
        return method.merge(module, adapters, lego, baseline);
    }

    /** The options as strings, for summaries and provenance. */
    public Map<String, String> describe() {
        Map<String, String> m = new TreeMap<>();
        m.put("method", method.cliName());
        if (method == MergeMethod.LEGO) {
            m.put("k", lego.k() == 0 ? "max source rank" : lego.k() == LegoOptions.K_AUTO
                    ? "auto (energy share " + lego.autoEnergyShare() + ")" : Integer.toString(lego.k()));
            m.put("seed", Long.toString(lego.seed()));
            m.put("nInit", Integer.toString(lego.nInit()));
            m.put("canonical", lego.canonical().name().toLowerCase(Locale.ROOT));
            m.put("featureNorm", lego.featureNorm().name().toLowerCase(Locale.ROOT));
            m.put("parameterReweighting", lego.parameterReweighting().name().toLowerCase(Locale.ROOT));
            m.put("outputReweighting", Boolean.toString(lego.outputReweighting()));
        } else {
            // only what the method uses, with the density it resolves to (0 stands for the method's default)
            String k = baseline.k() == 0 ? "max source rank" : Integer.toString(baseline.k());
            switch (method) {
                case SVD -> m.put("k", k);
                case TIES -> {
                    m.put("k", k);
                    m.put("density", Double.toString(baseline.densityOr(BaselineOptions.TIES_DEFAULT_DENSITY)));
                    m.put("lambda", Double.toString(baseline.lambda()));
                }
                case DARE -> {
                    m.put("k", k);
                    m.put("density", Double.toString(baseline.densityOr(BaselineOptions.DARE_DEFAULT_DENSITY)));
                    m.put("seed", Long.toString(baseline.seed()));
                }
                case TASK_ARITHMETIC -> m.put("lambda", Double.toString(baseline.lambda()));
                default -> { } // cat, linear: exact, no option
            }
        }
        return m;
    }
}
