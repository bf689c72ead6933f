package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import org.apache.kafka.common.serialization.Serde;

import java.util.Objects;

/**
 * The serdes of the records that cross the application's boundary (Confluent wire format, resolved through
 * the embedded schema source or a schema registry). Internal records use {@link InternalCodec}.
 */
public record TopologySerdes(Serde<AdapterEvent> adapterEvent,
                             Serde<AdapterLayer> adapterLayer,
                             Serde<MergedLayer> mergedLayer,
                             Serde<MergedVersionManifest> mergedVersion,
                             Serde<DeadLetter> deadLetter) {
    public TopologySerdes {
        Objects.requireNonNull(adapterEvent, "adapterEvent");
        Objects.requireNonNull(adapterLayer, "adapterLayer");
        Objects.requireNonNull(mergedLayer, "mergedLayer");
        Objects.requireNonNull(mergedVersion, "mergedVersion");
        Objects.requireNonNull(deadLetter, "deadLetter");
    }
}
