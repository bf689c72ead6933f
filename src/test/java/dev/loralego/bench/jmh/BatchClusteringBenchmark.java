package dev.loralego.bench.jmh;

import dev.loralego.lego.ClusteringResult;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.RankWiseClustering;
import dev.loralego.lego.UnitPool;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The batch k-means of one {@code llama-7b} MLP module ({@code dim = 4096 + 11008}, k = 16, 4 restarts) in its two
 * forms: {@link RankWiseClustering#cluster} (on the Gram matrix for pools up to {@code 8 · nInit · k} units) and
 * {@link RankWiseClustering#clusterDirect}. {@code n = 32} is the first fill of a streaming module (two rank-16
 * adapters), 128 the offline merge of 8 adapters, 320 a re-clustering after 20. Units: 32 shared directions with
 * per-unit magnitude and 30% noise, A entries of scale 1/64 and B of 1e-2 (the statistics of {@code synth}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx3g"})
public class BatchClusteringBenchmark {

    @Param({"32", "128", "320"})
    public int n;

    private UnitPool pool;
    private RankWiseClustering clustering;

    @Setup
    public void setup() {
        int dIn = 4096, dOut = 11008, dim = dIn + dOut, directions = 32;
        SplittableRandom rng = new SplittableRandom(1);
        double[][] shared = new double[directions][dim];
        for (double[] s : shared) {
            for (int d = 0; d < dim; d++) s[d] = rng.nextGaussian() * (d < dIn ? 1 / 64.0 : 1e-2);
        }
        double[] units = new double[n * dim];
        for (int i = 0; i < n; i++) {
            double[] s = shared[rng.nextInt(directions)];
            double c = 0.5 + rng.nextDouble();
            for (int d = 0; d < dim; d++) {
                units[i * dim + d] = c * s[d] + 0.3 * rng.nextGaussian() * (d < dIn ? 1 / 64.0 : 1e-2);
            }
        }
        double[] w = new double[n];
        Arrays.fill(w, 1.0);
        int[] owner = new int[n], rank = new int[n];
        for (int i = 0; i < n; i++) {
            owner[i] = i / 16;
            rank[i] = i % 16;
        }
        pool = new UnitPool(dIn, dOut, units, w, owner, rank);
        clustering = new RankWiseClustering(4, 300, FeatureNorm.NONE);
    }

    @Benchmark
    public ClusteringResult cluster() {
        return clustering.cluster(pool, 16, 42);
    }

    @Benchmark
    public ClusteringResult clusterDirect() {
        return clustering.clusterDirect(pool, 16, 42);
    }
}
