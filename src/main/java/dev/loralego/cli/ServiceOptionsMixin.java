package dev.loralego.cli;

import dev.loralego.stream.MergeParameters;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The service's algorithm options: the LoRA-LEGO ones plus the streaming ones (ALGORITHM.md §6). */
public final class ServiceOptionsMixin {
    @Mixin
    LegoOptionsMixin lego;

    @Option(names = "--refine-every", defaultValue = "8",
            description = "refine a module's clusters every N updates of it; 0 = never (default: ${DEFAULT-VALUE})")
    int refineEvery;

    @Option(names = "--refine-mode", defaultValue = "lloyd",
            description = "lloyd: warm-started Lloyd (cheap); recluster: batch k-means from scratch, equal to the offline merge (default: ${DEFAULT-VALUE})")
    String refineMode;

    @Option(names = "--decay", defaultValue = "1", description = "forgetting factor λ in (0,1]; 1 = off (default: ${DEFAULT-VALUE})")
    double decay;

    @Option(names = "--output-dtype", defaultValue = "f32", description = "dtype of merged tensors: f32 | f16 | bf16 (default: ${DEFAULT-VALUE})")
    String outputDType;

    @Option(names = "--max-rank", defaultValue = "256", description = "largest adapter rank accepted (default: ${DEFAULT-VALUE})")
    int maxRank;

    /** The validated parameters (defaults of every group). */
    public MergeParameters toParameters() {
        return new MergeParameters(lego.toOptions(), refineEvery, refineMode, decay, outputDType, maxRank);
    }
}
