package dev.loralego.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@code run --threads}: an explicit count wins; 0 means one per core, never more than there are partitions. */
class RunCommandThreadsTest {

    @Test
    void zeroMeansOnePerCoreCappedByThePartitions() {
        int cores = Runtime.getRuntime().availableProcessors();
        assertEquals(3, RunCommand.streamThreads(3, 8));
        assertEquals(5, RunCommand.streamThreads(5, 2), "explicit: the user's choice, even beyond the partitions");
        assertEquals(1, RunCommand.streamThreads(0, 1));
        assertEquals(Math.min(cores, 4), RunCommand.streamThreads(0, 4));
        assertEquals(cores, RunCommand.streamThreads(0, cores + 100));
        assertThrows(IllegalArgumentException.class, () -> RunCommand.streamThreads(-1, 4));
    }
}
