package dev.loralego.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** The working directories of the benchmarks and the demo: recreated empty at each run. */
public final class WorkDirs {
    private WorkDirs() {
    }

    /** Deletes {@code dir} with everything in it, if it exists, and creates it again, empty. */
    public static void recreate(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path f : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(f);
            }
        }
        Files.createDirectories(dir);
    }
}
