package dev.loralego.bench;

import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The quality benchmark end to end on a tiny configuration (seconds): things that hold by construction, a gain
 * recomputed independently from the written PEFT files, determinism across thread counts, report and figures.
 */
class QualityBenchmarkTest {

    /** Gains that are exact up to F32 storage and rounding. */
    private static final double EXACT_GAIN_TOL = 1e-6;
    /** Independent recomputation of a gain (same data, different arithmetic order). */
    private static final double RECOMPUTE_TOL = 1e-9;

    @TempDir
    static Path tmp;

    private static QualityResults results;
    private static QualityConfig config;

    static QualityConfig tiny(Path work, int threads) {
        SkillWorld.Config world = new SkillWorld.Config(16, 8, 4, 3, 1, 2, 3, 0.5, 2.0, 0.05, 0.05);
        LoraTrainer.Config training = new LoraTrainer.Config(4, 8, 32, 5e-3, 100, 5, 1e-3);
        return new QualityConfig(world, training, 256, 128, 256, List.of(1L, 2L), List.of(1, 2), List.of(0.9),
                List.of(1, 2, 4), 1, 2, threads, work);
    }

    @BeforeAll
    static void run() throws IOException {
        config = tiny(tmp.resolve("work-a"), 1);
        results = QualityBenchmark.run(config, null);
    }

    private static MergeCase find(MergeCase.Section section, String method, String k, int adapters) {
        return results.cases().stream()
                .filter(c -> c.section() == section && c.method().equals(method) && c.k().equals(k) && c.adapters() == adapters)
                .findFirst().orElseThrow(() -> new AssertionError("no row " + method + " " + k + " " + adapters));
    }

    @Test
    void aSingleAdapterMergedByCatOrByLegoWithKAtItsRankIsItsOwnAdapter() {
        MergeCase cat = find(MergeCase.Section.ADAPTERS, "cat", QualityBenchmark.EXACT, 1);
        MergeCase lego = find(MergeCase.Section.ADAPTERS, "lego (svd)", "4", 1);
        for (QualityResults.Run run : results.runs()) {
            assertEquals(1.0, run.scores().get(cat.key()).inDomain(), EXACT_GAIN_TOL, "cat, " + run.regime() + " seed " + run.seed());
            assertEquals(1.0, run.scores().get(lego.key()).inDomain(), EXACT_GAIN_TOL, "lego, " + run.regime() + " seed " + run.seed());
        }
    }

    @Test
    void trainedAdaptersBeatTheBaseLayerByFar() {
        for (QualityResults.Run run : results.runs()) {
            assertTrue(run.training().meanValRatio() < 0.5, "validation loss / base " + run.training().meanValRatio());
            assertTrue(run.training().meanTestRatio() < 0.5, "held-out loss / base " + run.training().meanTestRatio());
        }
        MergeCase reference = find(MergeCase.Section.MAIN, "reference: ideal single update", "distinct skills", 3);
        assertTrue(results.inDomain(reference, InitRegime.SHARED_INIT).mean() > 0.9, "the ideal update is nearly as good as own adapters");
    }

    @Test
    void linearGainMatchesAnIndependentComputationFromThePeftFiles() throws IOException {
        long seed = 1L;
        InitRegime regime = InitRegime.OWN_INIT;
        int n = config.world().mergedTasks();
        SkillWorld world = SkillWorld.generate(config.world(), seed);
        int d = world.dim();
        double[][] own = new double[n][];
        for (int t = 0; t < n; t++) {
            Path dir = config.workDir().resolve("seed-" + seed).resolve(regime.dirName()).resolve(world.tasks().get(t).name());
            try (PeftAdapter a = PeftAdapter.open(dir)) {
                LoraModuleInfo info = a.module(QualityBenchmark.MODULE);
                assertEquals(config.training().scaling(), info.scaling(), 0.0, "alpha / r written into the config");
                own[t] = denseDeltaW(a.readA(QualityBenchmark.MODULE), a.readB(QualityBenchmark.MODULE), info.rank(), d, info.scaling());
            }
        }
        double[] average = new double[d * d];
        for (double[] w : own) for (int i = 0; i < w.length; i++) average[i] += w[i] / n;
        double gain = 0;
        for (int t = 0; t < n; t++) {
            SplittableRandom data = new SplittableRandom(Seeds.derive(seed, Seeds.DATA, t));
            SkillWorld.Task task = world.tasks().get(t);
            world.sample(task, config.trainSamples(), data);
            world.sample(task, config.valSamples(), data);
            SkillWorld.Samples test = world.sample(task, config.testSamples(), data);
            double base = perSampleLoss(world, test, new double[d * d]);
            gain += (base - perSampleLoss(world, test, average)) / (base - perSampleLoss(world, test, own[t]));
        }
        gain /= n;
        MergeCase linear = find(MergeCase.Section.MAIN, "linear", QualityBenchmark.EXACT, n);
        double reported = results.runs(regime).get(0).scores().get(linear.key()).inDomain();
        assertEquals(gain, reported, RECOMPUTE_TOL);
    }

    private static double[] denseDeltaW(double[] a, double[] b, int r, int d, double scale) {
        double[] w = new double[d * d];
        for (int o = 0; o < d; o++) {
            for (int c = 0; c < d; c++) {
                double s = 0;
                for (int j = 0; j < r; j++) s += b[o * r + j] * a[j * d + c];
                w[o * d + c] = scale * s;
            }
        }
        return w;
    }

    private static double perSampleLoss(SkillWorld world, SkillWorld.Samples s, double[] deltaW) {
        int d = world.dim();
        double sum = 0;
        for (int i = 0; i < s.n(); i++) {
            for (int o = 0; o < d; o++) {
                double pred = 0;
                for (int c = 0; c < d; c++) pred += (world.w0()[o * d + c] + deltaW[o * d + c]) * s.x()[i * d + c];
                double e = pred - s.y()[i * d + o];
                sum += e * e;
            }
        }
        return sum / s.n();
    }

    @Test
    void theReportIsIdenticalWhateverTheThreadCount() throws IOException {
        QualityResults other = QualityBenchmark.run(tiny(tmp.resolve("work-b"), 2), null);
        String a = QualityReport.markdown(results, "cmd"), b = QualityReport.markdown(other, "cmd");
        assertEquals(a, b);
        assertTrue(a.contains("## All methods") && a.contains("## Ablations") && a.contains("## k auto")
                && a.contains("## Number of adapters merged"), a);
    }

    @Test
    void figuresAreWrittenAsReadablePngs() throws IOException {
        Path out = tmp.resolve("figures");
        List<Path> files = QualityPlots.write(results, out);
        assertEquals(QualityReport.FIGURES.size(), files.size());
        for (Path f : files) {
            assertTrue(Files.size(f) > 10_000, f + " is too small to hold a chart");
            BufferedImage img = ImageIO.read(f.toFile());
            assertNotNull(img, f + " is not a PNG");
            assertTrue(img.getWidth() >= 1000 && img.getHeight() >= 400, f + " " + img.getWidth() + "x" + img.getHeight());
        }
    }
}
