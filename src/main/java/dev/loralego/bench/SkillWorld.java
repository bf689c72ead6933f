package dev.loralego.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * The synthetic world of the quality benchmark: a frozen base linear layer {@code W0 ∈ R^{d×d}}, a pool of rank-1
 * "skills" {@code m_s u_s v_sᵀ}, and tasks whose true update is the sum of 3–5 skills, some shared between tasks.
 * It is the setting LoRA-LEGO (Zhao et al., arXiv 2409.16167) is built for: each task's LoRA learns a few
 * semantic units, and a good merge keeps every distinct skill once, at its own strength.
 *
 * <ul>
 *   <li>{@code W0}: entries {@code N(0, 1/d)}.</li>
 *   <li>Skills: input directions {@code v_s} orthonormal in {@code R^d}, output directions {@code u_s} orthonormal
 *       in {@code R^d} (Gram–Schmidt of Gaussian vectors), magnitudes {@code m_s} log-uniform in
 *       {@code [minMagnitude, maxMagnitude]} (distinct magnitudes keep a task's SVD directions close to its skills).</li>
 *   <li>Training tasks: each takes {@code 3..5} distinct skills drawn uniformly from the pool, so tasks share skills
 *       at random. Out-of-domain tasks take {@code 3..5} distinct skills among those the first {@code mergedTasks}
 *       training tasks use, in a combination that is not a subset of any of those tasks' skill sets.</li>
 *   <li>A task's inputs concentrate on its skills: {@code x = Σ_{s∈task} z_s v_s + σ_x g} with {@code z_s, g_i ~ N(0,1)};
 *       outputs {@code y = (W0 + ΔW*) x + σ_y ε}, {@code ΔW* = Σ_{s∈task} m_s u_s v_sᵀ}.</li>
 * </ul>
 * Everything is a deterministic function of the configuration and the seed.
 */
public final class SkillWorld {

    /**
     * Shape of the world.
     *
     * @param dim              {@code d_in = d_out}
     * @param skills           pool size ({@code ≤ dim})
     * @param tasks            training tasks (each gets its own LoRA)
     * @param mergedTasks      how many of the first training tasks the main merge uses (OOD tasks draw from their skills)
     * @param oodTasks         out-of-domain tasks
     * @param minSkillsPerTask smallest number of skills of a task
     * @param maxSkillsPerTask largest number of skills of a task
     * @param minMagnitude     smallest skill magnitude
     * @param maxMagnitude     largest skill magnitude
     * @param inputNoise       {@code σ_x}: isotropic input component per coordinate
     * @param outputNoise      {@code σ_y}: label noise per coordinate
     */
    public record Config(int dim, int skills, int tasks, int mergedTasks, int oodTasks, int minSkillsPerTask,
                         int maxSkillsPerTask, double minMagnitude, double maxMagnitude, double inputNoise,
                         double outputNoise) {
        public Config {
            if (dim < 2) throw new IllegalArgumentException("dim must be >= 2, got " + dim);
            if (skills < 1 || skills > dim) throw new IllegalArgumentException("skills must be in [1, dim], got " + skills);
            if (minSkillsPerTask < 1 || maxSkillsPerTask < minSkillsPerTask || maxSkillsPerTask > skills) {
                throw new IllegalArgumentException("skills per task must satisfy 1 <= min <= max <= skills, got "
                        + minSkillsPerTask + ".." + maxSkillsPerTask);
            }
            if (tasks < 1 || mergedTasks < 1 || mergedTasks > tasks || oodTasks < 0) {
                throw new IllegalArgumentException("need tasks >= 1, 1 <= mergedTasks <= tasks, oodTasks >= 0, got "
                        + tasks + ", " + mergedTasks + ", " + oodTasks);
            }
            if (!(minMagnitude > 0) || !(maxMagnitude >= minMagnitude)) {
                throw new IllegalArgumentException("magnitudes must satisfy 0 < min <= max, got " + minMagnitude + ", " + maxMagnitude);
            }
            if (!(inputNoise >= 0) || !(outputNoise >= 0)) throw new IllegalArgumentException("noise levels must be >= 0");
        }

        /** The benchmark's world: d = 256, 24 skills, 16 tasks (8 merged), 4 OOD tasks, 3–5 skills, m in [0.5, 2]. */
        public static Config defaults() {
            return new Config(256, 24, 16, 8, 4, 3, 5, 0.5, 2.0, 0.05, 0.05);
        }
    }

    /**
     * One task.
     *
     * @param name        {@code task-00}, ... or {@code ood-00}, ...
     * @param index       index among the training tasks, or among the OOD tasks
     * @param skills      its skills, ascending
     * @param outOfDomain whether it is a held-out combination
     */
    public record Task(String name, int index, int[] skills, boolean outOfDomain) {
        public Task {
            Objects.requireNonNull(name, "name");
            skills = skills.clone();
        }

        @Override
        public int[] skills() {
            return skills.clone();
        }
    }

    /**
     * Samples of one task: inputs, outputs and the frozen base layer's outputs {@code W0 x} (what a training loop
     * computes once for a frozen layer).
     *
     * @param n    number of samples
     * @param dim  {@code d}
     * @param x    row-major {@code n × d}
     * @param y    row-major {@code n × d}
     * @param base row-major {@code n × d}: {@code W0 x}
     */
    public record Samples(int n, int dim, double[] x, double[] y, double[] base) {
        public Samples {
            if (x.length != (long) n * dim || y.length != x.length || base.length != x.length) {
                throw new IllegalArgumentException("sample arrays do not match n " + n + ", dim " + dim);
            }
        }

        /** The target of the LoRA part: {@code t = y − W0 x}, row-major {@code n × d}. */
        public double[] residualTargets() {
            double[] t = new double[y.length];
            for (int i = 0; i < t.length; i++) t[i] = y[i] - base[i];
            return t;
        }
    }

    private final Config config;
    private final long seed;
    private final double[] w0;
    private final double[] w0t;
    private final double[] u;
    private final double[] v;
    private final double[] magnitude;
    private final List<Task> tasks;
    private final List<Task> oodTasks;

    private SkillWorld(Config config, long seed, double[] w0, double[] u, double[] v, double[] magnitude,
                       List<Task> tasks, List<Task> oodTasks) {
        this.config = config;
        this.seed = seed;
        this.w0 = w0;
        this.w0t = new double[w0.length];
        int d = config.dim();
        for (int o = 0; o < d; o++) for (int c = 0; c < d; c++) w0t[c * d + o] = w0[o * d + c];
        this.u = u;
        this.v = v;
        this.magnitude = magnitude;
        this.tasks = List.copyOf(tasks);
        this.oodTasks = List.copyOf(oodTasks);
    }

    /** Builds the world of {@code config} from {@code seed}. */
    public static SkillWorld generate(Config config, long seed) {
        Objects.requireNonNull(config, "config");
        SplittableRandom rng = new SplittableRandom(Seeds.derive(seed, Seeds.WORLD));
        int d = config.dim(), s = config.skills();
        double[] w0 = new double[d * d];
        double sd = 1.0 / Math.sqrt(d);
        for (int i = 0; i < w0.length; i++) w0[i] = sd * rng.nextGaussian();
        double[] u = orthonormalRows(s, d, rng);
        double[] v = orthonormalRows(s, d, rng);
        double[] m = new double[s];
        double lo = Math.log(config.minMagnitude()), hi = Math.log(config.maxMagnitude());
        for (int i = 0; i < s; i++) m[i] = Math.exp(lo + (hi - lo) * rng.nextDouble());
        List<Task> tasks = new ArrayList<>();
        for (int t = 0; t < config.tasks(); t++) {
            tasks.add(new Task(String.format("task-%02d", t), t, drawSkills(rng, config, allSkills(s)), false));
        }
        List<Task> ood = new ArrayList<>();
        int[] seen = seenSkills(tasks.subList(0, config.mergedTasks()), s);
        for (int t = 0; t < config.oodTasks(); t++) {
            ood.add(new Task(String.format("ood-%02d", t), t, drawOod(rng, config, seen, tasks.subList(0, config.mergedTasks())), true));
        }
        return new SkillWorld(config, seed, w0, u, v, m, tasks, ood);
    }

    private static int[] allSkills(int s) {
        int[] all = new int[s];
        for (int i = 0; i < s; i++) all[i] = i;
        return all;
    }

    private static int[] seenSkills(List<Task> tasks, int s) {
        boolean[] seen = new boolean[s];
        for (Task t : tasks) for (int k : t.skills) seen[k] = true;
        int count = 0;
        for (boolean b : seen) if (b) count++;
        int[] out = new int[count];
        int c = 0;
        for (int i = 0; i < s; i++) if (seen[i]) out[c++] = i;
        return out;
    }

    /** {@code count} distinct skills from {@code candidates} (partial Fisher–Yates), sorted. */
    private static int[] drawSkills(SplittableRandom rng, Config config, int[] candidates) {
        int size = Math.min(candidates.length,
                config.minSkillsPerTask() + rng.nextInt(config.maxSkillsPerTask() - config.minSkillsPerTask() + 1));
        int[] order = candidates.clone();
        for (int i = 0; i < size; i++) {
            int j = i + rng.nextInt(order.length - i);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        int[] out = Arrays.copyOf(order, size);
        Arrays.sort(out);
        return out;
    }

    private static int[] drawOod(SplittableRandom rng, Config config, int[] seen, List<Task> merged) {
        for (int attempt = 0; attempt < 1000; attempt++) {
            int[] skills = drawSkills(rng, config, seen);
            boolean novel = true;
            for (Task t : merged) {
                if (isSubset(skills, t.skills)) {
                    novel = false;
                    break;
                }
            }
            if (novel) return skills;
        }
        throw new IllegalArgumentException("cannot draw an out-of-domain skill combination: the merged tasks use only "
                + seen.length + " skills");
    }

    private static boolean isSubset(int[] a, int[] b) {
        for (int x : a) if (Arrays.binarySearch(b, x) < 0) return false;
        return true;
    }

    /** {@code rows} orthonormal rows of length {@code d} (modified Gram–Schmidt, applied twice). */
    static double[] orthonormalRows(int rows, int d, SplittableRandom rng) {
        double[] q = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            int off = r * d;
            for (int c = 0; c < d; c++) q[off + c] = rng.nextGaussian();
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < r; p++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += q[off + c] * q[p * d + c];
                    for (int c = 0; c < d; c++) q[off + c] -= dot * q[p * d + c];
                }
            }
            double norm = 0;
            for (int c = 0; c < d; c++) norm += q[off + c] * q[off + c];
            double inv = 1.0 / Math.sqrt(norm);
            for (int c = 0; c < d; c++) q[off + c] *= inv;
        }
        return q;
    }

    /**
     * Draws {@code n} samples of a task.
     *
     * @param rng the task's data stream (consumed)
     */
    public Samples sample(Task task, int n, SplittableRandom rng) {
        int d = config.dim();
        int[] skills = task.skills;
        double[] x = new double[n * d], y = new double[n * d], base = new double[n * d];
        double[] z = new double[skills.length];
        double sx = config.inputNoise(), sy = config.outputNoise();
        for (int i = 0; i < n; i++) {
            int row = i * d;
            for (int c = 0; c < d; c++) x[row + c] = sx * rng.nextGaussian();
            for (int k = 0; k < skills.length; k++) {
                z[k] = rng.nextGaussian();
                int vr = skills[k] * d;
                for (int c = 0; c < d; c++) x[row + c] += z[k] * v[vr + c];
            }
            // base = W0 x = Σ_c x_c W0[:, c], as axpys over the rows of W0ᵀ (vectorisable)
            for (int c = 0; c < d; c++) {
                double xc = x[row + c];
                int wr = c * d;
                for (int o = 0; o < d; o++) base[row + o] += xc * w0t[wr + o];
            }
            System.arraycopy(base, row, y, row, d);
            for (int k = 0; k < skills.length; k++) {
                int s = skills[k];
                double vx = 0;
                int vr = s * d;
                for (int c = 0; c < d; c++) vx += v[vr + c] * x[row + c];
                double coef = magnitude[s] * vx;
                int ur = s * d;
                for (int o = 0; o < d; o++) y[row + o] += coef * u[ur + o];
            }
            for (int o = 0; o < d; o++) y[row + o] += sy * rng.nextGaussian();
        }
        return new Samples(n, d, x, y, base);
    }

    /** Dense {@code ΔW* = Σ_{s∈task} m_s u_s v_sᵀ}, row-major {@code d × d}. */
    public double[] trueDeltaW(Task task) {
        int d = config.dim();
        double[] w = new double[d * d];
        for (int s : task.skills) {
            for (int o = 0; o < d; o++) {
                double uo = magnitude[s] * u[s * d + o];
                for (int c = 0; c < d; c++) w[o * d + c] += uo * v[s * d + c];
            }
        }
        return w;
    }

    /**
     * The exact factors of {@code Σ_{s∈skills} m_s u_s v_sᵀ}: {@code A} has rows {@code v_s} ({@code k × d}),
     * {@code B} has columns {@code m_s u_s} ({@code d × k}), scaling 1.
     *
     * @param skills distinct skill indices
     * @return {@code {A, B}}
     */
    public double[][] skillFactors(int[] skills) {
        int d = config.dim(), k = skills.length;
        double[] a = new double[k * d], b = new double[d * k];
        for (int j = 0; j < k; j++) {
            int s = skills[j];
            System.arraycopy(v, s * d, a, j * d, d);
            for (int o = 0; o < d; o++) b[o * k + j] = magnitude[s] * u[s * d + o];
        }
        return new double[][]{a, b};
    }

    /** The distinct skills of the first {@code n} training tasks, ascending. */
    public int[] skillsOfFirstTasks(int n) {
        return seenSkills(tasks.subList(0, n), config.skills());
    }

    /** The configuration. */
    public Config config() {
        return config;
    }

    /** The seed it was built from. */
    public long seed() {
        return seed;
    }

    /** {@code d}. */
    public int dim() {
        return config.dim();
    }

    /** The base layer {@code W0}, row-major {@code d × d}; the internal array: do not modify. */
    public double[] w0() {
        return w0;
    }

    /** Magnitude {@code m_s} of skill {@code s}. */
    public double magnitude(int s) {
        return magnitude[s];
    }

    /** The training tasks, in index order. */
    public List<Task> tasks() {
        return tasks;
    }

    /** The out-of-domain tasks, in index order. */
    public List<Task> oodTasks() {
        return oodTasks;
    }

    /** Number of distinct skills used by the first {@code n} training tasks. */
    public int distinctSkills(int n) {
        return skillsOfFirstTasks(n).length;
    }
}
