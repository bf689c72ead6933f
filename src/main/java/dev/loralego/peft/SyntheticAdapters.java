package dev.loralego.peft;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Generates realistic synthetic PEFT LoRA adapters for tests, demos and benchmarks: real module names and
 * shapes of a {@link BaseModelShape}, a complete PEFT config, and factor values with the statistics of trained
 * LoRAs and the structure rank-wise clustering looks for.
 *
 * <p>Values. For each module there is a pool of {@code 2r} shared "skill" directions
 * {@code (u_s ∈ R^dIn, v_s ∈ R^dOut)}, {@code u_s ~ N(0, 1/dIn)} per entry and {@code v_s ~ N(0, B_SCALE²)}.
 * Each adapter fills each of its {@code r} rank slots, independently with probability
 * {@value #SHARED_FRACTION}, from a distinct pool skill: {@code A[i,:] = c·u_s + NOISE·N(0, 1/dIn)},
 * {@code B[:,i] = c'·v_s + NOISE·N(0, B_SCALE²)} with a common random sign and magnitudes in [0.5, 1.5);
 * otherwise from private random directions of the same scales. So minimal semantic units (A row, B column) of
 * different adapters partially line up, as in the LoRA-LEGO paper's observations, and A has the scale of a
 * Kaiming-initialised, trained A while B is small (~1e-2) as after fine-tuning from B = 0.
 *
 * <p>Determinism: every value depends only on (seed, adapter index, module name) and the pool on (seed, module
 * name), through {@link SplittableRandom}; bytes are identical across runs and independent of how many adapters
 * are generated together. Memory: adapters are generated together tensor by tensor and streamed to their files,
 * so the heap holds one module's factors per adapter (a llama-7b down_proj at r = 16 is ~1 MB per adapter).
 */
public final class SyntheticAdapters {

    /** Probability that a rank slot uses a shared skill direction rather than a private one. */
    public static final double SHARED_FRACTION = 0.75;
    /** Relative strength of adapter-specific noise added to a shared direction. */
    public static final double NOISE = 0.3;
    /** Standard deviation of B's entries. */
    public static final double B_SCALE = 1e-2;

    private static final long POOL_TAG = 0x5eed_9001L;
    private static final long ADAPTER_TAG = 0x5eed_ada9L;

    private SyntheticAdapters() {
    }

    /**
     * Writes {@code adapters} adapters targeting every module of {@code shape} into
     * {@code outDir/adapter-00}, {@code adapter-01}, ...
     *
     * @return the adapter directories, in index order
     */
    public static List<Path> generate(Path outDir, int adapters, int rank, BaseModelShape shape, long seed, DType dtype)
            throws IOException {
        return generate(outDir, adapters, rank, shape, seed, dtype, null);
    }

    /**
     * As {@link #generate(Path, int, int, BaseModelShape, long, DType)}, targeting only the modules whose short
     * names are in {@code targets} (e.g. {@code ["q_proj", "v_proj"]}); {@code null} targets all.
     */
    public static List<Path> generate(Path outDir, int adapters, int rank, BaseModelShape shape, long seed, DType dtype,
                                      List<String> targets) throws IOException {
        if (adapters < 1) {
            throw new IllegalArgumentException("number of adapters must be >= 1, got " + adapters);
        }
        if (rank < 1) {
            throw new IllegalArgumentException("rank must be >= 1, got " + rank);
        }
        List<String> shortNames = targets == null ? shape.shortNames() : List.copyOf(targets);
        for (String t : shortNames) {
            if (!shape.shortNames().contains(t)) {
                throw new IllegalArgumentException("target module '" + t + "' is not in shape '" + shape.name()
                        + "' (its modules: " + shape.shortNames() + ")");
            }
        }
        if (shortNames.isEmpty()) {
            throw new IllegalArgumentException("no target modules");
        }
        Map<String, BaseModelShape.ModuleShape> modules = new HashMap<>();
        List<TensorSpec> specs = new ArrayList<>();
        for (BaseModelShape.ModuleShape m : shape.modules()) {
            String shortName = m.module().substring(m.module().lastIndexOf('.') + 1);
            if (!shortNames.contains(shortName)) {
                continue;
            }
            if (Math.max(m.dIn(), m.dOut()) > Integer.MAX_VALUE / rank) {
                throw new IllegalArgumentException("rank " + rank + " too large for module " + m.module());
            }
            modules.put(m.module(), m);
            specs.add(new TensorSpec(PeftAdapterWriter.tensorName(m.module(), "A"), dtype, new long[]{rank, m.dIn()}));
            specs.add(new TensorSpec(PeftAdapterWriter.tensorName(m.module(), "B"), dtype, new long[]{m.dOut(), rank}));
        }

        Files.createDirectories(outDir);
        List<Path> dirs = new ArrayList<>(adapters);
        for (int k = 0; k < adapters; k++) {
            dirs.add(outDir.resolve(adapterDirName(k, adapters)));
        }
        writeWeights(dirs, specs, modules, rank, seed);
        String config = PeftJson.pretty(config(shape, rank, shortNames));
        for (Path d : dirs) {
            PeftJson.writeAtomically(d.resolve(PeftAdapter.CONFIG_FILE), config);
        }
        return dirs;
    }

    /** {@code adapter-00}, {@code adapter-01}, ...: zero-padded to at least two digits, enough for {@code count}. */
    public static String adapterDirName(int index, int count) {
        int width = Math.max(2, Integer.toString(Math.max(0, count - 1)).length());
        return "adapter-" + String.format("%0" + width + "d", index);
    }

    private static void writeWeights(List<Path> dirs, List<TensorSpec> specs, Map<String, BaseModelShape.ModuleShape> modules,
                                     int rank, long seed) throws IOException {
        int n = dirs.size();
        SafetensorsWriter[] writers = new SafetensorsWriter[n];
        IOException failure = null;
        try {
            for (int k = 0; k < n; k++) {
                Files.createDirectories(dirs.get(k));
                writers[k] = SafetensorsWriter.open(dirs.get(k).resolve(PeftAdapter.WEIGHTS_FILE), null, specs);
            }
            // Factors of a module stay here from its first tensor (A, in sorted order) until its B is written.
            Map<String, float[][]> pendingB = new HashMap<>();
            for (TensorSpec t : writers[0].order()) {
                String name = t.name();
                String module = name.substring(PeftAdapter.NAME_PREFIX.length(), name.length() - ".lora_A.weight".length());
                boolean isA = name.endsWith(".lora_A.weight");
                float[][] bs = pendingB.remove(module);
                if (bs == null) {
                    BaseModelShape.ModuleShape m = modules.get(module);
                    float[][] as = new float[n][];
                    bs = new float[n][];
                    generateModule(seed, m, rank, n, as, bs);
                    if (!isA) {
                        throw new IllegalStateException("lora_B of " + module + " sorted before its lora_A");
                    }
                    for (int k = 0; k < n; k++) {
                        writers[k].writeTensor(name, as[k]);
                    }
                    pendingB.put(module, bs);
                } else {
                    for (int k = 0; k < n; k++) {
                        writers[k].writeTensor(name, bs[k]);
                    }
                }
            }
        } catch (IOException e) {
            failure = e;
        } catch (RuntimeException e) {
            failure = new IOException("synthetic adapter generation failed: " + e.getMessage(), e);
        }
        for (SafetensorsWriter w : writers) {
            if (w == null) {
                continue;
            }
            try {
                w.close();
            } catch (IOException | RuntimeException e) {
                if (failure == null) {
                    failure = e instanceof IOException io ? io : new IOException(e.getMessage(), e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Fills {@code as[k]} ({@code r × dIn}) and {@code bs[k]} ({@code dOut × r}, row-major) for adapters {@code 0..n-1}. */
    static void generateModule(long seed, BaseModelShape.ModuleShape m, int rank, int n, float[][] as, float[][] bs) {
        int dIn = m.dIn();
        int dOut = m.dOut();
        int pool = 2 * rank;
        double aScale = 1.0 / Math.sqrt(dIn);
        // Shared skill pool of this module: u_s rows (pool × dIn), v_s rows (pool × dOut).
        SplittableRandom poolRng = new SplittableRandom(seedFor(seed, POOL_TAG, 0, m.module()));
        float[] u = gaussians(poolRng, pool * dIn, aScale);
        float[] v = gaussians(poolRng, pool * dOut, B_SCALE);
        int[] order = new int[pool];
        for (int k = 0; k < n; k++) {
            SplittableRandom rng = new SplittableRandom(seedFor(seed, ADAPTER_TAG, k, m.module()));
            float[] a = new float[rank * dIn];
            float[] b = new float[dOut * rank];
            for (int s = 0; s < pool; s++) {
                order[s] = s;
            }
            int used = 0;
            for (int i = 0; i < rank; i++) {
                boolean shared = rng.nextDouble() < SHARED_FRACTION;
                if (shared) {
                    // distinct skills within one adapter: partial Fisher-Yates over the pool
                    int j = used + rng.nextInt(pool - used);
                    int s = order[j];
                    order[j] = order[used];
                    order[used] = s;
                    used++;
                    double sign = rng.nextBoolean() ? 1 : -1;
                    double ca = sign * (0.5 + rng.nextDouble());
                    double cb = sign * (0.5 + rng.nextDouble());
                    int ua = s * dIn;
                    for (int c = 0; c < dIn; c++) {
                        a[i * dIn + c] = (float) (ca * u[ua + c] + NOISE * aScale * rng.nextGaussian());
                    }
                    int vb = s * dOut;
                    for (int o = 0; o < dOut; o++) {
                        b[o * rank + i] = (float) (cb * v[vb + o] + NOISE * B_SCALE * rng.nextGaussian());
                    }
                } else {
                    for (int c = 0; c < dIn; c++) {
                        a[i * dIn + c] = (float) (aScale * rng.nextGaussian());
                    }
                    for (int o = 0; o < dOut; o++) {
                        b[o * rank + i] = (float) (B_SCALE * rng.nextGaussian());
                    }
                }
            }
            as[k] = a;
            bs[k] = b;
        }
    }

    private static float[] gaussians(SplittableRandom rng, int count, double scale) {
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = (float) (scale * rng.nextGaussian());
        }
        return out;
    }

    /** A seed from the user seed, a purpose tag, the adapter index and the module name (SplitMix64 finaliser). */
    static long seedFor(long seed, long tag, int adapter, String module) {
        long z = mix(seed ^ tag);
        z = mix(z + adapter);
        return mix(z + module.hashCode());
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** A complete PEFT LoRA config as PEFT writes it (keys sorted), {@code lora_alpha = 2r}. */
    static ObjectNode config(BaseModelShape shape, int rank, List<String> shortNames) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode c = f.objectNode();
        c.putObject("alpha_pattern");
        c.putNull("auto_mapping");
        c.put("base_model_name_or_path", shape.baseModelName());
        c.put("bias", "none");
        c.put("fan_in_fan_out", shape.fanInFanOut());
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.putNull("layer_replication");
        c.putNull("layers_pattern");
        c.putNull("layers_to_transform");
        c.putObject("loftq_config");
        c.put("lora_alpha", 2 * rank);
        c.put("lora_dropout", 0.05);
        c.putNull("megatron_config");
        c.put("megatron_core", "megatron.core");
        c.putNull("modules_to_save");
        c.put("peft_type", "LORA");
        c.put("r", rank);
        c.putObject("rank_pattern");
        c.putNull("revision");
        ArrayNode targets = c.putArray("target_modules");
        new TreeSet<>(shortNames).forEach(targets::add);
        c.put("task_type", "CAUSAL_LM");
        c.put("use_dora", false);
        c.put("use_rslora", false);
        return c;
    }
}
