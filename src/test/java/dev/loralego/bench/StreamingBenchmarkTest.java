package dev.loralego.bench;

import dev.loralego.peft.DType;
import dev.loralego.stream.MergeParameters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bench stream} at CI scale (its full-size figures are in the README): with a warm-up group first, the
 * measured group's versions alone are timed, one per adapter, and the summary says the JVM was warmed up.
 */
class StreamingBenchmarkTest {
    @TempDir
    Path dir;

    @Test
    void warmUpGroupIsMergedFirstAndOnlyTheMeasuredVersionsAreTimed() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        StreamingBenchmark.Result r = StreamingBenchmark.run(new StreamingBenchmark.Setup("tiny", 3, 4, DType.BF16,
                MergeParameters.defaults(), dir, 1, 1, 2, Map.of()), new PrintStream(log, true, StandardCharsets.UTF_8));
        assertEquals(3, r.latenciesMs().length, "one latency per measured adapter");
        assertTrue(Arrays.stream(r.latenciesMs()).allMatch(v -> v >= 0), Arrays.toString(r.latenciesMs()));
        String progress = log.toString(StandardCharsets.UTF_8);
        assertTrue(progress.contains("warm-up: 2 adapters merged and withdrawn"), progress);
        assertTrue(r.summary().contains("after a warm-up of 2 adapters"), r.summary());
        assertTrue(r.cacheHits() + r.cacheMisses() > 0, "module steps of the measured group were counted");
    }

    @Test
    void negativeWarmUpIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StreamingBenchmark.Setup("tiny", 3, 4, DType.BF16,
                MergeParameters.defaults(), dir, 1, 1, -1, Map.of()));
    }
}
