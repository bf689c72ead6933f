package dev.loralego.stream;

import dev.loralego.kafka.TopicAdmin;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.StreamsConfig;

import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;

/** The Kafka Streams configuration of the service, each setting with the reason it is set. */
public final class StreamsSettings {
    private StreamsSettings() {
    }

    /**
     * @param appId           application id (shared by every instance of one deployment)
     * @param bootstrap       bootstrap servers
     * @param stateDir        where RocksDB keeps the stores
     * @param maxRecordBytes  the largest record the service must move (tensors)
     * @param threads         stream threads in this instance
     * @param clientOverrides extra client settings (security, etc.) applied last
     */
    public static Properties streamsConfig(String appId, String bootstrap, Path stateDir, int maxRecordBytes, int threads,
                                           Map<String, String> clientOverrides) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toAbsolutePath().toString());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        // A lost or duplicated merged version ships to production: transactions end to end.
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        // Keep RocksDB's off-heap memory bounded (many modules, big values).
        p.put(StreamsConfig.ROCKSDB_CONFIG_SETTER_CLASS_CONFIG, BoundedRocksDbConfig.class.getName());
        // Tensors are large: every client must accept records up to maxRecordBytes.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.MAX_REQUEST_SIZE_CONFIG), maxRecordBytes);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "zstd");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_ZSTD_LEVEL_CONFIG), TopicAdmin.ZSTD_LEVEL);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.BUFFER_MEMORY_CONFIG), Math.max(64L << 20, 2L * maxRecordBytes));
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), maxRecordBytes);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MAX_BYTES_CONFIG), Math.max(maxRecordBytes, 64 << 20));
        // Big records: fewer per poll keeps one poll loop well inside max.poll.interval.ms.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 100);
        // layer records are up to maxRecordBytes each: the default 1000 buffered per partition could hold gigabytes
        p.put(StreamsConfig.BUFFERED_RECORDS_PER_PARTITION_CONFIG, 64);
        p.put("processing.exception.handler.global.enabled", true);
        // Internal repartition/changelog topics on a one-broker dev cluster need replication 1; in production
        // the broker default (-1) applies unless overridden by the config file.
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, -1);
        // Versions should reach subscribers quickly; EOS commits every 100 ms by default, keep it explicit.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        // Timestamps come from records; a missing one must not fail the pipeline.
        p.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG,
                org.apache.kafka.streams.processor.LogAndSkipOnInvalidTimestamp.class.getName());
        p.putAll(clientOverrides);
        return p;
    }
}
