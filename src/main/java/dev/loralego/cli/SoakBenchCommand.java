package dev.loralego.cli;

import dev.loralego.bench.SoakBenchmark;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.ParameterReweighting;
import dev.loralego.stream.MergeParameters;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code bench soak}: many tiny adapters across many groups with random withdrawals, checked at the end. */
@Command(name = "soak", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Soak test: many tiny adapters across many groups, with random withdrawals, into a service.",
                "Publishes them into a service on an embedded broker; checks every group's final version against the"
                + " offline merge bit for bit and reports throughput, latency and the heap curve.",
                "Example: bench soak --groups 20 --adapters 2000 --withdraw-rate 0.1"})
public final class SoakBenchCommand implements Callable<Integer> {
    @Option(names = "--groups", defaultValue = "20", description = "merge groups (default: ${DEFAULT-VALUE})")
    int groups;

    @Option(names = "--adapters", defaultValue = "2000", description = "adapters published in all (default: ${DEFAULT-VALUE})")
    int adapters;

    @Option(names = "--withdraw-rate", defaultValue = "0.1", description = "chance of a withdrawal after each publish (default: ${DEFAULT-VALUE})")
    double withdrawRate;

    @Option(names = "--rank", defaultValue = "4", description = "rank of the tiny adapters (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--k", defaultValue = "4", description = "merged rank (default: ${DEFAULT-VALUE})")
    int k;

    @Option(names = "--seed", defaultValue = "7", description = "seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dir", defaultValue = "lora-lego-soak", description = "working directory, recreated; an existing one must be empty or made by lora-lego (default: ${DEFAULT-VALUE})")
    Path dir;

    @Override
    public Integer call() throws Exception {
        org.apache.logging.log4j.core.config.Configurator.setLevel("dev.loralego", org.apache.logging.log4j.Level.WARN);
        MergeParameters params = new MergeParameters(new LegoOptions(k, Map.of(), seed, 4, 300, CanonicalForm.SVD, FeatureNorm.NONE,
                ParameterReweighting.L2, true), 1, "recluster", 1.0, "F32", 256);
        SoakBenchmark.Result r = SoakBenchmark.run(new SoakBenchmark.Setup(groups, adapters, withdrawRate, rank, params, dir, seed), System.out);
        System.out.println(r.summary());
        System.out.print(r.heapCurve());
        return r.mismatchedGroups().isEmpty() ? 0 : 1;
    }
}
