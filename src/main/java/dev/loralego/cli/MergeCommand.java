package dev.loralego.cli;

import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;
import dev.loralego.merge.AdapterMerge;
import dev.loralego.merge.MergeSpec;
import dev.loralego.peft.DType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code merge}: the offline batch merge of PEFT adapter directories (no Kafka). The summary goes to the command
 * line's {@code out}, progress and errors to its {@code err}, so callers and tests can redirect both. An unknown
 * {@code --method} or {@code --dtype} is a usage error (exit code 2, message listing the valid names), rejected
 * before any adapter is read.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Merges PEFT LoRA adapters into one PEFT adapter.",
                "With --method lego the merged rank is chosen per module by default (--k auto); --k 16 fixes it.",
                "Example: merge --method lego --out merged/ adapters/a adapters/b adapters/c"})
public final class MergeCommand implements Callable<Integer> {

    @Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--method", defaultValue = "lego", converter = MethodConverter.class,
            description = "lego | cat | linear | svd | ties | dare | task_arithmetic (default: ${DEFAULT-VALUE})")
    MergeMethod method;

    @Mixin
    LegoOptionsMixin lego;

    @Option(names = "--density", defaultValue = "0",
            description = "ties: share of entries kept (default 0.2); dare: keep probability (default 0.5)")
    double density;

    @Option(names = "--lambda", defaultValue = "1", description = "scale of ties and task_arithmetic (default: ${DEFAULT-VALUE})")
    double lambda;

    @Option(names = "--weights", split = ",", description = "merge weights w1,w2,... one per adapter (default: all 1)")
    double[] weights;

    @Option(names = "--dtype", converter = DTypeConverter.class,
            description = "f32 | f16 | bf16 (or f64) for the written tensors (default: the inputs' dtype)")
    DType dtype;

    @Option(names = "--threads", description = "worker threads over modules (default: available cores); results do not depend on it")
    Integer threads;

    @Option(names = "--out", required = true, description = "output directory (a PEFT adapter)")
    Path out;

    @Parameters(arity = "1..*", paramLabel = "ADAPTER_DIR", description = "PEFT adapter directories")
    List<Path> adapters;

    @Override
    public Integer call() throws Exception {
        // --k auto is the batch merge's default for lego (docs/results/quality.md); baselines default to max rank
        if (method != MergeMethod.LEGO && !lego.kPerModule.isEmpty()) {
            throw new IllegalArgumentException("--k-module is defined for --method lego only; the baselines take one --k");
        }
        BaselineOptions baseline = new BaselineOptions(method == MergeMethod.LEGO ? 0 : lego.baselineK(), density, lambda, lego.seed);
        MergeSpec mergeSpec = new MergeSpec(method, lego.toOptions(LegoOptions.K_AUTO), baseline);
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        ProgressBar bar = new ProgressBar(spec.commandLine().getErr(), "merging");
        long t0 = System.nanoTime();
        AdapterMerge.Result result = new AdapterMerge(mergeSpec, n).mergeTo(adapters, weights, dtype, out,
                (module, done, total) -> bar.update(done, total, module));
        double secs = (System.nanoTime() - t0) / 1e9;
        printSummary(spec.commandLine().getOut(), mergeSpec, result, secs);
        return 0;
    }

    private void printSummary(PrintWriter o, MergeSpec mergeSpec, AdapterMerge.Result result, double secs) {
        o.printf(Locale.ROOT, "merged %d adapter(s) with %s into %s%n", adapters.size(), mergeSpec.method().cliName(), out);
        o.printf(Locale.ROOT, "  options: %s%n", mergeSpec.describe());
        o.printf(Locale.ROOT, "  modules: %d, merged ranks: %s%n", result.modules().size(), result.rankHistogram());
        double inertia = result.meanInertia();
        if (!Double.isNaN(inertia)) {
            int iters = result.modules().values().stream().mapToInt(MergedModule::iterations).max().orElse(0);
            o.printf(Locale.ROOT, "  mean k-means inertia: %.6g (max Lloyd iterations %d)%n", inertia, iters);
        }
        if (!result.skippedExtra().isEmpty()) {
            o.printf(Locale.ROOT, "  left out %d non-LoRA tensor(s): %s%n", result.skippedExtra().size(), result.skippedExtra());
        }
        o.printf(Locale.ROOT, "  time: %.2f s%n", secs);
        o.flush();
    }

    /** {@code --method}: {@link MergeMethod#parse}, its message (listing the methods) as a usage error. */
    static final class MethodConverter implements CommandLine.ITypeConverter<MergeMethod> {
        @Override
        public MergeMethod convert(String value) {
            try {
                return MergeMethod.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** {@code --dtype}: {@link DType#fromUserName}, its message (listing the dtypes) as a usage error. */
    static final class DTypeConverter implements CommandLine.ITypeConverter<DType> {
        @Override
        public DType convert(String value) {
            try {
                return DType.fromUserName(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
