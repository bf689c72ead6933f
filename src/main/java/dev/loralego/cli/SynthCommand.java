package dev.loralego.cli;

import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.SyntheticAdapters;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code synth}: writes realistic synthetic PEFT adapters for examples, tests and benchmarks. */
@Command(name = "synth", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Writes N synthetic PEFT LoRA adapters with the real module names and shapes of a base model.",
                "Example: synth --out adapters --adapters 8 --rank 16 --shape llama-7b --dtype bf16 --seed 1"})
public final class SynthCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--out", required = true, description = "output directory (adapter-00, adapter-01, ... inside)")
    Path out;

    @Option(names = "--adapters", defaultValue = "4", description = "number of adapters (default: ${DEFAULT-VALUE})")
    int adapters;

    @Option(names = "--rank", defaultValue = "8", description = "LoRA rank r (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--shape", defaultValue = "tiny", description = "base model shape: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})",
            completionCandidates = ShapeNames.class)
    String shape;

    @Option(names = "--targets", split = ",", description = "short module names to target (default: all of the shape)")
    List<String> targets;

    @Option(names = "--seed", defaultValue = "1", description = "seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dtype", defaultValue = "f32", description = "f32 | f16 | bf16 (default: ${DEFAULT-VALUE})")
    String dtype;

    @Override
    public Integer call() throws Exception {
        long t0 = System.nanoTime();
        List<Path> dirs = SyntheticAdapters.generate(out, adapters, rank, BaseModelShape.byName(shape), seed,
                DType.fromUserName(dtype), targets);
        spec.commandLine().getOut().printf(Locale.ROOT, "wrote %d %s adapter(s) of rank %d (%s) to %s in %.1f s%n",
                dirs.size(), shape, rank, dtype, out, (System.nanoTime() - t0) / 1e9);
        spec.commandLine().getOut().flush();
        return 0;
    }

    /** Completion candidates: the known base model shapes. */
    static final class ShapeNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return BaseModelShape.names().iterator();
        }
    }
}
