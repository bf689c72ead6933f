package dev.loralego.bench.jmh;

import dev.loralego.lego.ClusteringResult;
import dev.loralego.lego.FeatureNorm;
import dev.loralego.lego.RankWiseClustering;
import dev.loralego.lego.SquaredDistances;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The k-means kernels of rank-wise clustering at the {@code llama-7b} shape of the merge benchmark (8 adapters of
 * rank 16: a pool of 128 units; {@code mlp} modules: 4096 + 11008 = 15104 dims; k = 16), beside two plain
 * measurements in the same run that bound what the JVM can do here:
 * <ul>
 *   <li>{@link #assign}: {@link SquaredDistances#compute}, {@code 2 n k dim} flops;</li>
 *   <li>{@link #lloydStep}: one Lloyd iteration through {@link RankWiseClustering#lloyd} (assignment, centroid
 *       update, inertia), {@code 2 n k dim + 7 n dim} flops;</li>
 *   <li>{@link #naiveDots}: the same {@code n × k} dot products as plain one-accumulator Java loops (what a
 *       straightforward implementation reaches);</li>
 *   <li>{@link #axpyInCache}: {@code y += a v} over two {@code n k}-vectors in L1, repeated {@code dim} times
 *       ({@code 2 n k dim} flops): the vectorised multiply-add throughput of the JIT, the compute ceiling for plain
 *       Java on this machine;</li>
 *   <li>{@link #streamTriad} and {@link #streamSum}: memory bandwidth (STREAM triad {@code a = b + s c}, counted as
 *       24 bytes per element, and a read-only sum, 8 bytes per element) over 256 MiB arrays.</li>
 * </ul>
 * {@code PerfReport} turns the times into GFLOP/s and GB/s from these counts.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx3g"})
public class KMeansKernelBenchmark {

    @Param("128")
    public int n;
    @Param("15104")
    public int dim;
    @Param("16")
    public int k;

    private double[] x, xNorms, c, cNorms, dist, y, v;
    private UnitPool pool;
    private RankWiseClustering oneStep;

    @Setup
    public void setup() {
        SplittableRandom rng = new SplittableRandom(7);
        x = new double[n * dim];
        for (int i = 0; i < x.length; i++) x[i] = rng.nextGaussian() * 0.02;
        c = new double[k * dim];
        for (int j = 0; j < k; j++) {
            int src = (j * 7) % n;
            for (int d = 0; d < dim; d++) c[j * dim + d] = x[src * dim + d] + 0.001 * rng.nextGaussian();
        }
        xNorms = new double[n];
        cNorms = new double[k];
        SquaredDistances.rowNorms(x, n, dim, xNorms);
        SquaredDistances.rowNorms(c, k, dim, cNorms);
        dist = new double[n * k];
        y = new double[n * k];
        v = new double[n * k];
        for (int i = 0; i < v.length; i++) v[i] = rng.nextGaussian();
        double[] w = new double[n];
        int[] owner = new int[n], rank = new int[n];
        for (int i = 0; i < n; i++) {
            w[i] = 1.0;
            owner[i] = i / 16;
            rank[i] = i % 16;
        }
        int dIn = 4096;
        pool = new UnitPool(dIn, dim - dIn, x, w, owner, rank);
        oneStep = new RankWiseClustering(1, 1, FeatureNorm.NONE);
    }

    /** Large arrays of the bandwidth measurements (allocated only for those benchmarks). */
    @State(Scope.Thread)
    public static class Stream {
        @Param("33554432")
        public int length;
        double[] a, b, cc;

        @Setup
        public void setup() {
            a = new double[length];
            b = new double[length];
            cc = new double[length];
            for (int i = 0; i < length; i++) {
                b[i] = i * 1e-9;
                cc[i] = 1 - i * 1e-9;
            }
        }
    }

    @Benchmark
    public double[] assign() {
        SquaredDistances.compute(x, xNorms, n, c, cNorms, k, dim, dist);
        return dist;
    }

    @Benchmark
    public ClusteringResult lloydStep() {
        return oneStep.lloyd(pool, c, null, null);
    }

    @Benchmark
    public double naiveDots() {
        double total = 0;
        for (int i = 0; i < n; i++) {
            int xr = i * dim;
            for (int j = 0; j < k; j++) {
                int cr = j * dim;
                double s = 0;
                for (int d = 0; d < dim; d++) s += x[xr + d] * c[cr + d];
                total += s;
            }
        }
        return total;
    }

    @Benchmark
    public double[] axpyInCache() {
        // y += a·v over two (n·k)-vectors (16 KiB each for the default shape: in L1), dim times: n·k·dim
        // multiply-adds, the same count as the kernel, in the simplest loop the JIT vectorises
        double[] yy = y, vv = v;
        int len = yy.length;
        for (int rep = 0; rep < dim; rep++) {
            double a = 1e-12 * (rep & 7);
            for (int t = 0; t < len; t++) yy[t] += a * vv[t];
        }
        return yy;
    }

    @Benchmark
    public double[] streamTriad(Stream s) {
        double[] a = s.a, b = s.b, cc = s.cc;
        double q = 3.0;
        for (int i = 0; i < a.length; i++) a[i] = b[i] + q * cc[i];
        return a;
    }

    @Benchmark
    public double streamSum(Stream s) {
        double[] b = s.b;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int i = 0;
        for (; i + 8 <= b.length; i += 8) {
            s0 += b[i];
            s1 += b[i + 1];
            s2 += b[i + 2];
            s3 += b[i + 3];
            s4 += b[i + 4];
            s5 += b[i + 5];
            s6 += b[i + 6];
            s7 += b[i + 7];
        }
        for (; i < b.length; i++) s0 += b[i];
        return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    }
}
