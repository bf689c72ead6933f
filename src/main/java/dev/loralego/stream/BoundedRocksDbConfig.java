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
 */
public final class BoundedRocksDbConfig implements RocksDBConfigSetter {
    private static final long TOTAL_BYTES = Long.getLong("loralego.rocksdb.mb",
            Long.parseLong(System.getenv().getOrDefault("LORA_LEGO_ROCKSDB_MB", "256"))) << 20;
    private static final long MEMTABLE_BYTES = TOTAL_BYTES / 4;
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
    }

    @Override
    public void close(String storeName, Options options) {
        // The cache and write-buffer manager are shared by every store of the process: never closed here.
    }
}
