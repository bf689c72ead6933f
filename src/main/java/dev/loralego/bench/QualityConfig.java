package dev.loralego.bench;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Everything that defines a quality benchmark run ({@code bench quality}); with the seeds it fixes every number
 * of the report.
 *
 * @param world          the skill world
 * @param training       LoRA training
 * @param trainSamples   training samples per task
 * @param valSamples     validation samples per task (early stopping)
 * @param testSamples    held-out samples per task (scoring)
 * @param seeds          benchmark seeds (mean and spread are over these)
 * @param kMultiples     merged ranks as multiples of the LoRA rank {@code r} (e.g. 1, 2, 4)
 * @param autoShares     energy shares {@code τ} of {@code --k auto} to report
 * @param adapterCounts  numbers of adapters merged in the "number of adapters" ablation (each ≤ world tasks)
 * @param ablationK      multiple of {@code r} at which the LoRA-LEGO ablations run
 * @param nInit          k-means restarts of every LoRA-LEGO merge
 * @param threads        worker threads (over seeds; results do not depend on it)
 * @param workDir        where the trained adapters are written as PEFT directories
 */
public record QualityConfig(SkillWorld.Config world, LoraTrainer.Config training, int trainSamples, int valSamples,
                            int testSamples, List<Long> seeds, List<Integer> kMultiples, List<Double> autoShares,
                            List<Integer> adapterCounts, int ablationK, int nInit, int threads, Path workDir) {
    public QualityConfig {
        Objects.requireNonNull(world, "world");
        Objects.requireNonNull(training, "training");
        Objects.requireNonNull(workDir, "workDir");
        seeds = List.copyOf(seeds);
        kMultiples = List.copyOf(kMultiples);
        autoShares = List.copyOf(autoShares);
        adapterCounts = List.copyOf(adapterCounts);
        if (trainSamples < 1 || valSamples < 1 || testSamples < 1) throw new IllegalArgumentException("sample counts must be >= 1");
        if (seeds.isEmpty()) throw new IllegalArgumentException("at least one seed");
        if (kMultiples.isEmpty() || kMultiples.stream().anyMatch(m -> m < 1)) {
            throw new IllegalArgumentException("k multiples must be >= 1");
        }
        for (int n : adapterCounts) {
            if (n < 1 || n > world.tasks()) {
                throw new IllegalArgumentException("adapter count " + n + " not in [1, " + world.tasks() + "]");
            }
        }
        if (ablationK < 1 || nInit < 1 || threads < 1) throw new IllegalArgumentException("ablationK, nInit, threads must be >= 1");
    }

    /**
     * The full benchmark: the default world (d = 256, 16 tasks, 8 merged, 4 OOD), r = 8, 2048/512/1024 samples,
     * seeds 1–5, k ∈ {r, 2r, 4r}, τ ∈ {0.8, 0.9, 0.95}, 2/4/8/16 adapters, ablations at k = 2r.
     */
    public static QualityConfig full(Path workDir, int threads) {
        return new QualityConfig(SkillWorld.Config.defaults(), LoraTrainer.Config.defaults(), 2048, 512, 1024,
                List.of(1L, 2L, 3L, 4L, 5L), List.of(1, 2, 4), List.of(0.8, 0.9, 0.95), List.of(2, 4, 8, 16), 2, 4,
                threads, workDir);
    }

    /** A smaller run for a first look (seconds): d = 64, 8 tasks (4 merged), 2 seeds, 2/4/8 adapters. */
    public static QualityConfig quick(Path workDir, int threads) {
        SkillWorld.Config w = new SkillWorld.Config(64, 12, 8, 4, 2, 3, 5, 0.5, 2.0, 0.05, 0.05);
        return new QualityConfig(w, LoraTrainer.Config.defaults(), 1024, 256, 512, List.of(1L, 2L),
                List.of(1, 2, 4), List.of(0.9), List.of(2, 4, 8), 2, 4, threads, workDir);
    }

    /** The LoRA rank {@code r}. */
    public int rank() {
        return training.rank();
    }
}
