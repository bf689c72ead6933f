package dev.loralego.bench;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The moment-based held-out loss against a per-sample loop, and the normalised gain. */
class HeldOutLossTest {

    private static final double LOSS_TOL = 1e-10;

    @Test
    void momentLossEqualsThePerSampleLoss() {
        SkillWorld world = SkillWorld.generate(new SkillWorld.Config(10, 5, 2, 2, 0, 2, 3, 0.5, 2.0, 0.1, 0.1), 4L);
        SkillWorld.Samples s = world.sample(world.tasks().get(1), 200, new SplittableRandom(3));
        HeldOutLoss loss = HeldOutLoss.of(s);
        SplittableRandom rng = new SplittableRandom(8);
        int d = world.dim();
        for (int k : new int[]{1, 3, 7}) {
            double[] a = new double[k * d], b = new double[d * k];
            for (int i = 0; i < a.length; i++) a[i] = rng.nextGaussian();
            for (int i = 0; i < b.length; i++) b[i] = rng.nextGaussian() * 0.3;
            double scale = 0.75;
            // direct: mean ‖(W0 + scale·B A) x − y‖² with W0 from the world
            double sum = 0;
            for (int i = 0; i < s.n(); i++) {
                for (int o = 0; o < d; o++) {
                    double pred = 0;
                    for (int c = 0; c < d; c++) {
                        double w = world.w0()[o * d + c];
                        for (int j = 0; j < k; j++) w += scale * b[o * k + j] * a[j * d + c];
                        pred += w * s.x()[i * d + c];
                    }
                    double e = pred - s.y()[i * d + o];
                    sum += e * e;
                }
            }
            double direct = sum / s.n();
            assertEquals(direct, loss.loss(k, a, b, scale), LOSS_TOL * direct, "rank " + k);
        }
        double base = 0;
        for (int i = 0; i < s.n() * d; i++) base += (s.y()[i] - s.base()[i]) * (s.y()[i] - s.base()[i]);
        assertEquals(base / s.n(), loss.baseLoss(), LOSS_TOL * base);
        assertEquals(loss.baseLoss(), loss.loss(1, new double[d], new double[d], 1.0), LOSS_TOL * base);
    }

    @Test
    void normalisedGainIsOneForOwnZeroForBaseAndRefusesAUselessOwnAdapter() {
        assertEquals(1.0, HeldOutLoss.normalisedGain(4.0, 1.0, 1.0), 0.0);
        assertEquals(0.0, HeldOutLoss.normalisedGain(4.0, 1.0, 4.0), 0.0);
        assertEquals(0.5, HeldOutLoss.normalisedGain(4.0, 1.0, 2.5), 0.0);
        assertEquals(-1.0, HeldOutLoss.normalisedGain(4.0, 1.0, 7.0), 0.0);
        assertThrows(IllegalArgumentException.class, () -> HeldOutLoss.normalisedGain(4.0, 4.0, 1.0));
    }
}
