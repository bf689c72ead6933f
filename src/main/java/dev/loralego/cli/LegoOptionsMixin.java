package dev.loralego.cli;

import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.ParameterReweighting;
import picocli.CommandLine.Option;

import java.util.Map;

/** The LoRA-LEGO options shared by {@code merge}, {@code run} and {@code demo}. */
public final class LegoOptionsMixin {
    @Option(names = "--k", defaultValue = "0",
            description = "merged rank per module; 0 = the largest source rank (default)")
    int k;

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

    /** The validated options. */
    public LegoOptions toOptions() {
        return new LegoOptions(k, kPerModule, seed, nInit, maxIter, canonical, featureNorm, reweight, !noOutputReweight);
    }
}
