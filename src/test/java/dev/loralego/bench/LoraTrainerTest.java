package dev.loralego.bench;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA training: analytic gradients against finite differences, PEFT initialisation, convergence, determinism. */
class LoraTrainerTest {

    /** Relative agreement of analytic and central-difference gradients. */
    private static final double GRADIENT_TOL = 1e-6;
    private static final double STEP = 1e-6;

    private static SkillWorld tinyWorld() {
        return SkillWorld.generate(new SkillWorld.Config(12, 6, 3, 2, 0, 2, 3, 0.5, 2.0, 0.05, 0.05), 3L);
    }

    /** Mean loss of a batch computed directly, for finite differences: {@code mean ‖s B A x − t‖²} (B given as Bᵀ). */
    private static double directLoss(double[] x, double[] t, int m, int d, int r, double s, double[] a, double[] bt) {
        double sum = 0;
        for (int i = 0; i < m; i++) {
            double[] h = new double[r];
            for (int j = 0; j < r; j++) for (int c = 0; c < d; c++) h[j] += a[j * d + c] * x[i * d + c];
            for (int o = 0; o < d; o++) {
                double y = 0;
                for (int j = 0; j < r; j++) y += s * bt[j * d + o] * h[j];
                double e = y - t[i * d + o];
                sum += e * e;
            }
        }
        return sum / m;
    }

    @Test
    void gradientsMatchCentralFiniteDifferences() {
        SkillWorld world = tinyWorld();
        SkillWorld.Samples batch = world.sample(world.tasks().get(0), 5, new SplittableRandom(1));
        int d = world.dim(), r = 3, m = batch.n();
        double s = 1.7;
        SplittableRandom rng = new SplittableRandom(2);
        double[] a = new double[r * d], bt = new double[r * d];
        for (int i = 0; i < a.length; i++) a[i] = rng.nextGaussian();
        for (int i = 0; i < bt.length; i++) bt[i] = rng.nextGaussian() * 0.1;
        double[] t = batch.residualTargets();
        LoraTrainer.Workspace ws = new LoraTrainer.Workspace(m, r, d, d);
        ws.gatherRange(batch.x(), t, 0, m);
        double[] ga = new double[a.length], gbt = new double[bt.length];
        double loss = LoraTrainer.lossAndGradient(ws, m, s, a, bt, ga, gbt);
        assertEquals(directLoss(batch.x(), t, m, d, r, s, a, bt), loss, 1e-12 * loss);
        for (int i = 0; i < a.length; i++) {
            double keep = a[i];
            a[i] = keep + STEP;
            double up = directLoss(batch.x(), t, m, d, r, s, a, bt);
            a[i] = keep - STEP;
            double down = directLoss(batch.x(), t, m, d, r, s, a, bt);
            a[i] = keep;
            double fd = (up - down) / (2 * STEP);
            assertEquals(fd, ga[i], GRADIENT_TOL * Math.max(1, Math.abs(fd)), "dL/dA[" + i + "]");
        }
        for (int i = 0; i < bt.length; i++) {
            double keep = bt[i];
            bt[i] = keep + STEP;
            double up = directLoss(batch.x(), t, m, d, r, s, a, bt);
            bt[i] = keep - STEP;
            double down = directLoss(batch.x(), t, m, d, r, s, a, bt);
            bt[i] = keep;
            double fd = (up - down) / (2 * STEP);
            assertEquals(fd, gbt[i], GRADIENT_TOL * Math.max(1, Math.abs(fd)), "dL/dBᵀ[" + i + "]");
        }
    }

    @Test
    void initialisationIsPeftKaimingUniformAndSeeded() {
        int r = 8, dIn = 400;
        double[] a = LoraTrainer.kaimingUniformA(r, dIn, 11L);
        double bound = 1.0 / Math.sqrt(dIn), max = 0, sumSq = 0;
        for (double v : a) {
            max = Math.max(max, Math.abs(v));
            sumSq += v * v;
        }
        assertTrue(max <= bound, "within ±1/sqrt(dIn)");
        assertTrue(max > 0.99 * bound, "fills the interval");
        // variance of U(-b, b) is b²/3
        assertEquals(bound * bound / 3, sumSq / a.length, 0.1 * bound * bound / 3);
        assertArrayEquals(a, LoraTrainer.kaimingUniformA(r, dIn, 11L), 0.0);
        assertTrue(a[0] != LoraTrainer.kaimingUniformA(r, dIn, 12L)[0]);
    }

    @Test
    void trainingReachesTheNoiseFloorAndIsDeterministic() {
        SkillWorld world = SkillWorld.generate(new SkillWorld.Config(32, 8, 2, 2, 0, 3, 3, 0.5, 2.0, 0.05, 0.05), 5L);
        SkillWorld.Task task = world.tasks().get(0);
        SplittableRandom data = new SplittableRandom(9);
        SkillWorld.Samples train = world.sample(task, 512, data), val = world.sample(task, 256, data);
        LoraTrainer.Config cfg = new LoraTrainer.Config(4, 8, 32, 5e-3, 200, 5, 1e-3);
        LoraTrainer.Result r = LoraTrainer.train(train, val, cfg, 1L, 2L);
        assertTrue(r.bestValLoss() < 0.2 * r.initialValLoss(),
                "validation loss " + r.bestValLoss() + " vs base " + r.initialValLoss());
        // the label noise alone costs d σ_y² per sample; a good fit is within 25 % of that
        double floor = 32 * 0.05 * 0.05;
        assertTrue(r.bestValLoss() < 1.25 * floor, "validation loss " + r.bestValLoss() + " vs noise floor " + floor);
        assertTrue(r.bestEpoch() >= 1 && r.bestEpoch() <= r.epochs());
        LoraTrainer.Result again = LoraTrainer.train(train, val, cfg, 1L, 2L);
        assertArrayEquals(r.a(), again.a(), 0.0);
        assertArrayEquals(r.b(), again.b(), 0.0);
        assertEquals(2.0, r.scaling(), 0.0);
    }
}
