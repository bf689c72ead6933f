package dev.loralego.bench.jmh;

import dev.loralego.peft.DType;
import dev.loralego.peft.DTypeCodec;
import dev.loralego.peft.SafetensorsFile;
import dev.loralego.peft.SafetensorsWriter;
import dev.loralego.peft.TensorSpec;
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
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Reading safetensors: a {@code fileMiB} file of {@code tensors} equal BF16 (or F16) tensors, read tensor by tensor
 * into a reused {@code float[]} through {@link SafetensorsFile#readFloats(String, long, float[], int, int)} (memory
 * map, copy, {@link DTypeCodec} conversion), beside a raw {@link FileChannel} read of the same file into a direct
 * buffer, and the conversion alone on a {@code chunkMiB} in-memory block. The files are written once under
 * {@code target/jmh-data} and stay in the page cache after the warm-up, so this measures the library, not the disk.
 * Work per operation: the file's bytes (reads) or the block's source bytes (conversions).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g"})
public class SafetensorsBenchmark {

    @Param("1024")
    public int fileMiB;
    @Param("64")
    public int tensors;
    @Param("16")
    public int chunkMiB;

    private Path bf16, f16;
    private float[] buffer;
    private ByteBuffer direct;
    private byte[] bf16Chunk, f16Chunk;
    private float[] chunkOut;

    @Setup
    public void setup() throws IOException {
        Path dir = Path.of("target", "jmh-data");
        Files.createDirectories(dir);
        bf16 = ensure(dir.resolve("bench-bf16-" + fileMiB + "m.safetensors"), DType.BF16);
        f16 = ensure(dir.resolve("bench-f16-" + fileMiB + "m.safetensors"), DType.F16);
        buffer = new float[elementsPerTensor()];
        direct = ByteBuffer.allocateDirect(16 << 20);
        int chunkElems = (chunkMiB << 20) / 2;
        float[] values = values(chunkElems, 3);
        bf16Chunk = new byte[chunkElems * 2];
        f16Chunk = new byte[chunkElems * 2];
        DTypeCodec.encode(DType.BF16, values, 0, chunkElems, bf16Chunk, 0);
        DTypeCodec.encode(DType.F16, values, 0, chunkElems, f16Chunk, 0);
        chunkOut = new float[chunkElems];
    }

    private int elementsPerTensor() {
        return (int) (((long) fileMiB << 20) / tensors / 2);
    }

    private static float[] values(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (0.02 * rng.nextGaussian());
        return v;
    }

    /** Writes the file unless one of the expected size is there. */
    private Path ensure(Path file, DType dtype) throws IOException {
        long payload = (long) fileMiB << 20;
        if (Files.exists(file) && Files.size(file) > payload && Files.size(file) < payload + (1 << 20)) return file;
        int per = elementsPerTensor();
        List<TensorSpec> specs = new ArrayList<>();
        for (int t = 0; t < tensors; t++) {
            specs.add(new TensorSpec(String.format("base_model.model.layers.%03d.mlp.lora_A.weight", t), dtype, new long[]{per}));
        }
        float[] block = values(1 << 20, 1);
        try (SafetensorsWriter w = SafetensorsWriter.open(file, null, specs)) {
            for (TensorSpec s : w.order()) {
                for (int done = 0; done < per; done += block.length) {
                    w.writeTensorChunk(s.name(), block, 0, Math.min(block.length, per - done));
                }
            }
        }
        return file;
    }

    @Benchmark
    public long rawRead() throws IOException {
        long total = 0;
        try (FileChannel ch = FileChannel.open(bf16, StandardOpenOption.READ)) {
            while (true) {
                direct.clear();
                int r = ch.read(direct);
                if (r < 0) break;
                total += r;
            }
        }
        return total + direct.get(0);
    }

    @Benchmark
    public float readBf16ToF32() throws IOException {
        return readAll(bf16);
    }

    @Benchmark
    public float readF16ToF32() throws IOException {
        return readAll(f16);
    }

    private float readAll(Path file) throws IOException {
        float sum = 0;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String name : f.tensors().keySet()) {
                f.readFloats(name, 0, buffer, 0, buffer.length);
                sum += buffer[buffer.length - 1];
            }
        }
        return sum;
    }

    @Benchmark
    public float[] convertBf16ToF32() {
        DTypeCodec.decode(DType.BF16, bf16Chunk, 0, chunkOut, 0, chunkOut.length);
        return chunkOut;
    }

    @Benchmark
    public float[] convertF16ToF32() {
        DTypeCodec.decode(DType.F16, f16Chunk, 0, chunkOut, 0, chunkOut.length);
        return chunkOut;
    }
}
