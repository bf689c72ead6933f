package dev.loralego.cli;

import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;
import dev.loralego.merge.AdapterMerge;
import dev.loralego.merge.MergeSpec;
import dev.loralego.peft.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code merge}: the offline batch merge of PEFT adapter directories (no Kafka). */
@Command(name = "merge", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Merges PEFT LoRA adapters into one PEFT adapter.",
                "Example: merge --method lego --out merged/ adapters/a adapters/b adapters/c   (k auto by default; --k 16 fixes it)"})
public final class MergeCommand implements Callable<Integer> {

    @Option(names = "--method", defaultValue = "lego",
            description = "lego | cat | linear | svd | ties | dare | task_arithmetic (default: ${DEFAULT-VALUE})")
    String method;

    @Mixin
    LegoOptionsMixin lego;

    @Option(names = "--density", defaultValue = "0",
            description = "ties: share of entries kept (default 0.2); dare: keep probability (default 0.5)")
    double density;

    @Option(names = "--lambda", defaultValue = "1", description = "scale of ties and task_arithmetic (default: ${DEFAULT-VALUE})")
    double lambda;

    @Option(names = "--weights", split = ",", description = "merge weights w1,w2,... one per adapter (default: all 1)")
    double[] weights;

    @Option(names = "--dtype", description = "f32 | f16 | bf16 for the written tensors (default: the inputs' dtype)")
    String dtype;

    @Option(names = "--threads", description = "worker threads over modules (default: available cores); results do not depend on it")
    Integer threads;

    @Option(names = "--out", required = true, description = "output directory (a PEFT adapter)")
    Path out;

    @Parameters(arity = "1..*", paramLabel = "ADAPTER_DIR", description = "PEFT adapter directories")
    List<Path> adapters;

    @Override
    public Integer call() throws Exception {
        MergeMethod m = MergeMethod.parse(method);
        // --k auto is the batch merge's default for lego (docs/results/quality.md); baselines default to max rank
        BaselineOptions baseline = new BaselineOptions(m == MergeMethod.LEGO ? 0 : lego.baselineK(), density, lambda, lego.seed);
        MergeSpec spec = new MergeSpec(m, lego.toOptions(LegoOptions.K_AUTO), baseline);
        DType outType = dtype == null ? null : DType.fromUserName(dtype);
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        ProgressBar bar = new ProgressBar(System.err, "merging");
        long t0 = System.nanoTime();
        AdapterMerge.Result result = new AdapterMerge(spec, n).mergeTo(adapters, weights, outType, out,
                (module, done, total) -> bar.update(done, total, module));
        double secs = (System.nanoTime() - t0) / 1e9;
        printSummary(spec, result, secs);
        return 0;
    }

    private void printSummary(MergeSpec spec, AdapterMerge.Result result, double secs) {
        System.out.printf(Locale.ROOT, "merged %d adapter(s) with %s into %s%n", adapters.size(), spec.method().cliName(), out);
        System.out.printf(Locale.ROOT, "  options: %s%n", spec.describe());
        System.out.printf(Locale.ROOT, "  modules: %d, merged ranks: %s%n", result.modules().size(), result.rankHistogram());
        double inertia = result.meanInertia();
        if (!Double.isNaN(inertia)) {
            int iters = result.modules().values().stream().mapToInt(MergedModule::iterations).max().orElse(0);
            System.out.printf(Locale.ROOT, "  mean k-means inertia: %.6g (max Lloyd iterations %d)%n", inertia, iters);
        }
        if (!result.skippedExtra().isEmpty()) {
            System.out.printf(Locale.ROOT, "  left out %d non-LoRA tensor(s): %s%n", result.skippedExtra().size(), result.skippedExtra());
        }
        System.out.printf(Locale.ROOT, "  time: %.2f s%n", secs);
    }
}
