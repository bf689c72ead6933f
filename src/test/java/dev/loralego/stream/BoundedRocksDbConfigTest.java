package dev.loralego.stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.FlushOptions;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link BoundedRocksDbConfig} on a real RocksDB, configured as Kafka Streams configures its stores: tensor-sized
 * values land in blob files at flush and read back unchanged, and small values stay in the SST files.
 */
class BoundedRocksDbConfigTest {

    @TempDir
    Path dir;

    private static Options configured(String store) {
        Options options = new Options().setCreateIfMissing(true).setTableFormatConfig(new BlockBasedTableConfig());
        new BoundedRocksDbConfig().setConfig(store, options, new HashMap<>());
        return options;
    }

    private long blobBytes(Path db) throws IOException {
        try (Stream<Path> files = Files.list(db)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".blob")).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    @Test
    void tensorValuesGoToBlobFilesAndReadBackUnchanged() throws Exception {
        RocksDB.loadLibrary();
        Random rng = new Random(7);
        byte[] tensor = new byte[300_000];
        rng.nextBytes(tensor);
        byte[] reference = "layer-buffer|q_proj|a|1|digest".getBytes(StandardCharsets.UTF_8);
        Path path = dir.resolve("store");
        try (Options options = configured("layer-buffer-store");
             RocksDB db = RocksDB.open(options, path.toString());
             FlushOptions flush = new FlushOptions().setWaitForFlush(true)) {
            db.put("small".getBytes(StandardCharsets.UTF_8), reference);
            db.flush(flush);
            assertEquals(0, blobBytes(path), "a value below the blob threshold stays in the SST files");

            db.put("tensor".getBytes(StandardCharsets.UTF_8), tensor);
            db.flush(flush);
            assertTrue(blobBytes(path) >= tensor.length, "the tensor is written once, to a blob file");
            assertArrayEquals(tensor, db.get("tensor".getBytes(StandardCharsets.UTF_8)));
            assertArrayEquals(reference, db.get("small".getBytes(StandardCharsets.UTF_8)));

            db.delete("tensor".getBytes(StandardCharsets.UTF_8));
            db.flush(flush);
            db.compactRange();
            assertNull(db.get("tensor".getBytes(StandardCharsets.UTF_8)));
        }
        // reopened: the blob file is part of the database
        try (Options options = configured("layer-buffer-store"); RocksDB db = RocksDB.open(options, path.toString())) {
            assertArrayEquals(reference, db.get("small".getBytes(StandardCharsets.UTF_8)));
        }
    }

    @Test
    void everyStoreKeepsTensorsInGarbageCollectedBlobFiles() {
        for (String store : new String[]{"layer-buffer-store", "module-state-store", "group-state-store"}) {
            try (Options o = configured(store)) {
                assertTrue(o.enableBlobFiles(), store);
                assertTrue(o.enableBlobGarbageCollection(), store + ": withdrawn adapters' layers are reclaimed");
                // above the small entries (units references, pending tasks), at most one rank-8 bf16 layer of a 4096-wide module
                assertTrue(o.minBlobSize() > 1_000 && o.minBlobSize() <= 64 << 10, store + ": " + o.minBlobSize());
                assertEquals(2, o.maxWriteBufferNumber(), store);
            }
        }
    }
}
