package dev.loralego.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link WorkDirs#recreate} deletes only directories the demo and the benchmarks created. */
class WorkDirsTest {
    @TempDir
    Path tmp;

    @Test
    void aDirectoryWithTheUsersFilesIsRefusedAndKept() throws IOException {
        Path dir = tmp.resolve("home");
        Files.createDirectories(dir.resolve("adapters"));
        Files.writeString(dir.resolve("thesis.txt"), "precious");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WorkDirs.recreate(dir));
        assertTrue(e.getMessage().contains("thesis.txt"), e.getMessage());
        assertEquals("precious", Files.readString(dir.resolve("thesis.txt")));
        assertTrue(Files.isDirectory(dir.resolve("adapters")));
    }

    @Test
    void aDirectoryHoldingOnlyTheUsersAdaptersIsRefused() throws IOException {
        Path dir = tmp.resolve("project");
        Files.createDirectories(dir.resolve("adapters").resolve("adapter-00"));
        assertThrows(IllegalArgumentException.class, () -> WorkDirs.recreate(dir));
        assertTrue(Files.isDirectory(dir.resolve("adapters").resolve("adapter-00")));
    }

    @Test
    void aFileIsRefusedAndKept() throws IOException {
        Path file = tmp.resolve("notes.txt");
        Files.writeString(file, "keep me");
        assertThrows(IllegalArgumentException.class, () -> WorkDirs.recreate(file));
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void itsOwnDirectoryIsRecreatedEmpty() throws IOException {
        Path dir = tmp.resolve("demo");
        WorkDirs.recreate(dir);
        Files.createDirectories(dir.resolve("kafka").resolve("log"));
        Files.writeString(dir.resolve("kafka").resolve("log").resolve("x"), "x");
        WorkDirs.recreate(dir);
        assertFalse(Files.exists(dir.resolve("kafka")));
        assertTrue(Files.isDirectory(dir));
    }

    @Test
    void anEmptyDirectoryAndADirectoryOfAnEarlierBuildAreRecreated() throws IOException {
        Path empty = tmp.resolve("empty");
        Files.createDirectories(empty);
        WorkDirs.recreate(empty);
        assertTrue(Files.isDirectory(empty));

        Path old = tmp.resolve("lora-lego-demo");
        for (String d : new String[]{"kafka", "streams", "adapters", "merged", "offline-merge"}) {
            Files.createDirectories(old.resolve(d));
        }
        WorkDirs.recreate(old);
        assertFalse(Files.exists(old.resolve("merged")));
    }
}
