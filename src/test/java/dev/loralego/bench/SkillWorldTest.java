package dev.loralego.bench;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The synthetic world: orthonormal skills, task skill sets, OOD novelty, sample statistics, determinism. */
class SkillWorldTest {

    private static final SkillWorld.Config CONFIG = new SkillWorld.Config(48, 12, 10, 6, 4, 3, 5, 0.5, 2.0, 0.05, 0.1);

    @Test
    void tasksAndOutOfDomainCombinationsFollowTheRules() {
        SkillWorld w = SkillWorld.generate(CONFIG, 2L);
        for (SkillWorld.Task t : w.tasks()) {
            int[] s = t.skills();
            assertTrue(s.length >= 3 && s.length <= 5, t.name());
            for (int i = 1; i < s.length; i++) assertTrue(s[i] > s[i - 1], "sorted and distinct: " + t.name());
        }
        int[] seen = w.skillsOfFirstTasks(CONFIG.mergedTasks());
        for (SkillWorld.Task ood : w.oodTasks()) {
            assertTrue(ood.outOfDomain());
            for (int s : ood.skills()) assertTrue(Arrays.binarySearch(seen, s) >= 0, "OOD uses seen skills only");
            for (SkillWorld.Task t : w.tasks().subList(0, CONFIG.mergedTasks())) {
                boolean subset = Arrays.stream(ood.skills()).allMatch(s -> Arrays.binarySearch(t.skills(), s) >= 0);
                assertFalse(subset, ood.name() + " is a subset of " + t.name());
            }
        }
        assertEquals(seen.length, w.distinctSkills(CONFIG.mergedTasks()));
    }

    @Test
    void skillDirectionsAreOrthonormalAndTheTrueUpdateIsTheirSum() {
        SkillWorld w = SkillWorld.generate(CONFIG, 3L);
        int d = w.dim();
        SkillWorld.Task t = w.tasks().get(0);
        double[][] f = w.skillFactors(t.skills());
        int k = t.skills().length;
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += f[0][i * d + c] * f[0][j * d + c];
                assertEquals(i == j ? 1.0 : 0.0, dot, 1e-12, "v_" + i + "·v_" + j);
            }
        }
        double[] dense = w.trueDeltaW(t);
        for (int o = 0; o < d; o++) {
            for (int c = 0; c < d; c++) {
                double v = 0;
                for (int j = 0; j < k; j++) v += f[1][o * k + j] * f[0][j * d + c];
                assertEquals(dense[o * d + c], v, 1e-12);
            }
        }
    }

    @Test
    void samplesHaveTheStatedNoiseAndAreDeterministic() {
        SkillWorld w = SkillWorld.generate(CONFIG, 4L);
        SkillWorld.Task t = w.tasks().get(2);
        int n = 4000, d = w.dim();
        SkillWorld.Samples s = w.sample(t, n, new SplittableRandom(5));
        double[] dw = w.trueDeltaW(t);
        double noise = 0;
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < d; o++) {
                double pred = s.base()[i * d + o];
                for (int c = 0; c < d; c++) pred += dw[o * d + c] * s.x()[i * d + c];
                double e = s.y()[i * d + o] - pred;
                noise += e * e;
            }
        }
        assertEquals(CONFIG.outputNoise() * CONFIG.outputNoise(), noise / (n * d), 0.05 * CONFIG.outputNoise() * CONFIG.outputNoise());
        SkillWorld.Samples again = SkillWorld.generate(CONFIG, 4L).sample(t, n, new SplittableRandom(5));
        assertArrayEquals(s.y(), again.y(), 0.0);
    }
}
