package dev.loralego.ops;

import dev.loralego.stream.MergeTopology;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsException;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

import java.util.Objects;

/**
 * Looks up a group's latest merged version in the {@link MergeTopology#LATEST_VERSION_STORE} state store
 * with Kafka Streams interactive queries: asks which instance is active for the key
 * ({@link KafkaStreams#queryMetadataForKey}), and reads the local store when it is this one.
 *
 * <p>{@code self} is this instance's {@code application.server} endpoint. Without one (a single instance, or
 * forwarding not configured) every lookup is answered from the local store, and a partition hosted
 * elsewhere reads as {@link Unavailable}.
 */
public final class LatestVersionQuery {
    /** The outcome of one lookup. */
    public sealed interface Answer permits Found, Missing, Remote, Unavailable {
    }

    /** The group's latest manifest, Confluent wire-format bytes as stored. */
    public record Found(byte[] manifest) implements Answer {
    }

    /** This instance is active for the group's partition and the group has no version. */
    public record Missing() implements Answer {
    }

    /** Another instance is active for the group's partition. */
    public record Remote(HostInfo host) implements Answer {
    }

    /** The store cannot be queried now (not started, rebalancing, restoring, partition not here). */
    public record Unavailable(String reason) implements Answer {
    }

    private final KafkaStreams streams;
    private final HostInfo self;

    /**
     * @param streams the running service's Kafka Streams
     * @param self    this instance's {@code application.server}, or null when it has none
     */
    public LatestVersionQuery(KafkaStreams streams, HostInfo self) {
        this.streams = Objects.requireNonNull(streams, "streams");
        this.self = self;
    }

    /** This instance's endpoint, or null. */
    public HostInfo self() {
        return self;
    }

    /** Where the latest version of {@code group} is, or what it is when it is here. */
    public Answer lookup(String group) {
        KeyQueryMetadata md;
        try {
            md = streams.queryMetadataForKey(MergeTopology.LATEST_VERSION_STORE, group, Serdes.String().serializer());
        } catch (IllegalStateException | StreamsException e) {
            return new Unavailable("Kafka Streams is " + streams.state() + ": " + e.getMessage());
        }
        if (md == null || md == KeyQueryMetadata.NOT_AVAILABLE) {
            return new Unavailable("no metadata for store " + MergeTopology.LATEST_VERSION_STORE + " yet (Kafka Streams is "
                    + streams.state() + ")");
        }
        HostInfo active = md.activeHost();
        if (self != null && active != null && !active.equals(self) && !active.equals(HostInfo.unavailable())) {
            return new Remote(active);
        }
        try {
            ReadOnlyKeyValueStore<String, byte[]> store = streams.store(StoreQueryParameters
                    .fromNameAndType(MergeTopology.LATEST_VERSION_STORE, QueryableStoreTypes.<String, byte[]>keyValueStore())
                    .withPartition(md.partition()));
            byte[] bytes = store.get(group);
            return bytes == null ? new Missing() : new Found(bytes);
        } catch (InvalidStateStoreException e) {
            return new Unavailable("store " + MergeTopology.LATEST_VERSION_STORE + " partition " + md.partition()
                    + " cannot be queried here: " + e.getMessage());
        }
    }
}
