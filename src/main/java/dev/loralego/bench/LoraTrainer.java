package dev.loralego.bench;

import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Trains one LoRA on one linear layer the way PEFT does, in plain Java: {@code ΔW = s · B A} with
 * {@code s = alpha / r}, {@code A} Kaiming-uniform from a seed ({@code U(−1/√d_in, 1/√d_in)}, PEFT's
 * {@code kaiming_uniform_(a=√5)}), {@code B = 0}; Adam (Kingma &amp; Ba 2015, bias-corrected) on minibatches of the
 * loss {@code mean_i ‖(W0 + s B A) x_i − y_i‖²}; early stopping when the validation loss has not improved by a
 * relative {@code minImprovement} for {@code patience} epochs, returning the best epoch's factors.
 *
 * <p>The frozen base output {@code W0 x} is part of the samples ({@link SkillWorld.Samples#base()}), so a step costs
 * {@code 5 · m · r · d} multiply-adds for a batch of {@code m}: every product is written as row updates
 * ({@code y[:] += a · x[:]}) that the JIT vectorises, with {@code B} kept transposed ({@code r × d_out}).
 * Deterministic: the same samples, configuration and seeds give bit-identical factors.
 */
public final class LoraTrainer {

    /**
     * Training hyper-parameters.
     *
     * @param rank           {@code r}
     * @param alpha          {@code lora_alpha} ({@code s = alpha / r})
     * @param batchSize      minibatch size
     * @param learningRate   Adam step size
     * @param maxEpochs      epoch cap
     * @param patience       epochs without improvement before stopping
     * @param minImprovement relative validation-loss improvement that counts
     */
    public record Config(int rank, double alpha, int batchSize, double learningRate, int maxEpochs, int patience,
                         double minImprovement) {
        public Config {
            if (rank < 1 || batchSize < 1 || maxEpochs < 1 || patience < 1) {
                throw new IllegalArgumentException("rank, batchSize, maxEpochs, patience must be >= 1");
            }
            if (!(alpha > 0) || !(learningRate > 0) || !(minImprovement >= 0)) {
                throw new IllegalArgumentException("alpha and learningRate must be > 0, minImprovement >= 0");
            }
        }

        /** r = 8, alpha = 16, batch 64, lr 2e-3, at most 200 epochs, patience 5, improvement 1e-3. */
        public static Config defaults() {
            return new Config(8, 16, 64, 2e-3, 200, 5, 1e-3);
        }

        /** PEFT scaling {@code alpha / r}. */
        public double scaling() {
            return alpha / rank;
        }
    }

    /**
     * A trained LoRA.
     *
     * @param rank          {@code r}
     * @param dIn           input dimension
     * @param dOut          output dimension
     * @param alpha         {@code lora_alpha}
     * @param a             row-major {@code r × dIn}
     * @param b             row-major {@code dOut × r}
     * @param epochs        epochs run
     * @param bestEpoch     epoch of the returned factors (1-based)
     * @param initialValLoss validation loss at initialisation ({@code B = 0}: the base layer's loss)
     * @param bestValLoss   validation loss of the returned factors
     */
    public record Result(int rank, int dIn, int dOut, double alpha, double[] a, double[] b, int epochs, int bestEpoch,
                         double initialValLoss, double bestValLoss) {
        /** PEFT scaling {@code alpha / r}. */
        public double scaling() {
            return alpha / rank;
        }
    }

    private LoraTrainer() {
    }

    /** PEFT's initialisation of {@code A}: {@code U(−1/√dIn, 1/√dIn)} from {@code seed}, row-major {@code r × dIn}. */
    public static double[] kaimingUniformA(int rank, int dIn, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double bound = 1.0 / Math.sqrt(dIn);
        double[] a = new double[rank * dIn];
        for (int i = 0; i < a.length; i++) a[i] = bound * (2 * rng.nextDouble() - 1);
        return a;
    }

    /**
     * Trains a LoRA.
     *
     * @param train     training samples
     * @param val       validation samples (early stopping)
     * @param config    hyper-parameters
     * @param initSeed  seed of {@code A}'s initialisation
     * @param orderSeed seed of the minibatch order
     */
    public static Result train(SkillWorld.Samples train, SkillWorld.Samples val, Config config, long initSeed,
                               long orderSeed) {
        Objects.requireNonNull(train, "train");
        Objects.requireNonNull(val, "val");
        Objects.requireNonNull(config, "config");
        if (train.dim() != val.dim()) throw new IllegalArgumentException("train and val dims differ");
        int d = train.dim(), r = config.rank(), n = train.n();
        double s = config.scaling();
        double[] a = kaimingUniformA(r, d, initSeed);
        double[] bt = new double[r * d];
        double[] trainT = train.residualTargets(), valT = val.residualTargets();
        int m = Math.min(config.batchSize(), n);
        Workspace ws = new Workspace(m, r, d, d);
        double[] ga = new double[a.length], gbt = new double[bt.length];
        Adam adamA = new Adam(a.length), adamB = new Adam(bt.length);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        SplittableRandom orderRng = new SplittableRandom(orderSeed);
        double initial = loss(val.x(), valT, val.n(), d, d, r, s, a, bt, ws);
        double best = initial;
        double[] bestA = a.clone(), bestBt = bt.clone();
        int bestEpoch = 0, epoch = 0, wait = 0;
        while (epoch < config.maxEpochs() && wait < config.patience()) {
            epoch++;
            shuffle(order, orderRng);
            for (int start = 0; start < n; start += m) {
                int mb = Math.min(m, n - start);
                ws.gather(train.x(), trainT, order, start, mb);
                lossAndGradient(ws, mb, s, a, bt, ga, gbt);
                adamA.step(a, ga, config.learningRate());
                adamB.step(bt, gbt, config.learningRate());
            }
            double v = loss(val.x(), valT, val.n(), d, d, r, s, a, bt, ws);
            if (v < best * (1 - config.minImprovement())) {
                best = v;
                System.arraycopy(a, 0, bestA, 0, a.length);
                System.arraycopy(bt, 0, bestBt, 0, bt.length);
                bestEpoch = epoch;
                wait = 0;
            } else {
                wait++;
            }
        }
        return new Result(r, d, d, config.alpha(), bestA, transpose(bestBt, r, d), epoch, bestEpoch, initial, best);
    }

    private static void shuffle(int[] order, SplittableRandom rng) {
        for (int i = order.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }

    /** {@code rows × cols} row-major into {@code cols × rows} row-major. */
    static double[] transpose(double[] m, int rows, int cols) {
        double[] t = new double[m.length];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
        return t;
    }

    /** Mean loss {@code mean_i ‖s B A x_i − t_i‖²} over all {@code n} samples, in batches of the workspace's size. */
    static double loss(double[] x, double[] t, int n, int dIn, int dOut, int r, double s, double[] a, double[] bt,
                       Workspace ws) {
        double sum = 0;
        for (int start = 0; start < n; start += ws.m) {
            int mb = Math.min(ws.m, n - start);
            ws.gatherRange(x, t, start, mb);
            sum += ws.forward(mb, s, a, bt) * mb;
        }
        return sum / n;
    }

    /**
     * Loss and gradients of the gathered batch.
     *
     * @param a   row-major {@code r × dIn}
     * @param bt  {@code Bᵀ}, row-major {@code r × dOut}
     * @param ga  out: {@code ∂L/∂A}, {@code r × dIn}
     * @param gbt out: {@code ∂L/∂Bᵀ}, {@code r × dOut}
     * @return the batch's mean loss
     */
    static double lossAndGradient(Workspace ws, int mb, double s, double[] a, double[] bt, double[] ga, double[] gbt) {
        double loss = ws.forward(mb, s, a, bt);
        int r = ws.r, dIn = ws.dIn, dOut = ws.dOut;
        // ∂L/∂Bᵀ[j, :] = (2 s / m) Σ_i H[i, j] E[i, :]
        Arrays.fill(gbt, 0.0);
        double cb = 2 * s / mb;
        for (int i = 0; i < mb; i++) {
            int er = i * dOut;
            for (int j = 0; j < r; j++) {
                double h = cb * ws.h[i * r + j];
                int gr = j * dOut;
                for (int o = 0; o < dOut; o++) gbt[gr + o] += h * ws.e[er + o];
            }
        }
        // Gᵀ[j, :] = s Σ_o Bᵀ[j, o] Eᵀ[o, :]   (G = s E B, m × r)
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < mb; i++) ws.et[o * ws.m + i] = ws.e[i * dOut + o];
        }
        Arrays.fill(ws.gt, 0.0);
        for (int j = 0; j < r; j++) {
            int gr = j * ws.m;
            for (int o = 0; o < dOut; o++) {
                double bjo = s * bt[j * dOut + o];
                int er = o * ws.m;
                for (int i = 0; i < mb; i++) ws.gt[gr + i] += bjo * ws.et[er + i];
            }
        }
        // ∂L/∂A[j, :] = (2 / m) Σ_i G[i, j] x_i
        Arrays.fill(ga, 0.0);
        double ca = 2.0 / mb;
        for (int i = 0; i < mb; i++) {
            int xr = i * dIn;
            for (int j = 0; j < r; j++) {
                double g = ca * ws.gt[j * ws.m + i];
                int gr = j * dIn;
                for (int c = 0; c < dIn; c++) ga[gr + c] += g * ws.xb[xr + c];
            }
        }
        return loss;
    }

    /** Reused batch arrays. */
    static final class Workspace {
        final int m, r, dIn, dOut;
        final double[] xb, xbt, tb, ht, h, e, et, gt;

        Workspace(int m, int r, int dIn, int dOut) {
            this.m = m;
            this.r = r;
            this.dIn = dIn;
            this.dOut = dOut;
            xb = new double[m * dIn];
            xbt = new double[dIn * m];
            tb = new double[m * dOut];
            ht = new double[r * m];
            h = new double[m * r];
            e = new double[m * dOut];
            et = new double[dOut * m];
            gt = new double[r * m];
        }

        /** Copies samples {@code order[start..start+mb)} into the batch arrays. */
        void gather(double[] x, double[] t, int[] order, int start, int mb) {
            for (int i = 0; i < mb; i++) {
                int src = order[start + i];
                System.arraycopy(x, src * dIn, xb, i * dIn, dIn);
                System.arraycopy(t, src * dOut, tb, i * dOut, dOut);
            }
        }

        /** Copies samples {@code start..start+mb} into the batch arrays. */
        void gatherRange(double[] x, double[] t, int start, int mb) {
            System.arraycopy(x, start * dIn, xb, 0, mb * dIn);
            System.arraycopy(t, start * dOut, tb, 0, mb * dOut);
        }

        /** {@code H = X Aᵀ}, {@code E = s H B^T − T} (B held as Bᵀ); returns the mean of {@code ‖E_i‖²}. */
        double forward(int mb, double s, double[] a, double[] bt) {
            for (int i = 0; i < mb; i++) {
                for (int c = 0; c < dIn; c++) xbt[c * m + i] = xb[i * dIn + c];
            }
            Arrays.fill(ht, 0.0);
            for (int j = 0; j < r; j++) {
                int hr = j * m, ar = j * dIn;
                for (int c = 0; c < dIn; c++) {
                    double ajc = a[ar + c];
                    int xr = c * m;
                    for (int i = 0; i < mb; i++) ht[hr + i] += ajc * xbt[xr + i];
                }
            }
            for (int i = 0; i < mb; i++) {
                for (int j = 0; j < r; j++) h[i * r + j] = ht[j * m + i];
            }
            double sum = 0;
            for (int i = 0; i < mb; i++) {
                int er = i * dOut;
                for (int o = 0; o < dOut; o++) e[er + o] = -tb[er + o];
                for (int j = 0; j < r; j++) {
                    double hs = s * h[i * r + j];
                    int br = j * dOut;
                    for (int o = 0; o < dOut; o++) e[er + o] += hs * bt[br + o];
                }
                for (int o = 0; o < dOut; o++) sum += e[er + o] * e[er + o];
            }
            return sum / mb;
        }
    }

    /** Adam state of one parameter array (β1 = 0.9, β2 = 0.999, ε = 1e-8, bias-corrected). */
    static final class Adam {
        private static final double BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;
        private final double[] mom, vel;
        private int t;

        Adam(int size) {
            mom = new double[size];
            vel = new double[size];
        }

        void step(double[] p, double[] g, double lr) {
            t++;
            double c1 = 1 - Math.pow(BETA1, t), c2 = 1 - Math.pow(BETA2, t);
            double step = lr / c1, invC2 = 1.0 / c2;
            for (int i = 0; i < p.length; i++) {
                mom[i] = BETA1 * mom[i] + (1 - BETA1) * g[i];
                vel[i] = BETA2 * vel[i] + (1 - BETA2) * g[i] * g[i];
                p[i] -= step * mom[i] / (Math.sqrt(vel[i] * invC2) + EPS);
            }
        }
    }
}
