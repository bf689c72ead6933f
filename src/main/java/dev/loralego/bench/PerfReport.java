package dev.loralego.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.ToDoubleFunction;

/**
 * Turns JMH JSON results ({@code -rf json}) of the benchmarks in {@code src/test/java/dev/loralego/bench/jmh} into
 * {@code docs/results/perf.md}: time per operation, and throughput (GFLOP/s or GB/s, from the work each benchmark
 * does per operation, documented on the benchmark classes) beside the plain reference measurement of the same run
 * (vectorised multiply-add in cache for the kernels, raw file read for safetensors).
 *
 * <p>A result file may be labelled {@code LABEL=FILE} (e.g. {@code before=jmh-before.json}) to show the same
 * benchmarks at two commits.
 */
public final class PerfReport {

    private static final double GIB = 1024.0 * 1024 * 1024;
    private static final double MIB = 1024.0 * 1024;

    /** How to turn one benchmark's time into throughput. */
    private record Work(String unit, ToDoubleFunction<Map<String, String>> perOp, String reference, String what) {
    }

    private static final Map<String, Work> WORK = new LinkedHashMap<>();

    static {
        ToDoubleFunction<Map<String, String>> nkd = p -> 2.0 * num(p, "n") * num(p, "k") * num(p, "dim");
        WORK.put("KMeansKernelBenchmark.assign", new Work("GFLOP/s", nkd, "KMeansKernelBenchmark.axpyInCache",
                "k-means assignment kernel (`SquaredDistances.compute`)"));
        WORK.put("KMeansKernelBenchmark.lloydStep", new Work("GFLOP/s",
                p -> 2.0 * num(p, "n") * num(p, "k") * num(p, "dim") + 7.0 * num(p, "n") * num(p, "dim"),
                "KMeansKernelBenchmark.axpyInCache", "one Lloyd step (`RankWiseClustering.lloyd`, 1 iteration)"));
        WORK.put("KMeansKernelBenchmark.naiveDots", new Work("GFLOP/s", nkd, "KMeansKernelBenchmark.axpyInCache",
                "reference: the same dot products as plain one-accumulator loops"));
        WORK.put("KMeansKernelBenchmark.axpyInCache", new Work("GFLOP/s", nkd, null,
                "reference: vectorised `y += a·x` in cache (JIT multiply-add ceiling)"));
        WORK.put("KMeansKernelBenchmark.streamTriad", new Work("GB/s", p -> 24.0 * num(p, "length"), null,
                "reference: memory bandwidth, STREAM triad (24 B/element)"));
        WORK.put("KMeansKernelBenchmark.streamSum", new Work("GB/s", p -> 8.0 * num(p, "length"), null,
                "reference: memory bandwidth, read-only sum (8 B/element)"));
        ToDoubleFunction<Map<String, String>> file = p -> num(p, "fileMiB") * MIB;
        WORK.put("SafetensorsBenchmark.rawRead", new Work("GB/s", file, null,
                "reference: raw file read (`FileChannel` into a direct buffer)"));
        WORK.put("SafetensorsBenchmark.readBf16ToF32", new Work("GB/s", file, "SafetensorsBenchmark.rawRead",
                "`SafetensorsFile.readFloats` of every tensor, BF16 file → float[]"));
        WORK.put("SafetensorsBenchmark.readF16ToF32", new Work("GB/s", file, "SafetensorsBenchmark.rawRead",
                "`SafetensorsFile.readFloats` of every tensor, F16 file → float[]"));
        ToDoubleFunction<Map<String, String>> chunk = p -> num(p, "chunkMiB") * MIB;
        WORK.put("SafetensorsBenchmark.convertBf16ToF32", new Work("GB/s", chunk, null,
                "`DTypeCodec.decode` BF16 → float[], in memory (source bytes)"));
        WORK.put("SafetensorsBenchmark.convertF16ToF32", new Work("GB/s", chunk, null,
                "`DTypeCodec.decode` F16 → float[], in memory (source bytes)"));
        WORK.put("MergeEndToEndBenchmark.merge", new Work(null, null, null,
                "`merge` end to end: 8 synthetic llama-7b rank-16 BF16 adapters, lego --k 16"));
    }

    /** The commands that produce the JMH result files this report reads. */
    static final String HOW_TO_RUN = """
            mvn -B package -DskipTests dependency:build-classpath -Dmdep.outputFile=target/cp.txt
            CP=target/test-classes:target/classes:$(cat target/cp.txt)
            java -cp $CP org.openjdk.jmh.Main KMeansKernelBenchmark -rf json -rff target/jmh-kernel.json
            java -cp $CP org.openjdk.jmh.Main SafetensorsBenchmark -rf json -rff target/jmh-safetensors.json
            java -cp $CP org.openjdk.jmh.Main MergeEndToEndBenchmark -wi 0 -i 2 -rf json -rff target/jmh-merge.json
            (lscpu | head -20; java -version 2>&1) > target/machine.txt
            java -jar target/lora-lego.jar bench perf-report --machine target/machine.txt --out docs/results \\
                --jmh target/jmh-kernel.json target/jmh-safetensors.json target/jmh-merge.json
            """;

    private PerfReport() {
    }

    /** One benchmark result. */
    record Row(String label, String benchmark, Map<String, String> params, String mode, double secondsPerOp,
               double errorSeconds, int samples) {
        String key() {
            return benchmark.substring(benchmark.lastIndexOf('.', benchmark.lastIndexOf('.') - 1) + 1);
        }
    }

    /**
     * Renders the report.
     *
     * @param jmhFiles JMH JSON files, optionally {@code LABEL=FILE}
     * @param machine  the machine description (e.g. {@code lscpu | head -20}, {@code java -version}), or null
     * @param command  the command that ran the benchmarks and this report
     */
    public static String markdown(List<Path> jmhFiles, String machine, String command) throws IOException {
        Objects.requireNonNull(jmhFiles, "jmhFiles");
        List<Row> rows = new ArrayList<>();
        for (Path p : jmhFiles) rows.addAll(parse(p));
        StringBuilder sb = new StringBuilder("# Performance (JMH)\n\n");
        sb.append("Benchmarks in `src/test/java/dev/loralego/bench/jmh`; report by `bench perf-report`:\n\n```\n")
                .append(command).append("\n```\n\n");
        sb.append("How to run (from the repository root; JMH's annotation processor runs in `test-compile`):\n\n```\n")
                .append(HOW_TO_RUN).append("```\n\n");
        if (machine != null) sb.append("## Machine\n\n```\n").append(machine.strip()).append("\n```\n\n");
        sb.append("## Results\n\n");
        sb.append("Throughput = work per operation (documented on each benchmark class) / mean time; ± = JMH's 99.9% "
                + "confidence half-width. \"vs reference\" compares with the plain measurement of the same run.\n\n");
        sb.append("| run | benchmark | what | params | time/op | throughput | vs reference |\n");
        sb.append("|---|---|---|---|---:|---:|---:|\n");
        for (Row r : rows) {
            Work w = WORK.get(r.key());
            String what = w == null ? "" : w.what();
            String tp = "", ref = "";
            if (w != null && w.unit() != null) {
                double work = w.perOp().applyAsDouble(r.params());
                double rate = work / r.secondsPerOp() / 1e9;
                tp = String.format(Locale.ROOT, "%.2f %s", rate, w.unit());
                if (r.errorSeconds() > 0 && Double.isFinite(r.errorSeconds())) {
                    double lo = work / (r.secondsPerOp() + r.errorSeconds()) / 1e9;
                    tp += String.format(Locale.ROOT, " (≥ %.2f)", lo);
                }
                if (w.reference() != null) {
                    Row refRow = find(rows, r.label(), w.reference());
                    if (refRow != null) {
                        Work rw = WORK.get(refRow.key());
                        double refRate = rw.perOp().applyAsDouble(refRow.params()) / refRow.secondsPerOp() / 1e9;
                        ref = String.format(Locale.ROOT, "%.0f%% of %s", 100 * rate / refRate, refRow.key().substring(refRow.key().indexOf('.') + 1));
                    }
                }
            }
            sb.append("| ").append(r.label()).append(" | ").append(r.key()).append(" | ").append(what).append(" | ")
                    .append(params(r.params())).append(" | ").append(time(r.secondsPerOp(), r.errorSeconds())).append(" | ")
                    .append(tp).append(" | ").append(ref).append(" |\n");
        }
        return sb.toString();
    }

    private static Row find(List<Row> rows, String label, String key) {
        for (Row r : rows) if (r.label().equals(label) && r.key().equals(key)) return r;
        return null;
    }

    private static String params(Map<String, String> p) {
        if (p.isEmpty()) return "";
        List<String> parts = new ArrayList<>();
        p.forEach((k, v) -> parts.add(k + "=" + v));
        return String.join(", ", parts);
    }

    private static String time(double s, double err) {
        String unit;
        double f;
        if (s >= 1) {
            unit = "s";
            f = 1;
        } else if (s >= 1e-3) {
            unit = "ms";
            f = 1e3;
        } else {
            unit = "µs";
            f = 1e6;
        }
        String out = String.format(Locale.ROOT, "%.3g %s", s * f, unit);
        if (err > 0 && Double.isFinite(err)) out += String.format(Locale.ROOT, " ± %.2g", err * f);
        return out;
    }

    /** Parses one JMH JSON file ({@code LABEL=FILE} gives the rows that label; otherwise the file name). */
    static List<Row> parse(Path spec) throws IOException {
        String s = spec.toString();
        String label;
        Path file;
        int eq = s.indexOf('=');
        if (eq > 0 && !Files.exists(spec)) {
            label = s.substring(0, eq);
            file = Path.of(s.substring(eq + 1));
        } else {
            file = spec;
            String name = file.getFileName().toString();
            label = name.endsWith(".json") ? name.substring(0, name.length() - 5) : name;
        }
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        if (root == null || !root.isArray()) throw new IllegalArgumentException(file + ": not a JMH JSON result array");
        List<Row> rows = new ArrayList<>();
        for (JsonNode b : root) {
            String bench = b.path("benchmark").asText();
            Map<String, String> params = new TreeMap<>();
            b.path("params").properties().forEach(e -> params.put(e.getKey(), e.getValue().asText()));
            JsonNode pm = b.path("primaryMetric");
            double f = toSeconds(pm.path("scoreUnit").asText(), file, bench);
            double score = pm.path("score").asDouble() * f;
            double err = pm.path("scoreError").isNumber() ? pm.path("scoreError").asDouble() * f : Double.NaN;
            int samples = 0;
            for (JsonNode fork : pm.path("rawData")) samples += fork.size();
            rows.add(new Row(label, bench, params, b.path("mode").asText(), score, err, samples));
        }
        return rows;
    }

    private static double toSeconds(String unit, Path file, String bench) {
        return switch (unit) {
            case "s/op" -> 1;
            case "ms/op" -> 1e-3;
            case "us/op" -> 1e-6;
            case "ns/op" -> 1e-9;
            default -> throw new IllegalArgumentException(file + ": benchmark " + bench + " has score unit '" + unit
                    + "'; expected a time per operation (use -bm avgt or ss)");
        };
    }

    private static double num(Map<String, String> p, String key) {
        String v = p.get(key);
        if (v == null) throw new IllegalArgumentException("JMH result lacks parameter '" + key + "'");
        return Double.parseDouble(v);
    }

    static double gib(double bytes) {
        return bytes / GIB;
    }
}
