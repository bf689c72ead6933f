package dev.loralego.registry;

import org.apache.avro.Schema;
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
