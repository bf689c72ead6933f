package dev.loralego.registry;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.ModuleRef;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Wire format, schema evolution, error reasons and robustness of {@link AvroSerde}. */
class AvroSerdeTest {

    private static final String TOPIC = "lora.adapter.layers";
    private static final long SEED = 20240607L;
    private static final int FUZZ_CASES = 2000;

    private final EmbeddedSchemaResolver resolver = new EmbeddedSchemaResolver();

    // ---- round trips and wire bytes ------------------------------------------------------------

    @Test
    void roundTripsEveryGeneratedRecordTypeWithHeaderOfIndependentFingerprint() {
        List<SpecificRecord> samples = AvroSamples.all(SEED);
        Set<Class<?>> covered = new java.util.HashSet<>();
        for (SpecificRecord record : samples) {
            byte[] bytes = roundTrip(record);
            Schema schema = record.getSchema();
            assertEquals(0, bytes[0], "magic byte");
            int headerId = ((bytes[1] & 0xff) << 24) | ((bytes[2] & 0xff) << 16) | ((bytes[3] & 0xff) << 8)
                    | (bytes[4] & 0xff);
            assertEquals(expectedId(schema), headerId, schema.getFullName());
            assertTrue(headerId > 0);
            covered.add(record.getClass());
        }
        // every generated record class (enums aside) is covered
        long recordSchemas = EmbeddedSchemaResolver.SHIPPED_SCHEMAS.stream()
                .filter(s -> s.getType() == Schema.Type.RECORD).count();
        assertEquals(recordSchemas, covered.size());
    }

    @Test
    void bodyIsPlainAvroBinary() {
        ModuleRef ref = ModuleRef.newBuilder().setModule("h.0.c_attn").setRank(8).setDIn(768).setDOut(2304)
                .setDigest("ab12").build();
        byte[] bytes = new AvroSerde<>(ModuleRef.class, resolver).serialize("t", ref);
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        expected.write(0);
        int id = expectedId(ModuleRef.getClassSchema());
        expected.writeBytes(new byte[] {(byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
        naiveString(expected, "h.0.c_attn");
        naiveLong(expected, 8);
        naiveLong(expected, 768);
        naiveLong(expected, 2304);
        naiveString(expected, "ab12");
        assertArrayEquals(expected.toByteArray(), bytes);
        // spot-check the hand encoding itself: 768 -> zigzag 1536 -> varint 0x80 0x0c
        assertEquals("800c", HexFormat.of().formatHex(Arrays.copyOfRange(bytes, 5 + 1 + 10 + 1, 5 + 1 + 10 + 3)));
    }

    @Test
    void serializationIsDeterministicAndNullIsATombstone() {
        AdapterLayer layer = AvroSamples.adapterLayer(new SplittableRandom(SEED));
        AvroSerde<AdapterLayer> serde = new AvroSerde<>(AdapterLayer.class, resolver);
        assertArrayEquals(serde.serialize(TOPIC, layer), serde.serialize(TOPIC, layer));
        assertNull(serde.serialize(TOPIC, null));
        assertNull(serde.deserialize(TOPIC, null));
        assertSame(serde, serde.serializer());
        assertSame(serde, serde.deserializer());
        assertEquals("lora.adapter.layers-value", AvroSerde.subject(TOPIC));
    }

    @Test
    void invalidRecordIsASerializationErrorNamingTheType() {
        AdapterLayer layer = AvroSamples.adapterLayer(new SplittableRandom(SEED));
        layer.setDigest(null);
        SerializationException e = assertThrows(SerializationException.class,
                () -> new AvroSerde<>(AdapterLayer.class, resolver).serialize(TOPIC, layer));
        assertFalse(e instanceof BadRecordException);
        assertTrue(e.getMessage().contains("AdapterLayer") && e.getMessage().contains(TOPIC), e.getMessage());
    }

    // ---- schema evolution ----------------------------------------------------------------------

    @Test
    void olderWriterWithoutDefaultedFieldsReadsWithDefaults() throws IOException {
        AdapterEvent current = AvroSamples.adapterEvent(new SplittableRandom(SEED));
        Schema older = variant(AdapterEvent.getClassSchema(), Set.of("team", "weight", "adapterDigest"), null);
        byte[] bytes = encodeWith(older, current, "lora.adapter.events");
        AdapterEvent read = new AvroSerde<>(AdapterEvent.class, resolver).deserialize("lora.adapter.events", bytes);
        assertNull(read.getTeam(), "team defaults to null");
        assertEquals(1.0, read.getWeight(), 0.0, "weight defaults to 1.0");
        assertNull(read.getAdapterDigest());
        assertEquals(current.getBaseModel(), read.getBaseModel());
        assertEquals(current.getModules(), read.getModules());
        assertEquals(current.getConfig(), read.getConfig());
        assertEquals(current.getAdapterVersion(), read.getAdapterVersion());
    }

    @Test
    void newerWriterWithExtraFieldReadsWithoutIt() throws IOException {
        DeadLetter current = AvroSamples.deadLetter(new SplittableRandom(SEED));
        Schema newer = variant(DeadLetter.getClassSchema(), Set.of(),
                new Schema.Field("attempts", Schema.create(Schema.Type.INT), "added later", null));
        byte[] bytes = encodeWith(newer, current, "lora.deadletter");
        assertEquals(current, new AvroSerde<>(DeadLetter.class, resolver).deserialize("lora.deadletter", bytes));
    }

    @Test
    void writerMissingARequiredFieldIsABadRecord() throws IOException {
        AdapterLayer current = AvroSamples.adapterLayer(new SplittableRandom(SEED));
        Schema broken = variant(AdapterLayer.getClassSchema(), Set.of("digest"), null);
        byte[] bytes = encodeWith(broken, current, TOPIC);
        BadRecordException e = assertThrows(BadRecordException.class,
                () -> new AvroSerde<>(AdapterLayer.class, resolver).deserialize(TOPIC, bytes));
        assertTrue(e.reason().contains("cannot be read as dev.loralego.avro.AdapterLayer"), e.reason());
        assertEquals(EmbeddedSchemaResolver.idOf(broken), e.schemaId());
    }

    // ---- bad records ---------------------------------------------------------------------------

    @Test
    void eachKindOfBadRecordHasItsReason() {
        AvroSerde<AdapterLayer> serde = new AvroSerde<>(AdapterLayer.class, resolver);
        byte[] good = serde.serialize(TOPIC, AvroSamples.adapterLayer(new SplittableRandom(SEED)));

        assertReason(serde, new byte[] {0, 0, 1}, "record of 3 bytes is shorter than the 5-byte header");
        assertReason(serde, new byte[0], "record of 0 bytes");

        byte[] magic = good.clone();
        magic[0] = 7;
        assertReason(serde, magic, "unknown magic byte 0x07");

        byte[] unknown = good.clone();
        ConfluentWireFormat.writeHeader(unknown, 424242);
        BadRecordException u = assertReason(serde, unknown, "unknown schema id 424242");
        assertEquals(424242, u.schemaId());

        assertReason(serde, Arrays.copyOf(good, good.length - 1), "malformed Avro");
        assertReason(serde, Arrays.copyOf(good, 5), "truncated");

        byte[] trailing = Arrays.copyOf(good, good.length + 3);
        assertReason(serde, trailing, "3 trailing bytes");

        // wrong type: a ModuleRef record read as AdapterLayer
        byte[] moduleRef = new AvroSerde<>(ModuleRef.class, resolver)
                .serialize("t", AvroSamples.moduleRef(new SplittableRandom(1), "m"));
        assertReason(serde, moduleRef, "cannot be read as dev.loralego.avro.AdapterLayer");

        // enum index out of range: AdapterLayer's dtype (5th field) at index 9
        ByteArrayOutputStream badEnum = header(EmbeddedSchemaResolver.idOf(AdapterLayer.getClassSchema()));
        naiveString(badEnum, "g");
        naiveString(badEnum, "a");
        naiveLong(badEnum, 1);
        naiveString(badEnum, "m");
        naiveLong(badEnum, 9);
        assertReason(serde, badEnum.toByteArray(), "enum index 9 out of range [0, 3)");

        // union branch out of range: DeadLetter.key is ["null","bytes"]
        AvroSerde<DeadLetter> dl = new AvroSerde<>(DeadLetter.class, resolver);
        ByteArrayOutputStream badUnion = header(EmbeddedSchemaResolver.idOf(DeadLetter.getClassSchema()));
        naiveString(badUnion, "t");
        naiveLong(badUnion, 0);
        naiveLong(badUnion, 0);
        naiveLong(badUnion, 5);
        assertReason(dl, badUnion.toByteArray(), "union branch 5 out of range [0, 2)");

        // negative length
        ByteArrayOutputStream negative = header(EmbeddedSchemaResolver.idOf(AdapterLayer.getClassSchema()));
        naiveLong(negative, -3);
        assertReason(serde, negative.toByteArray(), "negative length -3");
    }

    @Test
    @Timeout(10)
    void hugeLengthPrefixesFailWithoutAllocating() {
        AvroSerde<AdapterLayer> serde = new AvroSerde<>(AdapterLayer.class, resolver);
        ByteArrayOutputStream huge = header(EmbeddedSchemaResolver.idOf(AdapterLayer.getClassSchema()));
        naiveLong(huge, Integer.MAX_VALUE - 16L); // a 2 GiB "group" string in a 10-byte record
        for (int i = 0; i < 200; i++) {
            assertReason(serde, huge.toByteArray(), "truncated at dev.loralego.avro.AdapterLayer.group");
        }
        // an array block claiming 2^40 ModuleRef items in a 6-byte body
        resolver.register("x-value", ModuleRefList.SCHEMA);
        ByteArrayOutputStream arr = header(EmbeddedSchemaResolver.idOf(ModuleRefList.SCHEMA));
        naiveLong(arr, 1L << 40);
        AvroSerde<ModuleRef> asModuleRef = new AvroSerde<>(ModuleRef.class, resolver);
        BadRecordException e = assertThrows(BadRecordException.class,
                () -> asModuleRef.deserialize("x", arr.toByteArray()));
        assertTrue(e.reason().contains("block of 1099511627776 items") && e.reason().contains("cannot fit"),
                e.reason());
    }

    /** A writer schema that is a record wrapping an array of ModuleRef, for the huge-count check. */
    private static final class ModuleRefList {
        static final Schema SCHEMA = Schema.createRecord("ModuleRefList", null, "test", false,
                List.of(new Schema.Field("refs", Schema.createArray(ModuleRef.getClassSchema()), null, null)));
    }

    @Test
    void resolverOutageIsNotABadRecord() {
        SchemaResolver down = new SchemaResolver() {
            @Override
            public int register(String subject, Schema schema) {
                return 7;
            }

            @Override
            public Schema byId(int id) {
                throw new SerializationException("schema registry at http://registry:8081 unreachable");
            }
        };
        AvroSerde<ModuleRef> serde = new AvroSerde<>(ModuleRef.class, down);
        byte[] bytes = serde.serialize("t", AvroSamples.moduleRef(new SplittableRandom(1), "m"));
        SerializationException e = assertThrows(SerializationException.class, () -> serde.deserialize("t", bytes));
        assertFalse(e instanceof BadRecordException, "an outage must not dead-letter the record");
    }

    @Test
    @Timeout(120)
    void fuzzedInputsGiveARecordOrABadRecordExceptionOnly() {
        SplittableRandom rnd = new SplittableRandom(SEED);
        List<SpecificRecord> samples = AvroSamples.all(SEED);
        List<AvroSerde<? extends SpecificRecord>> serdes = new ArrayList<>();
        List<byte[]> valid = new ArrayList<>();
        for (SpecificRecord s : samples) {
            AvroSerde<SpecificRecord> serde = serdeFor(s);
            serdes.add(serde);
            valid.add(serde.serialize("fuzz", s));
        }
        int decoded = 0;
        int rejected = 0;
        for (int i = 0; i < FUZZ_CASES; i++) {
            int which = rnd.nextInt(samples.size());
            AvroSerde<? extends SpecificRecord> serde = serdes.get(which);
            byte[] base = valid.get(which);
            int strategy = rnd.nextInt(6);
            byte[] input = switch (strategy) {
                case 0 -> randomBytes(rnd, rnd.nextInt(65));
                case 1 -> withValidHeader(rnd, base, randomBytes(rnd, rnd.nextInt(301)));
                case 2 -> flipBytes(rnd, base, 1 + rnd.nextInt(8));
                case 3 -> Arrays.copyOf(base, rnd.nextInt(base.length));
                case 4 -> insertBytes(rnd, base);
                default -> {
                    byte[] b = base.clone();
                    b[1 + rnd.nextInt(4)] ^= (byte) (1 + rnd.nextInt(255));
                    yield b;
                }
            };
            try {
                Object record = serde.deserialize("fuzz", input);
                assertNotNull(record, "strategy " + strategy);
                decoded++;
            } catch (BadRecordException e) {
                assertFalse(e.reason().isBlank());
                rejected++;
            } catch (Throwable t) {
                fail("case " + i + " (strategy " + strategy + ", " + input.length + " bytes, starts "
                        + HexFormat.of().formatHex(Arrays.copyOf(input, Math.min(24, input.length)))
                        + ") threw " + t, t);
            }
        }
        assertEquals(FUZZ_CASES, decoded + rejected);
        assertTrue(decoded > 50, "mutations inside tensor bytes stay valid records: " + decoded);
        assertTrue(rejected > 500, "most mutations are rejected: " + rejected);
    }

    // ---- helpers -------------------------------------------------------------------------------

    @SuppressWarnings("unchecked")
    private <T extends SpecificRecord> AvroSerde<T> serdeFor(T record) {
        return new AvroSerde<>((Class<T>) record.getClass(), resolver);
    }

    private <T extends SpecificRecord> byte[] roundTrip(T record) {
        AvroSerde<T> serde = serdeFor(record);
        byte[] bytes = serde.serialize(TOPIC, record);
        T back = serde.deserialize(TOPIC, bytes);
        assertEquals(record, back, record.getClass().getSimpleName());
        return bytes;
    }

    private static BadRecordException assertReason(AvroSerde<?> serde, byte[] bytes, String expected) {
        BadRecordException e = assertThrows(BadRecordException.class, () -> serde.deserialize(TOPIC, bytes));
        assertTrue(e.reason().contains(expected), "reason '" + e.reason() + "' should contain '" + expected + "'");
        assertTrue(e.getMessage().startsWith("bad record on topic " + TOPIC + ": "), e.getMessage());
        return e;
    }

    /** The id the spec of EmbeddedSchemaResolver defines, computed with the Avro spec's CRC-64-AVRO code. */
    static int expectedId(Schema schema) {
        byte[] form = SchemaNormalization.toParsingForm(schema).getBytes(StandardCharsets.UTF_8);
        long fp = Crc64Avro.fingerprint(form);
        int id = (int) (fp ^ (fp >>> 32)) & 0x7fffffff;
        return id == 0 ? 1 : id;
    }

    /** CRC-64-AVRO (Rabin) fingerprint, written out from the Avro specification, "Schema Fingerprints". */
    static final class Crc64Avro {
        private static final long EMPTY = 0xc15d213aa4d7a795L;
        private static final long[] TABLE = new long[256];

        static {
            for (int i = 0; i < 256; i++) {
                long fp = i;
                for (int j = 0; j < 8; j++) {
                    fp = (fp >>> 1) ^ (EMPTY & -(fp & 1L));
                }
                TABLE[i] = fp;
            }
        }

        static long fingerprint(byte[] buf) {
            long fp = EMPTY;
            for (byte b : buf) {
                fp = (fp >>> 8) ^ TABLE[(int) (fp ^ b) & 0xff];
            }
            return fp;
        }
    }

    /** Zigzag varint written out by hand (Avro spec, "Binary Encoding"). */
    static void naiveLong(ByteArrayOutputStream out, long v) {
        long z = (v << 1) ^ (v >> 63);
        while ((z & ~0x7fL) != 0) {
            out.write((int) ((z & 0x7f) | 0x80));
            z >>>= 7;
        }
        out.write((int) z);
    }

    static void naiveString(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        naiveLong(out, b.length);
        out.writeBytes(b);
    }

    private static ByteArrayOutputStream header(int id) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0);
        out.writeBytes(new byte[] {(byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id});
        return out;
    }

    /** {@code base} without the {@code drop} fields, plus {@code extra} if given; same name and namespace. */
    static Schema variant(Schema base, Set<String> drop, Schema.Field extra) {
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : base.getFields()) {
            if (!drop.contains(f.name())) {
                fields.add(new Schema.Field(f, f.schema()));
            }
        }
        if (extra != null) {
            fields.add(extra);
        }
        return Schema.createRecord(base.getName(), base.getDoc(), base.getNamespace(), false, fields);
    }

    /** Encodes {@code current}'s values with {@code writer} (extra int fields get 3), registered for {@code topic}. */
    private byte[] encodeWith(Schema writer, SpecificRecord current, String topic) throws IOException {
        GenericData.Record r = new GenericData.Record(writer);
        for (Schema.Field f : writer.getFields()) {
            Schema.Field mine = current.getSchema().getField(f.name());
            r.put(f.name(), mine == null ? Integer.valueOf(3) : current.get(mine.pos()));
        }
        int id = resolver.register(AvroSerde.subject(topic), writer);
        ByteArrayOutputStream out = header(id);
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<Object>(writer, SpecificData.get()).write(r, enc);
        enc.flush();
        return out.toByteArray();
    }

    private static byte[] randomBytes(SplittableRandom rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    private static byte[] withValidHeader(SplittableRandom rnd, byte[] base, byte[] body) {
        byte[] out = new byte[5 + body.length];
        System.arraycopy(base, 0, out, 0, 5);
        System.arraycopy(body, 0, out, 5, body.length);
        return out;
    }

    private static byte[] flipBytes(SplittableRandom rnd, byte[] base, int flips) {
        byte[] b = base.clone();
        for (int i = 0; i < flips; i++) {
            // mostly near the start, where lengths, counts and union indexes live
            int limit = rnd.nextBoolean() ? Math.min(b.length, 64) : b.length;
            int at = 5 + rnd.nextInt(Math.max(1, limit - 5));
            if (at < b.length) {
                b[at] ^= (byte) (1 + rnd.nextInt(255));
            }
        }
        return b;
    }

    private static byte[] insertBytes(SplittableRandom rnd, byte[] base) {
        int at = 5 + rnd.nextInt(Math.min(base.length, 80) - 4);
        byte[] extra = randomBytes(rnd, 1 + rnd.nextInt(6));
        byte[] out = new byte[base.length + extra.length];
        System.arraycopy(base, 0, out, 0, at);
        System.arraycopy(extra, 0, out, at, extra.length);
        System.arraycopy(base, at, out, at + extra.length, base.length - at);
        return out;
    }
}
