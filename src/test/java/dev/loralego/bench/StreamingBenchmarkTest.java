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
        assertTrue(r.summary().contains("published back to back"), r.summary());
        assertTrue(r.cacheHits() + r.cacheMisses() > 0, "module steps of the measured group were counted");
    }

    /** On a schedule, publish i starts no earlier than i · interval after the first; the summary says how they came. */
    @Test
    void publishesFollowTheSchedule() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        StreamingBenchmark.Result r = StreamingBenchmark.run(new StreamingBenchmark.Setup("tiny", 3, 4, DType.BF16,
                MergeParameters.defaults(), dir, 1, 1, 0, Map.of(), 1.5), new PrintStream(log, true, StandardCharsets.UTF_8));
        assertEquals(3, r.latenciesMs().length);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("published 3 adapters in ([0-9.]+) s")
                .matcher(log.toString(StandardCharsets.UTF_8));
        assertTrue(m.find(), log.toString(StandardCharsets.UTF_8));
        assertTrue(Double.parseDouble(m.group(1)) >= 3.0, "the third publish starts 2 x 1.5 s after the first: " + m.group());
        assertTrue(r.summary().contains("published every 1.50 s"), r.summary());
        assertThrows(IllegalArgumentException.class, () -> new StreamingBenchmark.Setup("tiny", 3, 4, DType.BF16,
                MergeParameters.defaults(), dir, 1, 1, 0, Map.of(), -1));
    }

    @Test
    void negativeWarmUpIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new StreamingBenchmark.Setup("tiny", 3, 4, DType.BF16,
                MergeParameters.defaults(), dir, 1, 1, -1, Map.of()));
    }
}
