package dev.loralego.client;

import dev.loralego.kafka.TopicScan;
import dev.loralego.registry.EmbeddedSchemaResolver;
import dev.loralego.registry.UnknownSchemaIdException;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * The schemas topic from a client's side, with the embedded schema source (no {@code schema.registry.url}).
 * <ul>
 *   <li>Decoding that survives a newer service: a record whose schema id this jar does not ship (a service build with
 *   an evolved schema) makes the client load the schemas published on the schemas topic
 *   ({@link ClientConnection#loadPublishedSchemas}) and decode again, once per unknown id. Long-running readers
 *   ({@code watch}) thereby keep decoding after the service is upgraded under them.</li>
 *   <li>Writing that an older service can read: before a publisher writes, {@link #ensureOnTopic} puts the schemas it
 *   writes with on the topic if they are not there yet (a publisher newer than every service that ran). The service
 *   looks an unknown id up there before it calls a record undecodable.</li>
 * </ul>
 */
final class PublishedSchemas {
    private static final Logger LOG = LoggerFactory.getLogger(PublishedSchemas.class);

    private final ClientConnection connection;
    private final Set<Integer> looked = ConcurrentHashMap.newKeySet();

    PublishedSchemas(ClientConnection connection) {
        this.connection = Objects.requireNonNull(connection, "connection");
    }

    /** {@code decoder}'s result; on an unknown schema id not looked up before, loads the published schemas and retries. */
    <T> T decode(Supplier<T> decoder) {
        try {
            return decoder.get();
        } catch (RuntimeException e) {
            Integer id = unknownId(e);
            if (id == null || !looked.add(id)) throw e;
            connection.loadPublishedSchemas();
            return decoder.get();
        }
    }

    private static Integer unknownId(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof UnknownSchemaIdException u) return u.id();
        }
        return null;
    }

    /**
     * With the embedded schema source, makes sure the schemas topic holds {@code schemas}: reads it, and writes those
     * it lacks (acks=all), waiting for them, so that they are on the topic before any record written with them. Does
     * nothing with a schema registry (the serializers register there).
     *
     * <p>Refuses, writing nothing, when the topic does not exist: a service that starts later (it creates the topic)
     * would dead-letter the records if it is older than this client, and an audit run after the schemas reach the
     * topic would decode them, so the log would no longer replay as it was processed. Refuses too when the topic holds
     * another schema under the id of one of {@code schemas} (a fingerprint collision, or an entry written to take that
     * id): a service takes the first entry it reads for an id, and would decode this client's records with it.
     *
     * @return the ids written (none when the topic had them all)
     * @throws IllegalStateException if the topic does not exist, cannot be read, holds another schema under one of the
     *                               ids, or a missing schema cannot be written (e.g. this principal may not write the
     *                               topic); nothing else has been written then
     */
    static List<Integer> ensureOnTopic(ClientConnection connection, List<Schema> schemas) {
        if (!(connection.resolver() instanceof EmbeddedSchemaResolver)) return List.of();
        String topic = connection.topics().schemas();
        TreeMap<Integer, Schema> missing = new TreeMap<>();
        for (Schema s : schemas) missing.put(EmbeddedSchemaResolver.idOf(s), s);
        TreeMap<Integer, String> taken = new TreeMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = connection.newConsumer("lora-lego-schemas")) {
            var infos = consumer.partitionsFor(topic, connection.timeout());
            if (infos == null || infos.isEmpty()) {
                throw new IllegalStateException("the schemas topic " + topic + " does not exist, so a service older than"
                        + " this client could not look up the schemas it writes with (ids " + missing.keySet() + "): start"
                        + " the merge service once (it creates its topics), or check topic.schemas in --config; nothing"
                        + " was written");
            }
            Set<String> present = new TreeSet<>();
            TopicScan.toEnd(consumer, topic, connection.timeout(), r -> {
                if (r.key() == null) return;
                String key = new String(r.key(), StandardCharsets.UTF_8);
                Schema published = schemaOfId(key, r.value());
                Schema mine = published == null ? null : missing.get(EmbeddedSchemaResolver.idOf(published));
                if (mine != null && !SchemaNormalization.toParsingForm(mine).equals(SchemaNormalization.toParsingForm(published))) {
                    taken.put(EmbeddedSchemaResolver.idOf(published), published.getFullName());
                    published = null;
                }
                if (published != null) present.add(key);
                else present.remove(key); // a tombstone, or something unusable, replaces what the key held
            });
            missing.keySet().removeIf(id -> present.contains(Integer.toString(id)));
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            throw TopicScan.noAnswer(connection.bootstrap(), connection.timeout(), topic, e);
        } catch (KafkaException e) {
            String advice = e instanceof AuthorizationException ? ": grant this principal READ and DESCRIBE on " + topic : "";
            throw new IllegalStateException("reading the schemas topic " + topic + " failed (" + e.getMessage() + ")"
                    + advice + "; nothing was written", e);
        }
        if (!taken.isEmpty()) {
            throw new IllegalStateException("the schemas topic " + topic + " holds another schema under the id of one this"
                    + " client writes with (" + taken + "): a fingerprint collision, or an entry written to take the id;"
                    + " a service would decode this client's records with it, so nothing was written (whoever may write "
                    + topic + " should remove it)");
        }
        if (missing.isEmpty()) return List.of();
        List<Future<RecordMetadata>> sends = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = connection.newProducer("lora-lego-schemas", null)) {
            missing.forEach((id, schema) -> sends.add(producer.send(new ProducerRecord<>(topic,
                    Integer.toString(id).getBytes(StandardCharsets.UTF_8), schema.toString().getBytes(StandardCharsets.UTF_8)))));
            for (Future<RecordMetadata> f : sends) f.get(connection.timeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            String advice = cause instanceof AuthorizationException
                    ? ": grant this principal WRITE on " + topic + ", or start a service of this release first (it writes them)"
                    : "";
            throw new IllegalStateException("the schemas topic " + topic + " lacks the schemas this client writes with (ids "
                    + missing.keySet() + "), and writing them failed (" + cause.getMessage() + ")" + advice
                    + "; nothing else was written", cause);
        } catch (TimeoutException e) {
            throw new IllegalStateException("writing schemas " + missing.keySet() + " to " + topic + " was not acknowledged"
                    + " within " + connection.timeout().toSeconds() + " s; nothing else was written", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while writing schemas to " + topic, e);
        }
        LOG.info("wrote schema(s) {} to {}: a service older than this client now decodes its records", missing.keySet(), topic);
        return List.copyOf(new TreeSet<>(missing.keySet()));
    }

    /** The schema of a schemas-topic entry that a reader takes ({@link EmbeddedSchemaResolver#schemaOfEntry}), or null. */
    private static Schema schemaOfId(String key, byte[] value) {
        try {
            return EmbeddedSchemaResolver.schemaOfEntry(key, value == null ? null : new String(value, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}
