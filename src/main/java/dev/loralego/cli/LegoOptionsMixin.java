package dev.loralego.cli;

import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.ParameterReweighting;
import picocli.CommandLine.Option;

import java.util.Map;

/** The LoRA-LEGO options shared by {@code merge}, {@code run} and {@code demo}. */
public final class LegoOptionsMixin {
    @Option(names = "--k", paramLabel = "K|auto",
            description = "merged rank per module: a number >= 1; 0 = the largest source rank; auto = chosen per module "
                    + "as the smallest k whose clustering keeps --k-auto-share of the units' energy (AutoRank). "
                    + "Default: auto for merge (see docs/results/quality.md), 0 for the streaming service")
    String k;

    @Option(names = "--k-auto-share", defaultValue = "0.9", paramLabel = "TAU",
            description = "share of a module's unit energy that --k auto keeps, in (0, 1] (default: ${DEFAULT-VALUE})")
    double autoShare;

    @Option(names = "--k-module", paramLabel = "MODULE=K", description = "per-module merged rank (repeatable)")
    Map<String, Integer> kPerModule = Map.of();

    @Option(names = "--seed", defaultValue = "42", description = "seed of every random choice (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--n-init", defaultValue = "4", description = "k-means restarts, lowest inertia wins (default: ${DEFAULT-VALUE})")
    int nInit;

    @Option(names = "--max-iter", defaultValue = "300", description = "Lloyd iteration cap (default: ${DEFAULT-VALUE})")
    int maxIter;

    @Option(names = "--canonical", defaultValue = "svd", description = "none | balanced | svd (default: ${DEFAULT-VALUE})")
    CanonicalForm canonical;

    @Option(names = "--feature-norm", defaultValue = "none", description = "none | halves (default: ${DEFAULT-VALUE})")
    FeatureNorm featureNorm;

    @Option(names = "--reweight", defaultValue = "l2", description = "parameter reweighting: l2 | linf | off (default: ${DEFAULT-VALUE})")
    ParameterReweighting reweight;

    @Option(names = "--no-output-reweight", description = "switch off the output reweighting γ = sqrt(r̄/k)")
    boolean noOutputReweight;

    /** The validated options; {@code --k} defaults to 0 (the largest source rank). */
    public LegoOptions toOptions() {
        return toOptions(0);
    }

    /**
     * The validated options.
     *
     * @param defaultK {@code k} when {@code --k} is not given ({@link LegoOptions#K_AUTO} for the batch merge)
     */
    public LegoOptions toOptions(int defaultK) {
        return new LegoOptions(k == null ? defaultK : parseK(k), kPerModule, seed, nInit, maxIter, canonical, featureNorm,
                reweight, !noOutputReweight, autoShare);
    }

    /**
     * {@code k} of the baseline methods (svd, ties, dare): {@code --k} as given, 0 (largest source rank) when absent.
     *
     * @throws IllegalArgumentException for {@code --k auto}, which only LoRA-LEGO defines
     */
    public int baselineK() {
        if (k == null) return 0;
        int v = parseK(k);
        if (v == LegoOptions.K_AUTO) {
            throw new IllegalArgumentException("--k auto is defined for --method lego only; give a number for the baselines");
        }
        return v;
    }

    /** {@code auto} → {@link LegoOptions#K_AUTO}, otherwise an integer {@code >= 0}. */
    static int parseK(String text) {
        String t = text.trim();
        if (t.equalsIgnoreCase("auto")) return LegoOptions.K_AUTO;
        try {
            int v = Integer.parseInt(t);
            if (v < 0) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--k must be a number >= 0 or 'auto', got '" + text + "'");
        }
    }
}
