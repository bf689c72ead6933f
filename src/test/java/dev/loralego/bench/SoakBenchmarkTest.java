package dev.loralego.bench;

import dev.loralego.lego.LegoOptions;
import dev.loralego.stream.MergeParameters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The soak at CI scale (the same code path as {@code bench soak}, whose full-size figures are in
 * docs/reliability.md): several groups, random withdrawals, a real broker; every group's final version equals
 * the offline merge of its live set, bit for bit, and every event became exactly one version.
 */
class SoakBenchmarkTest {
    @TempDir
    Path dir;

    @Test
    void finalVersionsEqualTheOfflineMergeOfEachGroupsLiveSet() throws Exception {
        MergeParameters params = new MergeParameters(LegoOptions.defaults().withK(3), 1, "recluster", 1.0, "F32", 64);
        SoakBenchmark.Result r = SoakBenchmark.run(new SoakBenchmark.Setup(4, 32, 0.25, 2, params, dir, 11),
                new PrintStream(new ByteArrayOutputStream()));
        assertTrue(r.mismatchedGroups().isEmpty(), () -> "groups differing from the offline merge: " + r.mismatchedGroups());
        assertTrue(r.events() > 32, "some withdrawals happened: " + r.events() + " events");
        assertEquals(r.events(), r.versions(), "every publish and withdrawal became exactly one version");
        assertTrue(r.heap().size() > 0);
    }
}
