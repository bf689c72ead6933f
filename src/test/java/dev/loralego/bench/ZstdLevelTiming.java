package dev.loralego.bench;

import com.github.luben.zstd.Zstd;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Plain timing of zstd levels on tensor bytes (why producers compress at level 1): 16 MiB of a BF16 safetensors
 * file, and the same values widened to F32 with random low mantissa bytes (what merged layers in F32 look like);
 * ratio, and the best of 5 compressions and decompressions at levels 1 and 3 (Kafka's default).
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.bench.ZstdLevelTiming ADAPTER.safetensors
 * </pre>
 */
public final class ZstdLevelTiming {

    private ZstdLevelTiming() {
    }

    /** @param args a BF16 safetensors file of at least 17 MiB */
    public static void main(String[] args) throws Exception {
        byte[] all = Files.readAllBytes(Path.of(args[0]));
        byte[] bf16 = Arrays.copyOfRange(all, 1 << 20, (1 << 20) + (16 << 20));
        SplittableRandom rng = new SplittableRandom(1);
        byte[] f32 = new byte[2 * bf16.length];
        for (int i = 0; i < bf16.length / 2; i++) {
            f32[4 * i + 3] = bf16[2 * i + 1];
            f32[4 * i + 2] = bf16[2 * i];
            f32[4 * i + 1] = (byte) rng.nextInt();
            f32[4 * i] = (byte) rng.nextInt();
        }
        for (byte[] payload : new byte[][]{bf16, f32}) {
            for (int level : new int[]{1, 3}) {
                long bestC = Long.MAX_VALUE, bestD = Long.MAX_VALUE;
                byte[] packed = null;
                for (int rep = 0; rep < 5; rep++) {
                    long t = System.nanoTime();
                    packed = Zstd.compress(payload, level);
                    bestC = Math.min(bestC, System.nanoTime() - t);
                }
                for (int rep = 0; rep < 5; rep++) {
                    long t = System.nanoTime();
                    Zstd.decompress(packed, payload.length);
                    bestD = Math.min(bestD, System.nanoTime() - t);
                }
                System.out.printf(Locale.ROOT, "%s level %d: ratio %.3f, compress %.0f MB/s, decompress %.0f MB/s%n",
                        payload == bf16 ? "bf16" : "f32", level, (double) payload.length / packed.length,
                        payload.length / 1e6 / (bestC / 1e9), payload.length / 1e6 / (bestD / 1e9));
            }
        }
    }
}
