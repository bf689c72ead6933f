package dev.loralego.bench;

import com.fasterxml.jackson.databind.node.IntNode;
import dev.loralego.lego.BaselineOptions;
import dev.loralego.lego.CanonicalForm;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.MergeMethod;
import dev.loralego.lego.MergedModule;
import dev.loralego.lego.ParameterReweighting;
import dev.loralego.merge.AdapterMerge;
import dev.loralego.merge.MergeSpec;
import dev.loralego.peft.AdapterConfig;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.MergedAdapterSpec;
import dev.loralego.peft.ModuleFactors;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.PeftAdapterWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The quality benchmark ({@code bench quality}, GitHub issue 6): does LoRA-LEGO merge trained adapters better than
 * the usual methods, and which of its options matter?
 *
 * <p>For each seed: a {@link SkillWorld}; for every task (training and out-of-domain) training, validation and
 * held-out samples; a LoRA trained per task and {@link InitRegime} ({@link LoraTrainer}); the adapters written as
 * PEFT directories under {@code workDir/seed-S/<regime>/} and read back through {@link PeftAdapter}; every
 * {@link MergeCase} merged through {@link AdapterMerge} exactly as the {@code merge} command does; each merged module
 * scored on every task's held-out samples by the normalised gain
 * {@code (L_base − L_merged) / (L_base − L_own)} ({@link HeldOutLoss}), {@code L_own} the loss of the task's own
 * adapter as read back (PEFT scaling {@code alpha / r}), merged outputs at scaling 1.
 *
 * <p>Seeds run in parallel on {@code threads} workers, every run single-threaded inside, and results are gathered in
 * seed order, so the results do not depend on the number of threads.
 */
public final class QualityBenchmark {

    /** Rank label of the exact methods. */
    static final String EXACT = "Σr (exact)";
    /** λ values of the task-arithmetic rows (λ = 1 is {@code cat}; papers tune λ, commonly 0.3–0.5). */
    static final List<Double> TASK_ARITHMETIC_LAMBDAS = List.of(0.3, 0.5, 1.0);

    /** The adapted module's name in the written PEFT adapters. */
    public static final String MODULE = "model.layers.0.skill_proj";

    /** Receives progress (from worker threads). */
    @FunctionalInterface
    public interface Progress {
        /** Called when all runs of a seed are done. */
        void seedDone(long seed, int done, int total);
    }

    private QualityBenchmark() {
    }

    /** The rows of the report for a configuration, in report order. */
    public static List<MergeCase> cases(QualityConfig cfg) {
        int r = cfg.rank(), n = cfg.world().mergedTasks();
        List<MergeCase> out = new ArrayList<>();
        LegoOptions base = new LegoOptions(0, Map.of(), 42L, cfg.nInit(), 300, CanonicalForm.SVD, FeatureNorm.NONE,
                ParameterReweighting.L2, true);
        out.add(new MergeCase(MergeCase.Section.MAIN, "reference: ideal single update", "distinct skills", n, null));
        for (CanonicalForm c : List.of(CanonicalForm.SVD, CanonicalForm.BALANCED, CanonicalForm.NONE)) {
            for (int m : cfg.kMultiples()) {
                out.add(new MergeCase(MergeCase.Section.MAIN, legoLabel(c), Integer.toString(m * r), n,
                        MergeSpec.lego(base.withCanonical(c).withK(m * r))));
            }
        }
        for (double share : cfg.autoShares()) {
            out.add(new MergeCase(MergeCase.Section.MAIN, legoLabel(CanonicalForm.SVD), autoLabel(share), n,
                    MergeSpec.lego(base.withK(LegoOptions.K_AUTO).withAutoEnergyShare(share))));
        }
        for (MergeMethod method : List.of(MergeMethod.SVD, MergeMethod.TIES, MergeMethod.DARE)) {
            for (int m : cfg.kMultiples()) {
                out.add(new MergeCase(MergeCase.Section.MAIN, method.cliName(), Integer.toString(m * r), n,
                        baseline(method, m * r)));
            }
        }
        for (MergeMethod method : List.of(MergeMethod.LINEAR, MergeMethod.CAT)) {
            out.add(new MergeCase(MergeCase.Section.MAIN, method.cliName(), EXACT, n, baseline(method, 0)));
        }
        for (double lambda : TASK_ARITHMETIC_LAMBDAS) {
            out.add(new MergeCase(MergeCase.Section.MAIN, "task_arithmetic λ=" + trim(lambda), EXACT, n,
                    baseline(MergeMethod.TASK_ARITHMETIC, 0, lambda)));
        }

        int ak = cfg.ablationK() * r;
        String akLabel = Integer.toString(ak);
        LegoOptions abl = base.withK(ak);
        out.add(new MergeCase(MergeCase.Section.ABLATION, "lego defaults (svd, L2, γ on, featureNorm none)", akLabel, n,
                MergeSpec.lego(abl)));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "parameter reweighting off", akLabel, n,
                MergeSpec.lego(abl.withParameterReweighting(ParameterReweighting.OFF))));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "output reweighting (γ) off", akLabel, n,
                MergeSpec.lego(abl.withOutputReweighting(false))));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "both reweightings off", akLabel, n,
                MergeSpec.lego(abl.withParameterReweighting(ParameterReweighting.OFF).withOutputReweighting(false))));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "parameter reweighting L∞ (instead of L2)", akLabel, n,
                MergeSpec.lego(abl.withParameterReweighting(ParameterReweighting.LINF))));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "featureNorm halves (instead of none)", akLabel, n,
                MergeSpec.lego(abl.withFeatureNorm(FeatureNorm.HALVES))));
        out.add(new MergeCase(MergeCase.Section.ABLATION, "featureNorm halves, γ off", akLabel, n,
                MergeSpec.lego(abl.withFeatureNorm(FeatureNorm.HALVES).withOutputReweighting(false))));

        double autoShare = cfg.autoShares().contains(0.9) ? 0.9 : cfg.autoShares().get(0);
        int bigK = cfg.kMultiples().stream().mapToInt(Integer::intValue).max().orElseThrow() * r;
        for (int count : cfg.adapterCounts()) {
            out.add(new MergeCase(MergeCase.Section.ADAPTERS, legoLabel(CanonicalForm.SVD), akLabel, count,
                    MergeSpec.lego(abl)));
            if (bigK != ak) {
                out.add(new MergeCase(MergeCase.Section.ADAPTERS, legoLabel(CanonicalForm.SVD), Integer.toString(bigK),
                        count, MergeSpec.lego(base.withK(bigK))));
            }
            out.add(new MergeCase(MergeCase.Section.ADAPTERS, legoLabel(CanonicalForm.SVD), autoLabel(autoShare), count,
                    MergeSpec.lego(base.withK(LegoOptions.K_AUTO).withAutoEnergyShare(autoShare))));
            out.add(new MergeCase(MergeCase.Section.ADAPTERS, "ties", akLabel, count, baseline(MergeMethod.TIES, ak)));
            out.add(new MergeCase(MergeCase.Section.ADAPTERS, "linear", EXACT, count, baseline(MergeMethod.LINEAR, 0)));
            out.add(new MergeCase(MergeCase.Section.ADAPTERS, "cat", EXACT, count, baseline(MergeMethod.CAT, 0)));
        }
        return out;
    }

    static String legoLabel(CanonicalForm c) {
        return "lego (" + c.name().toLowerCase(Locale.ROOT) + ")";
    }

    static String autoLabel(double share) {
        return String.format(Locale.ROOT, "auto τ=%s", trim(share));
    }

    private static String trim(double v) {
        String s = Double.toString(v);
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }

    private static MergeSpec baseline(MergeMethod method, int k) {
        return baseline(method, k, 1.0);
    }

    private static MergeSpec baseline(MergeMethod method, int k, double lambda) {
        return new MergeSpec(method, LegoOptions.defaults(), new BaselineOptions(k, 0, lambda, 42L));
    }

    /**
     * Runs the benchmark.
     *
     * @param progress observer, or {@code null}
     */
    public static QualityResults run(QualityConfig cfg, Progress progress) throws IOException {
        Objects.requireNonNull(cfg, "cfg");
        List<MergeCase> cases = cases(cfg);
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(cfg.threads(), cfg.seeds().size()), r -> {
            Thread t = new Thread(r, "bench-quality");
            t.setDaemon(true);
            return t;
        });
        AtomicInteger done = new AtomicInteger();
        try {
            List<Future<List<QualityResults.Run>>> futures = new ArrayList<>();
            for (long seed : cfg.seeds()) {
                futures.add(pool.submit(() -> {
                    List<QualityResults.Run> runs = runSeed(cfg, seed, cases);
                    if (progress != null) progress.seedDone(seed, done.incrementAndGet(), cfg.seeds().size());
                    return runs;
                }));
            }
            List<QualityResults.Run> runs = new ArrayList<>();
            for (Future<List<QualityResults.Run>> f : futures) runs.addAll(get(f));
            return new QualityResults(cfg, cases, runs);
        } finally {
            pool.shutdownNow();
        }
    }

    private static <T> T get(Future<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) throw io;
            if (c instanceof UncheckedIOException u) throw u.getCause();
            if (c instanceof RuntimeException re) throw re;
            if (c instanceof Error err) throw err;
            throw new IOException(c);
        }
    }

    /** One task's held-out statistics and its trained LoRA per regime. */
    private record TaskOutcome(SkillWorld.Task task, HeldOutLoss heldOut, double trueLoss,
                               Map<InitRegime, LoraTrainer.Result> trained) {
    }

    /** Both regimes of one seed. */
    static List<QualityResults.Run> runSeed(QualityConfig cfg, long seed, List<MergeCase> cases) throws IOException {
        SkillWorld world = SkillWorld.generate(cfg.world(), seed);
        List<SkillWorld.Task> all = new ArrayList<>(world.tasks());
        all.addAll(world.oodTasks());
        List<TaskOutcome> outcomes = new ArrayList<>();
        for (int t = 0; t < all.size(); t++) outcomes.add(trainTask(cfg, world, all.get(t), seed, t));
        List<QualityResults.Run> runs = new ArrayList<>();
        for (InitRegime regime : InitRegime.values()) runs.add(runRegime(cfg, world, seed, regime, outcomes, cases));
        return runs;
    }

    private static TaskOutcome trainTask(QualityConfig cfg, SkillWorld world, SkillWorld.Task task, long seed, int tag) {
        SplittableRandom data = new SplittableRandom(Seeds.derive(seed, Seeds.DATA, tag));
        SkillWorld.Samples train = world.sample(task, cfg.trainSamples(), data);
        SkillWorld.Samples val = world.sample(task, cfg.valSamples(), data);
        HeldOutLoss heldOut = HeldOutLoss.of(world.sample(task, cfg.testSamples(), data));
        double[][] truth = world.skillFactors(task.skills());
        double trueLoss = heldOut.loss(task.skills().length, truth[0], truth[1], 1.0);
        Map<InitRegime, LoraTrainer.Result> trained = new EnumMap<>(InitRegime.class);
        long orderSeed = Seeds.derive(seed, Seeds.ORDER, tag);
        for (InitRegime regime : InitRegime.values()) {
            long initSeed = regime == InitRegime.SHARED_INIT ? Seeds.derive(seed, Seeds.INIT)
                    : Seeds.derive(seed, Seeds.INIT, tag + 1L);
            trained.put(regime, LoraTrainer.train(train, val, cfg.training(), initSeed, orderSeed));
        }
        return new TaskOutcome(task, heldOut, trueLoss, trained);
    }

    private static QualityResults.Run runRegime(QualityConfig cfg, SkillWorld world, long seed, InitRegime regime,
                                                List<TaskOutcome> outcomes, List<MergeCase> cases) throws IOException {
        Path dir = cfg.workDir().resolve("seed-" + seed).resolve(regime.dirName());
        int nTrain = world.tasks().size();
        List<PeftAdapter> opened = new ArrayList<>();
        try {
            double[] own = new double[outcomes.size()];
            double epochs = 0, bestEpochs = 0, valRatio = 0, testRatio = 0, floorRatio = 0;
            for (int t = 0; t < outcomes.size(); t++) {
                TaskOutcome o = outcomes.get(t);
                LoraTrainer.Result lora = o.trained().get(regime);
                Path adapterDir = dir.resolve(o.task().name());
                writeAdapter(adapterDir, lora, world, seed);
                PeftAdapter a = PeftAdapter.open(adapterDir);
                opened.add(a);
                LoraModuleInfo info = a.module(MODULE);
                own[t] = o.heldOut().loss(info.rank(), a.readA(MODULE), a.readB(MODULE), info.scaling());
                epochs += lora.epochs();
                bestEpochs += lora.bestEpoch();
                valRatio += lora.bestValLoss() / lora.initialValLoss();
                testRatio += own[t] / o.heldOut().baseLoss();
                floorRatio += own[t] / o.trueLoss();
            }
            int nt = outcomes.size();
            QualityResults.Training training = new QualityResults.Training(epochs / nt, bestEpochs / nt, valRatio / nt,
                    testRatio / nt, floorRatio / nt);
            Map<String, QualityResults.Score> computed = new HashMap<>();
            Map<String, QualityResults.Score> scores = new LinkedHashMap<>();
            for (MergeCase c : cases) {
                QualityResults.Score s = computed.get(c.computationKey());
                if (s == null) {
                    s = score(cfg, world, c, opened.subList(0, c.adapters()), outcomes, own, nTrain);
                    computed.put(c.computationKey(), s);
                }
                scores.put(c.key(), s);
            }
            return new QualityResults.Run(seed, regime, scores, training, world.distinctSkills(cfg.world().mergedTasks()));
        } finally {
            for (PeftAdapter a : opened) a.close();
        }
    }

    private static QualityResults.Score score(QualityConfig cfg, SkillWorld world, MergeCase c, List<PeftAdapter> adapters,
                                              List<TaskOutcome> outcomes, double[] own, int nTrain) throws IOException {
        int rank;
        double[] a, b;
        if (c.reference()) {
            int[] skills = world.skillsOfFirstTasks(c.adapters());
            double[][] f = world.skillFactors(skills);
            rank = skills.length;
            a = f[0];
            b = f[1];
        } else {
            MergedModule m = new AdapterMerge(c.spec(), 1).merge(adapters, null, null).modules().get(MODULE);
            rank = m.rank();
            a = m.a();
            b = m.b();
        }
        double in = 0;
        for (int t = 0; t < c.adapters(); t++) in += gain(outcomes.get(t), own[t], rank, a, b);
        in /= c.adapters();
        double ood = Double.NaN;
        if (c.adapters() == cfg.world().mergedTasks() && outcomes.size() > nTrain) {
            ood = 0;
            for (int t = nTrain; t < outcomes.size(); t++) ood += gain(outcomes.get(t), own[t], rank, a, b);
            ood /= outcomes.size() - nTrain;
        }
        return new QualityResults.Score(in, ood, rank);
    }

    private static double gain(TaskOutcome o, double own, int rank, double[] a, double[] b) {
        double base = o.heldOut().baseLoss();
        return HeldOutLoss.normalisedGain(base, own, o.heldOut().loss(rank, a, b, 1.0));
    }

    /**
     * Writes a trained LoRA as a PEFT directory: {@code r} and {@code lora_alpha} of the training, F32 factors,
     * {@code target_modules = [MODULE]}.
     */
    static void writeAdapter(Path dir, LoraTrainer.Result lora, SkillWorld world, long seed) throws IOException {
        TreeMap<String, ModuleFactors> modules = new TreeMap<>();
        modules.put(MODULE, new ModuleFactors(lora.rank(), lora.dIn(), lora.dOut(), lora.a(), lora.b()));
        String baseModel = "loralego/skill-world-d" + world.dim() + "-seed" + seed;
        PeftAdapterWriter.write(dir, new MergedAdapterSpec(baseModel, null, false, DType.F32, modules, null));
        // the writer emits merged adapters (alpha = r, scaling 1); a trained adapter keeps its own alpha
        Path config = dir.resolve(PeftAdapter.CONFIG_FILE);
        AdapterConfig written = AdapterConfig.read(config);
        double alpha = lora.alpha();
        String json = written.with("lora_alpha", alpha == Math.rint(alpha)
                ? IntNode.valueOf((int) alpha) : com.fasterxml.jackson.databind.node.DoubleNode.valueOf(alpha)).toJson();
        Files.writeString(config, json, StandardCharsets.UTF_8);
    }
}
