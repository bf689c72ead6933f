package dev.loralego.cli;

import dev.loralego.bench.StreamingBenchmark;
import dev.loralego.peft.DType;
import dev.loralego.stream.ClientSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code bench stream}: latency and throughput of the service on the embedded broker. */
@Command(name = "stream", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Service speed: N synthetic adapters published back to back to a service on an embedded broker.",
                "Reports per-version latency (p50/p95/max), throughput and peak heap.",
                "Example: bench stream --shape llama-7b --adapters 20 --rank 16 --dtype bf16 --k 16"})
public final class StreamBenchCommand implements Callable<Integer> {
    @Option(names = "--shape", defaultValue = "tiny", description = "base model shape (default: ${DEFAULT-VALUE})")
    String shape;

    @Option(names = "--adapters", defaultValue = "50", description = "adapters published (default: ${DEFAULT-VALUE})")
    int adapters;

    @Option(names = "--rank", defaultValue = "8", description = "rank (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--dtype", defaultValue = "bf16", description = "dtype of the adapters (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--dir", defaultValue = "lora-lego-bench", description = "working directory, recreated; an existing one must be empty or made by lora-lego (default: ${DEFAULT-VALUE})")
    Path dir;

    @Option(names = "--partitions", defaultValue = "4", description = "partitions of the service's topics (default: ${DEFAULT-VALUE}, as `run`)")
    int partitions;

    @Option(names = "--threads", defaultValue = "0", description = "stream threads of the service; 0 = one per core, at most --partitions (default: ${DEFAULT-VALUE}, as `run`)")
    int threads;

    @Option(names = "--warmup", defaultValue = "0", description = "adapters published to another group first, merged and withdrawn before the measured run, "
            + "so that the JIT has compiled the hot paths as in a service that has been running; 0 = a cold JVM (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--interval", defaultValue = "0", paramLabel = "SECONDS",
            description = "seconds between the starts of successive publishes (a fixed schedule); 0 = back to back, the"
                    + " issue's case (default: ${DEFAULT-VALUE}). At a rate the service sustains, the latency has no queue in it")
    double interval;

    @Option(names = "--config", description = "service settings file, as for `run --config` (Kafka Streams and client settings, lora.group.<g>.<option>)")
    Path configFile;

    @Mixin
    ServiceOptionsMixin options;

    @Override
    public Integer call() throws Exception {
        org.apache.logging.log4j.core.config.Configurator.setLevel("dev.loralego", org.apache.logging.log4j.Level.WARN);
        StreamingBenchmark.Result r = StreamingBenchmark.run(new StreamingBenchmark.Setup(shape, adapters, rank,
                DType.fromUserName(dtype), options.toParameters(), dir, partitions, RunCommand.streamThreads(threads, partitions), warmup,
                ClientSettings.load(configFile), interval), System.out);
        System.out.println(r.summary());
        return 0;
    }
}
