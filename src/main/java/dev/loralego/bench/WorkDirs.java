package dev.loralego.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The working directories of the benchmarks and the demo: recreated empty at each run. Only a directory that one
 * of them created is deleted: an existing directory must be empty, carry the {@link #MARKER} file written at
 * creation, or (directories of builds before the marker) hold nothing but the entries they create, among them
 * {@code kafka} and {@code streams}. Anything else (a user's directory given as {@code --dir}, a file) is refused
 * and left as it is.
 */
public final class WorkDirs {
    /** Written into every directory {@link #recreate} creates. */
    public static final String MARKER = ".lora-lego-workdir";
    /** The top-level entries the demo and the benchmarks create. */
    private static final Set<String> OWN_ENTRIES =
            Set.of(MARKER, "adapters", "kafka", "streams", "merged", "offline-merge", "warmup");

    private WorkDirs() {
    }

    /**
     * Deletes {@code dir} with everything in it, if it exists and is a working directory of this tool, and creates
     * it again, empty (but for the marker).
     *
     * @throws IllegalArgumentException when {@code dir} exists and is not such a directory (nothing is deleted)
     */
    public static void recreate(Path dir) throws IOException {
        if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            requireOwn(dir);
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path f : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(f);
            }
        }
        Files.createDirectories(dir);
        Files.createFile(dir.resolve(MARKER));
    }

    private static void requireOwn(Path dir) throws IOException {
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException(dir + " exists and is not a directory; choose another working directory");
        }
        List<String> entries = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.forEach(p -> entries.add(p.getFileName().toString()));
        }
        if (entries.isEmpty() || entries.contains(MARKER)) return;
        boolean oldLayout = OWN_ENTRIES.containsAll(entries) && entries.contains("kafka") && entries.contains("streams");
        if (!oldLayout) {
            List<String> foreign = entries.stream().filter(e -> !OWN_ENTRIES.contains(e)).sorted().limit(5).toList();
            throw new IllegalArgumentException(dir + " is not a working directory of lora-lego (it holds "
                    + (foreign.isEmpty() ? entries.stream().sorted().limit(5).toList() : foreign)
                    + "); it would be deleted and recreated: choose another or an empty directory");
        }
    }
}
