package dev.loralego.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code demo --dir} on a user's directory is refused before anything is deleted or started. */
class DemoDirTest {
    @TempDir
    Path tmp;

    @Test
    void demoRefusesADirectoryWithUserFilesAndKeepsThem() throws IOException {
        Path dir = tmp.resolve("mine");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("thesis.txt"), "precious");
        CommandRun run = CommandRun.of("demo", "--dir", dir.toString());
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().contains("thesis.txt"), run::toString);
        assertEquals("precious", Files.readString(dir.resolve("thesis.txt")));
        assertFalse(Files.exists(dir.resolve("kafka")));
    }

    /** With one adapter the demo started a broker and the service, published, then died on "Index 1 out of bounds". */
    @Test
    void demoRefusesFewerThanTwoAdaptersBeforeTouchingItsDirectory() {
        Path dir = tmp.resolve("one");
        CommandRun run = CommandRun.of("demo", "--adapters", "1", "--dir", dir.toString());
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().contains("--adapters must be >= 2"), run::toString);
        assertFalse(Files.exists(dir));
    }
}
