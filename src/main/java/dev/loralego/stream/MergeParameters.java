package dev.loralego.stream;

import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.ParameterReweighting;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The algorithm parameters the service applies to one merge group: the LoRA-LEGO options plus the
 * streaming ones (ALGORITHM.md §6). They travel as a string map inside every task and manifest, so a
 * replay needs no configuration to reproduce a version.
 *
 * @param lego        clustering and reweighting options
 * @param refineEvery refine a module's clusters every this many updates of it, at a per-module phase so a group's
 *                    modules do not all refine on the same version (0 = never; 1 = every update)
 * @param refineMode  {@code lloyd}: Lloyd on the stored pool warm-started from the current centroids (cheap);
 *                    {@code recluster}: the batch algorithm from scratch on the stored pool, so the module equals
 *                    the offline {@code merge} of the live set bit for bit (costs a full k-means)
 * @param decay       forgetting factor λ applied to cluster weights before each step (1 = off)
 * @param outputDType element type of merged tensors on {@code lora.merged.layers}: F32, F16, BF16, or {@value #AUTO_DTYPE}
 *                    (the default): the live adapters' most common dtype ({@code MergedAdapterSpec.dtypeOf}), as the
 *                    offline {@code merge} writes by default; F32 where that is F64 or unknown (adapters published
 *                    by builds before 0.3.0 do not state it). The sequencer resolves it per version and hands the
 *                    resolved dtype to the module tasks; plans and manifests record {@value #AUTO_DTYPE}
 * @param maxRank     largest adapter rank accepted
 * @param normOutlierFactor an adapter whose module update norm {@code ‖ΔW‖_F} exceeds this multiple of the
 *                    median of the module's other live adapters (at least two) is an outlier; 0 = no check
 * @param normOutlierPolicy what happens to an outlier: {@code reject} (left out of that module, reported in
 *                    the manifest's warnings) or {@code clip} (scaled down to the limit, reported)
 */
public record MergeParameters(LegoOptions lego, int refineEvery, String refineMode, double decay, String outputDType, int maxRank,
                              double normOutlierFactor, String normOutlierPolicy) {

    /** {@link #outputDType} that follows the live adapters' dtype. */
    public static final String AUTO_DTYPE = "AUTO";

    /** Default outlier limit: ten times the median norm of the module's other adapters. */
    public static final double DEFAULT_NORM_OUTLIER_FACTOR = 10;

    /** With the default outlier guard (factor 10, reject). */
    public MergeParameters(LegoOptions lego, int refineEvery, String refineMode, double decay, String outputDType, int maxRank) {
        this(lego, refineEvery, refineMode, decay, outputDType, maxRank, DEFAULT_NORM_OUTLIER_FACTOR, "reject");
    }

    /** Service defaults: LoRA-LEGO defaults, Lloyd refinement every 8 updates, no decay, the inputs' dtype, ranks up to 256. */
    public static MergeParameters defaults() {
        return new MergeParameters(LegoOptions.defaults(), 8, "lloyd", 1.0, AUTO_DTYPE, 256);
    }

    /** Whether the output dtype follows the live adapters' ({@value #AUTO_DTYPE}). */
    public boolean outputDTypeFollowsInputs() {
        return outputDType.equals(AUTO_DTYPE);
    }

    /** These parameters with another {@link #outputDType}. */
    public MergeParameters withOutputDType(String dtype) {
        return new MergeParameters(lego, refineEvery, refineMode, decay, dtype, maxRank, normOutlierFactor, normOutlierPolicy);
    }

    /**
     * Whether a module's merged result under these parameters can differ from its result under {@code other}: they
     * differ in the LoRA-LEGO options, the decay (both re-cluster a stored module, {@code StreamingState.reconcile})
     * or the output dtype. The other parameters decide what is accepted, how a new adapter's norm is checked and
     * when the next refinement runs, not a module's current result.
     */
    public boolean changeModuleResults(MergeParameters other) {
        return !lego.equals(other.lego) || Double.compare(decay, other.decay) != 0 || !outputDType.equals(other.outputDType);
    }

    /** Whether refinement re-runs the batch algorithm (rather than warm-started Lloyd). */
    public boolean reclusters() {
        return refineMode.equals("recluster");
    }

    public MergeParameters {
        if (lego.k() == LegoOptions.K_AUTO || lego.kPerModule().containsValue(LegoOptions.K_AUTO)) {
            throw new IllegalArgumentException("k auto is for the offline merge; the service needs a fixed k (or 0 = largest source rank)");
        }
        if (refineEvery < 0) throw new IllegalArgumentException("refineEvery must be >= 0, got " + refineEvery);
        refineMode = refineMode.toLowerCase(Locale.ROOT);
        if (!refineMode.equals("lloyd") && !refineMode.equals("recluster")) {
            throw new IllegalArgumentException("refineMode must be lloyd or recluster, got " + refineMode);
        }
        if (!(decay > 0 && decay <= 1)) throw new IllegalArgumentException("decay must be in (0, 1], got " + decay);
        outputDType = outputDType.toUpperCase(Locale.ROOT);
        if (!outputDType.equals("F32") && !outputDType.equals("F16") && !outputDType.equals("BF16") && !outputDType.equals(AUTO_DTYPE)) {
            throw new IllegalArgumentException("outputDType must be auto, F32, F16 or BF16, got " + outputDType);
        }
        if (maxRank < 1) throw new IllegalArgumentException("maxRank must be >= 1, got " + maxRank);
        if (!(normOutlierFactor == 0 || normOutlierFactor > 1) || !Double.isFinite(normOutlierFactor)) {
            throw new IllegalArgumentException("normOutlierFactor must be 0 (off) or > 1, got " + normOutlierFactor);
        }
        normOutlierPolicy = normOutlierPolicy.toLowerCase(Locale.ROOT);
        if (!normOutlierPolicy.equals("reject") && !normOutlierPolicy.equals("clip")) {
            throw new IllegalArgumentException("normOutlierPolicy must be reject or clip, got " + normOutlierPolicy);
        }
    }

    /** The parameters as a sorted string map (the form stored in tasks and manifests). */
    public Map<String, String> toMap() {
        Map<String, String> m = new TreeMap<>();
        m.put("method", "lego");
        m.put("k", Integer.toString(lego.k()));
        lego.kPerModule().forEach((module, k) -> m.put("k." + module, Integer.toString(k)));
        m.put("seed", Long.toString(lego.seed()));
        m.put("nInit", Integer.toString(lego.nInit()));
        m.put("maxIter", Integer.toString(lego.maxIter()));
        m.put("canonical", lego.canonical().name().toLowerCase(Locale.ROOT));
        m.put("featureNorm", lego.featureNorm().name().toLowerCase(Locale.ROOT));
        m.put("parameterReweighting", lego.parameterReweighting().name().toLowerCase(Locale.ROOT));
        m.put("outputReweighting", Boolean.toString(lego.outputReweighting()));
        m.put("refineEvery", Integer.toString(refineEvery));
        m.put("refineMode", refineMode);
        m.put("decay", Double.toString(decay));
        m.put("outputDType", outputDType);
        m.put("maxRank", Integer.toString(maxRank));
        m.put("normOutlierFactor", Double.toString(normOutlierFactor));
        m.put("normOutlierPolicy", normOutlierPolicy);
        return m;
    }

    /** Parses {@link #toMap()}'s form; missing keys take the defaults. */
    public static MergeParameters fromMap(Map<String, String> m) {
        MergeParameters d = defaults();
        LegoOptions dl = d.lego();
        Map<String, Integer> kPerModule = new TreeMap<>();
        m.forEach((key, value) -> {
            if (key.startsWith("k.")) kPerModule.put(key.substring(2), Integer.parseInt(value));
        });
        LegoOptions lego = new LegoOptions(
                intOr(m, "k", dl.k()), kPerModule, longOr(m, "seed", dl.seed()),
                intOr(m, "nInit", dl.nInit()), intOr(m, "maxIter", dl.maxIter()),
                enumOr(m, "canonical", CanonicalForm.class, dl.canonical()),
                enumOr(m, "featureNorm", FeatureNorm.class, dl.featureNorm()),
                enumOr(m, "parameterReweighting", ParameterReweighting.class, dl.parameterReweighting()),
                booleanOr(m, "outputReweighting", dl.outputReweighting()));
        return new MergeParameters(lego, intOr(m, "refineEvery", d.refineEvery()), m.getOrDefault("refineMode", d.refineMode()),
                Double.parseDouble(m.getOrDefault("decay", Double.toString(d.decay()))),
                m.getOrDefault("outputDType", d.outputDType()), intOr(m, "maxRank", d.maxRank()),
                Double.parseDouble(m.getOrDefault("normOutlierFactor", Double.toString(d.normOutlierFactor()))),
                m.getOrDefault("normOutlierPolicy", d.normOutlierPolicy()));
    }

    private static int intOr(Map<String, String> m, String key, int dflt) {
        String v = m.get(key);
        return v == null ? dflt : Integer.parseInt(v.trim());
    }

    private static boolean booleanOr(Map<String, String> m, String key, boolean dflt) {
        String v = m.get(key);
        if (v == null) return dflt;
        String t = v.trim().toLowerCase(Locale.ROOT);
        if (!t.equals("true") && !t.equals("false")) throw new IllegalArgumentException(key + " must be true or false, got '" + v + "'");
        return t.equals("true");
    }

    private static long longOr(Map<String, String> m, String key, long dflt) {
        String v = m.get(key);
        return v == null ? dflt : Long.parseLong(v.trim());
    }

    private static <E extends Enum<E>> E enumOr(Map<String, String> m, String key, Class<E> type, E dflt) {
        String v = m.get(key);
        return v == null ? dflt : Enum.valueOf(type, v.trim().toUpperCase(Locale.ROOT));
    }
}
