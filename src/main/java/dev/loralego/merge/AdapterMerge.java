package dev.loralego.merge;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.MergedAdapterSpec;
import dev.loralego.peft.ModuleFactors;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.PeftAdapterWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The offline merge: PEFT adapter directories in, one merged PEFT adapter directory out. Reads each module
 * of every adapter from memory-mapped files only when that module is merged, so the heap holds one
 * module's inputs per worker plus the merged result.
 *
 * <p>Decisions (documented in the README): all inputs must name the same base model and agree on
 * {@code fan_in_fan_out}; non-LoRA tensors ({@code modules_to_save} heads such as {@code score.weight})
 * are left out with a warning, since heads of different tasks cannot be averaged meaningfully.
 */
public final class AdapterMerge {
    private static final Logger LOG = LoggerFactory.getLogger(AdapterMerge.class);

    /** Receives progress (called from worker threads; may be null). */
    public interface Progress {
        void moduleDone(String module, int done, int total);
    }

    /**
     * What the merge produced.
     *
     * @param modules      merged modules by name
     * @param skippedExtra non-LoRA tensors left out
     * @param baseModel    the common base model
     */
    public record Result(SortedMap<String, MergedModule> modules, List<String> skippedExtra, String baseModel) {
        /** Mean k-means inertia over the modules that clustered (NaN when none did). */
        public double meanInertia() {
            return modules.values().stream().mapToDouble(MergedModule::inertia).filter(d -> !Double.isNaN(d)).average().orElse(Double.NaN);
        }

        /** Distinct merged ranks and how many modules have each. */
        public SortedMap<Integer, Integer> rankHistogram() {
            TreeMap<Integer, Integer> h = new TreeMap<>();
            modules.values().forEach(m -> h.merge(m.rank(), 1, Integer::sum));
            return h;
        }
    }

    private final MergeSpec method;
    private final int threads;

    /**
     * @param method  the merge method and its options
     * @param threads worker threads over modules (results do not depend on it)
     */
    public AdapterMerge(MergeSpec method, int threads) {
        this.method = Objects.requireNonNull(method, "method");
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1");
        this.threads = threads;
    }

    /**
     * Merges {@code adapterDirs} and writes the result to {@code outDir}.
     *
     * @param weights merge weights, one per adapter, or null for all equal
     * @param dtype   dtype of the written tensors, or null for the inputs' (most common) dtype
     * @throws IllegalArgumentException when {@code outDir} is one of the input directories (the merge would
     *                                  replace that adapter's files)
     */
    public Result mergeTo(List<Path> adapterDirs, double[] weights, DType dtype, Path outDir, Progress progress)
            throws IOException {
        Objects.requireNonNull(outDir, "outDir");
        for (Path dir : adapterDirs) {
            if (Files.exists(outDir) && Files.exists(dir) && Files.isSameFile(outDir, dir)) {
                throw new IllegalArgumentException("output directory " + outDir + " is the input adapter " + dir
                        + "; writing there would replace it, choose another output directory");
            }
        }
        List<PeftAdapter> adapters = new ArrayList<>();
        try {
            for (Path dir : adapterDirs) adapters.add(PeftAdapter.open(dir));
            Result result = merge(adapters, weights, progress);
            DType outType = dtype != null ? dtype : dominantDType(adapters);
            TreeMap<String, ModuleFactors> factors = new TreeMap<>();
            result.modules().forEach((name, m) -> factors.put(name,
                    new ModuleFactors(m.rank(), m.dIn(), m.dOut(), m.a(), m.b())));
            PeftAdapter first = adapters.get(0);
            String taskType = MergedAdapterSpec.taskTypeOf(adapters.stream().map(a -> a.config().taskType()).toList());
            PeftAdapterWriter.write(outDir, new MergedAdapterSpec(result.baseModel(), taskType,
                    first.config().fanInFanOut(), outType, factors, null));
            return result;
        } finally {
            for (PeftAdapter a : adapters) a.close();
        }
    }

    /** Merges already opened adapters (not closed here). */
    public Result merge(List<PeftAdapter> adapters, double[] weights, Progress progress) throws IOException {
        if (adapters.isEmpty()) throw new IllegalArgumentException("no adapter to merge");
        int n = adapters.size();
        double[] w = weights == null ? filled(n, 1.0) : weights.clone();
        if (w.length != n) throw new IllegalArgumentException(w.length + " weights given for " + n + " adapters");
        for (double x : w) {
            if (!(x > 0) || !Double.isFinite(x)) throw new IllegalArgumentException("weights must be finite and > 0, got " + x);
        }
        w = method.adapterWeights(w);
        String baseModel = commonBaseModel(adapters);
        boolean fifo = adapters.get(0).config().fanInFanOut();
        for (PeftAdapter a : adapters) {
            if (a.config().fanInFanOut() != fifo) {
                throw new IllegalArgumentException("adapters disagree on fan_in_fan_out: " + adapters.get(0).directory()
                        + " has " + fifo + ", " + a.directory() + " has " + a.config().fanInFanOut());
            }
        }
        List<String> skipped = new ArrayList<>();
        for (PeftAdapter a : adapters) {
            for (String extra : a.extraTensors().keySet()) {
                skipped.add(a.directory().getFileName() + ":" + extra);
            }
        }
        if (!skipped.isEmpty()) {
            LOG.warn("left out {} non-LoRA tensor(s) (modules_to_save heads are not merged): {}", skipped.size(), skipped);
        }
        TreeSet<String> moduleNames = new TreeSet<>();
        for (PeftAdapter a : adapters) moduleNames.addAll(a.modules().keySet());
        if (method.method() == MergeMethod.LEGO) {
            for (String named : new TreeSet<>(method.lego().kPerModule().keySet())) {
                if (!moduleNames.contains(named)) {
                    throw new IllegalArgumentException("--k-module names '" + named + "', which no input adapter targets"
                            + " (full module names, e.g. '" + moduleNames.first() + "')");
                }
            }
        }
        int total = moduleNames.size();
        AtomicInteger done = new AtomicInteger();
        final double[] finalW = w;
        TreeMap<String, MergedModule> merged = new TreeMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, Math.max(1, total)), r -> {
            Thread t = new Thread(r, "merge-worker");
            t.setDaemon(true);
            return t;
        });
        try {
            Map<String, Future<MergedModule>> futures = new TreeMap<>();
            for (String module : moduleNames) {
                futures.put(module, pool.submit(() -> {
                    MergedModule m = method.mergeModule(module, inputsOf(adapters, module, finalW));
                    int d = done.incrementAndGet();
                    if (progress != null) progress.moduleDone(module, d, total);
                    return m;
                }));
            }
            for (Map.Entry<String, Future<MergedModule>> e : futures.entrySet()) {
                merged.put(e.getKey(), get(e.getKey(), e.getValue()));
            }
        } finally {
            pool.shutdownNow();
        }
        return new Result(merged, skipped, baseModel);
    }

    /** The factors of every adapter that targets {@code module}, in input order. */
    static List<AdapterModule> inputsOf(List<PeftAdapter> adapters, String module, double[] weights) throws IOException {
        List<AdapterModule> inputs = new ArrayList<>();
        for (int t = 0; t < adapters.size(); t++) {
            PeftAdapter a = adapters.get(t);
            LoraModuleInfo info = a.modules().get(module);
            if (info == null) continue;
            inputs.add(new AdapterModule(adapterId(a, t), weights[t], info.scaling(), info.rank(), info.dIn(), info.dOut(),
                    a.readA(module), a.readB(module)));
        }
        AdapterModule first = inputs.get(0);
        for (AdapterModule m : inputs) {
            if (m.dIn() != first.dIn() || m.dOut() != first.dOut()) {
                throw new IllegalArgumentException("module " + module + " is " + first.dIn() + "->" + first.dOut() + " in "
                        + first.adapterId() + " but " + m.dIn() + "->" + m.dOut() + " in " + m.adapterId());
            }
        }
        return inputs;
    }

    private static String adapterId(PeftAdapter a, int index) {
        return String.format("%03d:%s", index, a.directory().getFileName());
    }

    private static String commonBaseModel(List<PeftAdapter> adapters) {
        String base = adapters.get(0).config().baseModel();
        for (PeftAdapter a : adapters) {
            if (!Objects.equals(base, a.config().baseModel())) {
                throw new IllegalArgumentException("adapters are for different base models: '" + base + "' ("
                        + adapters.get(0).directory() + ") and '" + a.config().baseModel() + "' (" + a.directory() + ")");
            }
        }
        return base;
    }

    private static DType dominantDType(List<PeftAdapter> adapters) {
        List<DType> dtypes = new ArrayList<>();
        for (PeftAdapter a : adapters) dtypes.add(a.dominantDType());
        return MergedAdapterSpec.dtypeOf(dtypes);
    }

    static MergedModule get(String module, Future<MergedModule> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while merging " + module, e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) throw io;
            if (c instanceof RuntimeException re) throw re;
            // an Error (OutOfMemoryError above all) has no other report: name it
            throw new IOException("merging " + module + " failed: " + c
                    + (c instanceof OutOfMemoryError ? " (raise the heap, e.g. java -Xmx8g, or use fewer --threads)" : ""), c);
        }
    }

    private static double[] filled(int n, double v) {
        double[] d = new double[n];
        java.util.Arrays.fill(d, v);
        return d;
    }
}
