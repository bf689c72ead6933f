package dev.loralego.bench.jmh;

import dev.loralego.lego.LegoOptions;
import dev.loralego.merge.AdapterMerge;
import dev.loralego.merge.MergeSpec;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.SyntheticAdapters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code merge} end to end, the {@code llama-7b} case of the merge-core issue: 8 synthetic {@code llama-7b}
 * rank-16 BF16 adapters (224 modules, 640 MB; written once by {@link SyntheticAdapters} under
 * {@code target/jmh-data}), LoRA-LEGO with {@code --k 16}, read, merge and write, as
 * {@code merge --method lego --k 16 --threads T}. Single-shot: one operation is one whole merge.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class MergeEndToEndBenchmark {

    @Param("2")
    public int threads;
    @Param("16")
    public int k;

    private List<Path> adapters;
    private Path out;

    @Setup
    public void setup() throws IOException {
        Path dir = Path.of("target", "jmh-data", "llama7b-r16-bf16");
        adapters = new ArrayList<>();
        for (int i = 0; i < 8; i++) adapters.add(dir.resolve(SyntheticAdapters.adapterDirName(i, 8)));
        boolean present = adapters.stream().allMatch(d -> Files.exists(d.resolve("adapter_model.safetensors")));
        if (!present) SyntheticAdapters.generate(dir, 8, 16, BaseModelShape.byName("llama-7b"), 1L, DType.BF16);
        out = Path.of("target", "jmh-data", "llama7b-merged");
    }

    @Benchmark
    public int merge() throws IOException {
        MergeSpec spec = MergeSpec.lego(LegoOptions.defaults().withK(k));
        return new AdapterMerge(spec, threads).mergeTo(adapters, null, null, out, null).modules().size();
    }
}
