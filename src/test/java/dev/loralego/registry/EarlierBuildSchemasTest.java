package dev.loralego.registry;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.MergedVersionManifest;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Records written by earlier releases carry the embedded id of the schema those releases shipped (a fingerprint of
 * its canonical form). A publisher still on 0.2.0 writes events without {@code dtype}; a 0.2.0 service wrote
 * manifests without {@code withdrawnVersions} (still in the latest-version store and in the history an auditor
 * replays). The current build must decode them through schema resolution (the added fields have defaults for
 * exactly this), without a schemas topic: the service never loads one, and a publisher never writes its schemas there.
 *
 * <p>The earlier schemas are the files of those releases, verbatim from git (test resources); the id is computed here
 * from the documented formula, and the records are written with Avro's generic writer.
 */
class EarlierBuildSchemasTest {

    /** Parses the project's unchanged common.avsc, then the earlier files, in one parser (they refer to each other's types). */
    private static Map<String, Schema> earlierSchemas() throws IOException {
        Schema.Parser parser = new Schema.Parser();
        parser.parse(Files.readString(Path.of("schemas/common.avsc")));
        Schema event = parser.parse(resource("adapter-event-0.2.0.avsc"));
        Schema manifest = parser.parse(resource("merged-version-0.2.0.avsc"));
        return Map.of("event", event, "manifest", manifest);
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = EarlierBuildSchemasTest.class.getResourceAsStream("/earlier-schemas/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** The documented embedded id: 31 bits of the CRC-64-AVRO fingerprint of the parsing canonical form, folded. */
    private static int embeddedId(Schema s) {
        long fp = SchemaNormalization.parsingFingerprint64(s);
        int id = (int) (fp ^ (fp >>> 32)) & 0x7fffffff;
        return id == 0 ? 1 : id;
    }

    private static byte[] confluent(int id, Schema schema, GenericRecord record) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.write(id >>> 24);
        out.write(id >>> 16);
        out.write(id >>> 8);
        out.write(id);
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(schema).write(record, enc);
        enc.flush();
        return out.toByteArray();
    }

    @Test
    void earlierIdsDifferFromTheCurrentOnes() throws IOException {
        Map<String, Schema> earlier = earlierSchemas();
        assertTrue(embeddedId(earlier.get("event")) != embeddedId(AdapterEvent.getClassSchema()));
        assertTrue(embeddedId(earlier.get("manifest")) != embeddedId(MergedVersionManifest.getClassSchema()));
    }

    @Test
    void publishEventOfA020PublisherDecodes() throws IOException {
        Schema old = earlierSchemas().get("event");
        GenericRecord e = new GenericData.Record(old);
        e.put("type", new GenericData.EnumSymbol(old.getField("type").schema(), "PUBLISH"));
        e.put("eventId", "ev-1");
        e.put("group", "g1");
        e.put("adapterId", "a1");
        e.put("adapterVersion", 3L);
        e.put("team", "t");
        e.put("baseModel", "base");
        e.put("weight", 0.5);
        e.put("config", null);
        e.put("modules", List.of());
        e.put("adapterDigest", null);
        byte[] bytes = confluent(embeddedId(old), old, e);

        AdapterEvent decoded = new AvroSerde<>(AdapterEvent.class, new EmbeddedSchemaResolver())
                .deserialize("lora.adapter.events", bytes);
        assertEquals(AdapterEventType.PUBLISH, decoded.getType());
        assertEquals("ev-1", decoded.getEventId());
        assertEquals(3L, decoded.getAdapterVersion());
        assertEquals(0.5, decoded.getWeight());
        assertNull(decoded.getDtype(), "published by a build before 0.3.0");
    }

    @Test
    void manifestOfA020ServiceDecodes() throws IOException {
        Schema old = earlierSchemas().get("manifest");
        Schema trigger = old.getField("trigger").schema();
        GenericRecord t = new GenericData.Record(trigger);
        t.put("eventId", "ev-1");
        t.put("type", new GenericData.EnumSymbol(trigger.getField("type").schema(), "WITHDRAW"));
        t.put("adapterId", "a1");
        t.put("adapterVersion", -1L);
        GenericRecord m = new GenericData.Record(old);
        m.put("group", "g1");
        m.put("sequence", 7L);
        m.put("baseModel", null);
        m.put("trigger", t);
        m.put("adapters", List.of());
        m.put("modules", List.of());
        m.put("digest", "ab");
        m.put("fanInFanOut", false);
        m.put("taskType", null);
        m.put("parameters", Map.of("k", "3"));
        m.put("eventTimestamp", 42L);
        m.put("serviceVersion", "0.2.0");
        m.put("warnings", List.of("w"));
        m.put("meanInertia", 1.5);
        byte[] bytes = confluent(embeddedId(old), old, m);

        MergedVersionManifest decoded = new AvroSerde<>(MergedVersionManifest.class, new EmbeddedSchemaResolver())
                .deserialize("lora.merged.versions", bytes);
        assertEquals(7L, decoded.getSequence());
        assertEquals(AdapterEventType.WITHDRAW, decoded.getTrigger().getType());
        assertEquals("3", decoded.getParameters().get("k"));
        assertEquals(List.of("w"), decoded.getWarnings());
        assertEquals(1.5, decoded.getMeanInertia());
        assertEquals("0.2.0", decoded.getServiceVersion());
        assertTrue(decoded.getWithdrawnVersions().isEmpty());
    }
}
