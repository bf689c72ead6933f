package dev.loralego.cli;

import dev.loralego.client.ClientConnection;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/** The connection options shared by {@code publish}, {@code withdraw}, {@code dead-letters}, {@code versions},
 * {@code export} and {@code watch}. */
public final class ClientOptionsMixin {
    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT[,...]",
            description = "Kafka bootstrap servers (default: bootstrap.servers from --config, else " + ClientConnection.DEFAULT_BOOTSTRAP + ")")
    String bootstrapServers;

    @Option(names = "--config", paramLabel = "FILE",
            description = "properties file: Kafka client settings (security.protocol, sasl.*, ssl.*) passed to every client,"
                    + " topic.* names, schema.registry.* settings; values may use $${env:NAME}")
    Path config;

    @Option(names = "--max-record-bytes", defaultValue = "" + ClientConnection.DEFAULT_MAX_RECORD_BYTES, paramLabel = "BYTES",
            description = "largest record written or read (producer max.request.size, consumer fetch sizes); must match the"
                    + " service and the topics' max.message.bytes (default: ${DEFAULT-VALUE})")
    int maxRecordBytes;

    @Option(names = "--timeout", defaultValue = "60", paramLabel = "SECONDS",
            description = "how long to wait for Kafka: metadata, acknowledgements, reading a topic to its end (default: ${DEFAULT-VALUE})")
    int timeoutSeconds;

    /** The connection these options describe. */
    public ClientConnection connect() throws IOException {
        if (timeoutSeconds < 1) throw new IllegalArgumentException("--timeout must be >= 1 second, got " + timeoutSeconds);
        return ClientConnection.fromConfigFile(bootstrapServers, config, maxRecordBytes, Duration.ofSeconds(timeoutSeconds));
    }
}
