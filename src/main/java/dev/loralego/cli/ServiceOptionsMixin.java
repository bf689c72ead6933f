package dev.loralego.cli;

import dev.loralego.stream.MergeParameters;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The service's algorithm options: the LoRA-LEGO ones plus the streaming ones (ALGORITHM.md §6). */
public final class ServiceOptionsMixin {
    @Mixin
    LegoOptionsMixin lego;

    @Option(names = "--refine-every", defaultValue = "8",
            description = "refine a module's clusters every N updates of it, staggered across modules; 0 = never (default: ${DEFAULT-VALUE})")
    int refineEvery;

    @Option(names = "--refine-mode", defaultValue = "lloyd",
            description = "lloyd: warm-started Lloyd (cheap); recluster: batch k-means from scratch, equal to the offline merge (default: ${DEFAULT-VALUE})")
    String refineMode;

    @Option(names = "--decay", defaultValue = "1", description = "forgetting factor λ in (0,1]; 1 = off (default: ${DEFAULT-VALUE})")
    double decay;

    @Option(names = "--output-dtype", defaultValue = "auto",
            description = "dtype of merged tensors: auto | f32 | f16 | bf16; auto = the live adapters' most common dtype, as merge writes by default (default: ${DEFAULT-VALUE})")
    String outputDType;

    @Option(names = "--max-rank", defaultValue = "256", description = "largest adapter rank accepted (default: ${DEFAULT-VALUE})")
    int maxRank;

    @Option(names = "--norm-outlier-factor", defaultValue = "10",
            description = "an adapter whose update norm in a module exceeds this multiple of the median of the module's other adapters is an outlier; 0 = no check (default: ${DEFAULT-VALUE})")
    double normOutlierFactor;

    @Option(names = "--norm-outlier-policy", defaultValue = "reject",
            description = "reject: leave the outlier out of that module; clip: scale it down to the limit; both reported in the manifest (default: ${DEFAULT-VALUE})")
    String normOutlierPolicy;

    /** The validated parameters (defaults of every group). */
    public MergeParameters toParameters() {
        return new MergeParameters(lego.toOptions(), refineEvery, refineMode, decay, outputDType, maxRank,
                normOutlierFactor, normOutlierPolicy);
    }
}
