package dev.loralego.registry;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Records as a newer build would write them: a shipped schema with one more field, encoded in the wire format. */
public final class NewerSchemas {
    private NewerSchemas() {
    }

    /** {@code base} with one more int field at the end (default 0): what an older reader skips. */
    public static Schema withExtraIntField(Schema base, String name) {
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : base.getFields()) fields.add(new Schema.Field(f, f.schema()));
        fields.add(new Schema.Field(name, Schema.create(Schema.Type.INT), null, 0));
        return Schema.createRecord(base.getName(), base.getDoc(), base.getNamespace(), false, fields);
    }

    /**
     * A schema other than {@code target} with the same id ({@link EmbeddedSchemaResolver#idOf}): {@code target} with one
     * more int field, whose 60-letter name (each letter {@code a} or {@code b}) is chosen to give that id. CRC-64-AVRO is
     * linear over GF(2), and so are the 31 bits an id keeps, so the choice is a linear system, not a search: what
     * anyone who may write the schemas topic can do for the id of a schema a newer release will write.
     */
    public static Schema collidingWith(Schema target) {
        int want = EmbeddedSchemaResolver.idOf(target);
        int n = 60;
        char[] base = "a".repeat(n).toCharArray();
        int id0 = foldedFingerprint(withExtraIntField(target, "x" + new String(base)));
        // basis[b]: a combination of letter flips (mask) whose id difference has bit b as its highest bit
        int[] vec = new int[31];
        long[] mask = new long[31];
        for (int i = 0; i < n; i++) {
            char[] flipped = base.clone();
            flipped[i] = 'b';
            int v = foldedFingerprint(withExtraIntField(target, "x" + new String(flipped))) ^ id0;
            long m = 1L << i;
            for (int b = 30; b >= 0 && v != 0; b--) {
                if ((v >>> b & 1) == 0) continue;
                if (vec[b] == 0) {
                    vec[b] = v;
                    mask[b] = m;
                    v = 0;
                } else {
                    v ^= vec[b];
                    m ^= mask[b];
                }
            }
        }
        int t = id0 ^ want;
        long flips = 0;
        for (int b = 30; b >= 0; b--) {
            if ((t >>> b & 1) == 0) continue;
            if (vec[b] == 0) throw new IllegalStateException("no combination of flips reaches id " + want);
            t ^= vec[b];
            flips ^= mask[b];
        }
        char[] name = base.clone();
        for (int i = 0; i < n; i++) if ((flips >>> i & 1) != 0) name[i] = 'b';
        Schema crafted = withExtraIntField(target, "x" + new String(name));
        if (EmbeddedSchemaResolver.idOf(crafted) != want) throw new IllegalStateException("crafted id " + EmbeddedSchemaResolver.idOf(crafted));
        return crafted;
    }

    /** The id before 0 is mapped to 1. */
    private static int foldedFingerprint(Schema s) {
        long fp = SchemaNormalization.parsingFingerprint64(s);
        return (int) (fp ^ (fp >>> 32)) & 0x7fffffff;
    }

    /**
     * {@code values} written with {@code writer} (fields it lacks: {@code extra}), behind the wire-format header of
     * the writer's fingerprint id ({@link EmbeddedSchemaResolver#idOf}), with Avro's generic writer.
     */
    public static byte[] encode(Schema writer, SpecificRecord values, int extra) throws IOException {
        GenericData.Record r = new GenericData.Record(writer);
        for (Schema.Field f : writer.getFields()) {
            Schema.Field mine = values.getSchema().getField(f.name());
            r.put(f.name(), mine == null ? Integer.valueOf(extra) : values.get(mine.pos()));
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] header = new byte[ConfluentWireFormat.HEADER_SIZE];
        ConfluentWireFormat.writeHeader(header, EmbeddedSchemaResolver.idOf(writer));
        out.writeBytes(header);
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<Object>(writer, SpecificData.get()).write(r, enc);
        enc.flush();
        return out.toByteArray();
    }
}
