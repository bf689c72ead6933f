package dev.loralego.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** JMH JSON to Markdown: throughput from the documented work counts, and the comparison with the reference. */
class PerfReportTest {

    private static String result(String bench, String params, double score, String unit) {
        return "{\"benchmark\":\"dev.loralego.bench.jmh." + bench + "\",\"mode\":\"avgt\",\"params\":{" + params + "},"
                + "\"primaryMetric\":{\"score\":" + score + ",\"scoreError\":0.5,\"scoreUnit\":\"" + unit + "\","
                + "\"rawData\":[[1,2,3]]}}";
    }

    @Test
    void kernelThroughputIsComputedFromTheShapeAndComparedWithTheReference(@TempDir Path dir) throws IOException {
        String shape = "\"dim\":\"15104\",\"k\":\"16\",\"n\":\"128\"";
        Path json = dir.resolve("after.json");
        Files.writeString(json, "[" + result("KMeansKernelBenchmark.assign", shape, 10.0, "ms/op") + ","
                + result("KMeansKernelBenchmark.axpyInCache", shape, 5.0, "ms/op") + ","
                + result("SafetensorsBenchmark.rawRead", "\"fileMiB\":\"1024\"", 0.5, "s/op") + "]");
        String md = PerfReport.markdown(List.of(json), "cpu: test", "cmd");
        // 2 · 128 · 16 · 15104 flops in 10 ms = 6.19 GFLOP/s; the reference does the same work in 5 ms
        assertTrue(md.contains("| after | KMeansKernelBenchmark.assign |"), md);
        assertTrue(md.contains("6.19 GFLOP/s"), md);
        assertTrue(md.contains("50% of axpyInCache"), md);
        // 1 GiB in 0.5 s = 2.15 GB/s
        assertTrue(md.contains("2.15 GB/s"), md);
        assertTrue(md.contains("cpu: test"), md);
    }

    @Test
    void labelledFilesAndBadUnitsAreHandled(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("x.json");
        Files.writeString(json, "[" + result("KMeansKernelBenchmark.assign", "\"dim\":\"4\",\"k\":\"2\",\"n\":\"2\"", 1.0, "us/op") + "]");
        String md = PerfReport.markdown(List.of(Path.of("before=" + json)), null, "cmd");
        assertTrue(md.contains("| before | KMeansKernelBenchmark.assign |"), md);
        Files.writeString(json, "[" + result("KMeansKernelBenchmark.assign", "\"dim\":\"4\",\"k\":\"2\",\"n\":\"2\"", 1.0, "ops/s") + "]");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PerfReport.markdown(List.of(json), null, "cmd"));
        assertTrue(e.getMessage().contains("ops/s"), e.getMessage());
    }
}
