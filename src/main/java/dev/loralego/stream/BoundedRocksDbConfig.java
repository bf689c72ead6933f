package dev.loralego.stream;

import org.apache.kafka.streams.state.RocksDBConfigSetter;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.Cache;
import org.rocksdb.LRUCache;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.WriteBufferManager;

import java.util.Map;

/**
 * Bounds RocksDB's off-heap memory across all stores of the process: one shared block cache, with memtables
 * charged against it (Kafka Streams memory-management guide). Without this, RSS grows with the number of
 * modules far past the heap. Size from {@code LORA_LEGO_ROCKSDB_MB} (default 256 MiB).
 *
 * <p>Values of {@value #MIN_BLOB_BYTES} bytes and more (the buffered layers, hundreds of KB each) are kept in
 * RocksDB's blob files: written once when the memtable is flushed, then left in place by compaction, which moves
 * only keys and references; blob garbage collection reclaims the layers of adapters no longer live. With tensors
 * in the SST files, levelled compaction rewrote them: 6.0 GB written for 1.9 GB flushed in a 24-adapter llama-7b
 * run, 2.3 GB with blob files (docs/results/perf.md).
 */
public final class BoundedRocksDbConfig implements RocksDBConfigSetter {
    private static final long TOTAL_BYTES = Long.getLong("loralego.rocksdb.mb",
            Long.parseLong(System.getenv().getOrDefault("LORA_LEGO_ROCKSDB_MB", "256"))) << 20;
    private static final long MEMTABLE_BYTES = TOTAL_BYTES / 4;
    /** Values from this size on (tensors, not skeletons or references) are kept in blob files. */
    static final long MIN_BLOB_BYTES = 16 << 10;
    private static Cache cache;
    private static WriteBufferManager writeBuffers;

    /** Created on first use, after Kafka Streams has loaded RocksDB's native library. */
    private static synchronized void init() {
        if (cache != null) return;
        RocksDB.loadLibrary();
        cache = new LRUCache(TOTAL_BYTES, -1, false, 0.1);
        writeBuffers = new WriteBufferManager(MEMTABLE_BYTES, cache);
    }

    @Override
    public void setConfig(String storeName, Options options, Map<String, Object> configs) {
        init();
        BlockBasedTableConfig table = (BlockBasedTableConfig) options.tableFormatConfig();
        table.setBlockCache(cache);
        table.setCacheIndexAndFilterBlocks(true);
        table.setPinTopLevelIndexAndFilter(true);
        options.setWriteBufferManager(writeBuffers);
        options.setTableFormatConfig(table);
        // Values here are tensors of hundreds of KB: fewer, larger memtables.
        options.setMaxWriteBufferNumber(2);
        // Tensors go to blob files, written once at flush: compaction then moves only keys and blob references.
        options.setEnableBlobFiles(true);
        options.setMinBlobSize(MIN_BLOB_BYTES);
        options.setEnableBlobGarbageCollection(true);
    }

    @Override
    public void close(String storeName, Options options) {
        // The cache and write-buffer manager are shared by every store of the process: never closed here.
    }
}
