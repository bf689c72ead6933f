package dev.loralego.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The numbers of a quality benchmark run: for every {@link MergeCase}, regime and seed, the normalised gain
 * averaged over the merged tasks (in domain) and over the out-of-domain tasks, and the merged rank; plus a summary
 * of the trained adapters. Seeds in the configuration's order; everything deterministic.
 */
public final class QualityResults {

    /**
     * Scores of one merge in one run (one seed, one regime).
     *
     * @param inDomain    mean normalised gain over the merged tasks
     * @param outOfDomain mean normalised gain over the OOD tasks (NaN when not scored)
     * @param rank        rank of the merged module
     */
    public record Score(double inDomain, double outOfDomain, int rank) {
    }

    /**
     * The trained adapters of one run.
     *
     * @param meanEpochs        mean epochs run per adapter
     * @param meanBestEpoch     mean epoch of the kept factors
     * @param meanValRatio      mean over tasks of best validation loss / base validation loss
     * @param meanTestRatio     mean over tasks of own held-out loss / base held-out loss
     * @param meanNoiseFloorRatio mean over tasks of own held-out loss / the true update's held-out loss
     */
    public record Training(double meanEpochs, double meanBestEpoch, double meanValRatio, double meanTestRatio,
                           double meanNoiseFloorRatio) {
    }

    /**
     * One (seed, regime) run.
     *
     * @param seed     benchmark seed
     * @param regime   initialisation regime
     * @param scores   per {@link MergeCase#key()}
     * @param training adapter summary
     * @param distinctSkills distinct skills among the merged tasks
     */
    public record Run(long seed, InitRegime regime, Map<String, Score> scores, Training training, int distinctSkills) {
        public Run {
            scores = Collections.unmodifiableMap(new java.util.LinkedHashMap<>(scores));
        }
    }

    /**
     * Mean and sample standard deviation over seeds.
     *
     * @param mean mean (NaN when no value)
     * @param sd   sample standard deviation (0 for one value)
     * @param n    number of values
     */
    public record Stat(double mean, double sd, int n) {
        static Stat of(double[] v) {
            double[] finite = Arrays.stream(v).filter(Double::isFinite).toArray();
            int n = finite.length;
            if (n == 0) return new Stat(Double.NaN, Double.NaN, 0);
            double m = 0;
            for (double x : finite) m += x;
            m /= n;
            double ss = 0;
            for (double x : finite) ss += (x - m) * (x - m);
            return new Stat(m, n > 1 ? Math.sqrt(ss / (n - 1)) : 0.0, n);
        }
    }

    private final QualityConfig config;
    private final List<MergeCase> cases;
    private final List<Run> runs;

    /** Wraps the runs of a benchmark (copied). */
    public QualityResults(QualityConfig config, List<MergeCase> cases, List<Run> runs) {
        this.config = Objects.requireNonNull(config, "config");
        this.cases = List.copyOf(cases);
        this.runs = List.copyOf(runs);
    }

    /** The configuration. */
    public QualityConfig config() {
        return config;
    }

    /** The rows, in report order. */
    public List<MergeCase> cases() {
        return cases;
    }

    /** The rows of one section, in report order. */
    public List<MergeCase> cases(MergeCase.Section section) {
        List<MergeCase> out = new ArrayList<>();
        for (MergeCase c : cases) if (c.section() == section) out.add(c);
        return out;
    }

    /** All runs, seed-major then regime. */
    public List<Run> runs() {
        return runs;
    }

    /** The runs of one regime, in seed order. */
    public List<Run> runs(InitRegime regime) {
        List<Run> out = new ArrayList<>();
        for (Run r : runs) if (r.regime() == regime) out.add(r);
        return out;
    }

    /** In-domain gain of a row over the seeds of a regime. */
    public Stat inDomain(MergeCase c, InitRegime regime) {
        return Stat.of(runs(regime).stream().mapToDouble(r -> r.scores().get(c.key()).inDomain()).toArray());
    }

    /** Out-of-domain gain of a row over the seeds of a regime. */
    public Stat outOfDomain(MergeCase c, InitRegime regime) {
        return Stat.of(runs(regime).stream().mapToDouble(r -> r.scores().get(c.key()).outOfDomain()).toArray());
    }

    /** Merged rank of a row over the seeds of a regime. */
    public Stat rank(MergeCase c, InitRegime regime) {
        return Stat.of(runs(regime).stream().mapToDouble(r -> r.scores().get(c.key()).rank()).toArray());
    }

    /** A training summary field over the seeds of a regime. */
    public Stat training(InitRegime regime, java.util.function.ToDoubleFunction<Training> field) {
        return Stat.of(runs(regime).stream().mapToDouble(r -> field.applyAsDouble(r.training())).toArray());
    }

    /** Distinct skills among the merged tasks, per seed (same for both regimes). */
    public Stat distinctSkills() {
        return Stat.of(runs(InitRegime.SHARED_INIT).stream().mapToDouble(Run::distinctSkills).toArray());
    }

    /** Per-regime view used by reports: regime → run list. */
    public Map<InitRegime, List<Run>> byRegime() {
        Map<InitRegime, List<Run>> m = new EnumMap<>(InitRegime.class);
        for (InitRegime r : InitRegime.values()) m.put(r, runs(r));
        return m;
    }
}
