package dev.loralego.cli;

import dev.loralego.bench.QualityBenchmark;
import dev.loralego.bench.QualityConfig;
import dev.loralego.bench.QualityPlots;
import dev.loralego.bench.QualityReport;
import dev.loralego.bench.QualityResults;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code bench}: the benchmarks behind {@code docs/results/} (no Kafka). */
@Command(name = "bench", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Benchmarks: merge quality (quality), service speed (stream, soak), JMH results to Markdown (perf-report).",
        subcommands = {BenchCommand.Quality.class, BenchCommand.PerfReport.class, StreamBenchCommand.class, SoakBenchCommand.class,
                CommandLine.HelpCommand.class})
public final class BenchCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** {@code bench quality}: trains task LoRAs, merges them with every method, writes tables and plots. */
    @Command(name = "quality", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
            description = {"Trains one LoRA per synthetic task, merges them with every method and option, and writes "
                    + "quality.md and PNG figures (deterministic from the seeds).",
                    "Example: bench quality --out docs/results"})
    public static final class Quality implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--quick", description = "smaller world (d = 64, 8 tasks, 2 seeds): seconds instead of about 2 minutes")
        boolean quick;

        @Option(names = "--seeds", split = ",", paramLabel = "SEED", description = "benchmark seeds (default: 1,2,3,4,5; quick: 1,2)")
        List<Long> seeds;

        @Option(names = "--threads", description = "worker threads over seeds (default: available cores); results do not depend on it")
        Integer threads;

        @Option(names = "--out", defaultValue = "docs/results", description = "where quality.md and the PNGs go (default: ${DEFAULT-VALUE})")
        Path out;

        @Option(names = "--work", defaultValue = "target/bench-quality",
                description = "where the trained adapters are written as PEFT directories (default: ${DEFAULT-VALUE})")
        Path work;

        @Override
        public Integer call() throws Exception {
            int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            QualityConfig cfg = quick ? QualityConfig.quick(work, n) : QualityConfig.full(work, n);
            if (seeds != null && !seeds.isEmpty()) {
                cfg = new QualityConfig(cfg.world(), cfg.training(), cfg.trainSamples(), cfg.valSamples(), cfg.testSamples(),
                        seeds, cfg.kMultiples(), cfg.autoShares(), cfg.adapterCounts(), cfg.ablationK(), cfg.nInit(),
                        cfg.threads(), cfg.workDir());
            }
            ProgressBar bar = new ProgressBar(System.err, "seeds");
            long t0 = System.nanoTime();
            QualityResults results = QualityBenchmark.run(cfg, (seed, done, total) -> bar.update(done, total, "seed " + seed));
            Files.createDirectories(out);
            Path md = out.resolve("quality.md");
            Files.writeString(md, QualityReport.markdown(results, commandLine(spec)), StandardCharsets.UTF_8);
            List<Path> figures = QualityPlots.write(results, out);
            System.out.printf(Locale.ROOT, "wrote %s and %d figure(s) in %.1f s; adapters under %s%n", md, figures.size(),
                    (System.nanoTime() - t0) / 1e9, work);
            return 0;
        }
    }

    /** {@code bench perf-report}: JMH JSON results into perf.md (with the machine). */
    @Command(name = "perf-report", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
            description = {"Turns JMH JSON results (-rf json) into perf.md with GFLOP/s and GB/s beside the machine's "
                    + "measured limits.",
                    "Example: bench perf-report --jmh target/jmh.json --machine target/machine.txt --out docs/results"})
    public static final class PerfReport implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--jmh", required = true, arity = "1..*", description = "JMH result files (JSON); later files add rows")
        List<Path> jmh;

        @Option(names = "--machine", description = "text describing the machine (e.g. lscpu | head -20; java -version)")
        Path machine;

        @Option(names = "--out", defaultValue = "docs/results", description = "where perf.md goes (default: ${DEFAULT-VALUE})")
        Path out;

        @Override
        public Integer call() throws Exception {
            String machineText = machine == null ? null : Files.readString(machine, StandardCharsets.UTF_8);
            Files.createDirectories(out);
            Path md = out.resolve("perf.md");
            Files.writeString(md, dev.loralego.bench.PerfReport.markdown(jmh, machineText, commandLine(spec)),
                    StandardCharsets.UTF_8);
            System.out.printf(Locale.ROOT, "wrote %s%n", md);
            return 0;
        }
    }

    /** The command as typed after the jar: {@code bench quality --out ...}. */
    static String commandLine(CommandLine.Model.CommandSpec spec) {
        List<String> args = new ArrayList<>(spec.commandLine().getParseResult().originalArgs());
        CommandLine c = spec.commandLine();
        List<String> names = new ArrayList<>();
        while (c != null && c.getParent() != null) {
            names.add(0, c.getCommandName());
            c = c.getParent();
        }
        // originalArgs of a subcommand are those of the whole line; keep them as given
        String line = String.join(" ", args);
        return "java -jar target/lora-lego.jar " + (line.isEmpty() ? String.join(" ", names) : line);
    }
}
