package dev.loralego.stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.internal.GroupState;
import dev.loralego.avro.internal.LiveAdapter;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Internal records round-trip, and records of the previous formats (stores and changelogs of earlier builds) still read. */
class InternalCodecTest {
    private final InternalCodec<GroupState> codec = new InternalCodec<>(GroupState.class);

    private static GroupState state(String taskType) {
        return state(taskType, null);
    }

    private static GroupState state(String taskType, String dtype) {
        List<LiveAdapter> live = new ArrayList<>();
        for (String id : List.of("a", "b")) {
            live.add(LiveAdapter.newBuilder().setAdapterId(id).setAdapterVersion(3).setWeight(1.5).setTeam(null)
                    .setDigest("d-" + id).setEventId("e-" + id)
                    .setModules(List.of(new ModuleRef("layers.0.q_proj", 4, 8, 8, "m-" + id))).setTaskType(taskType).setDtype(dtype).build());
        }
        return GroupState.newBuilder().setGroup("g").setNextSequence(7).setBaseModel("base").setFanInFanOut(false)
                .setTaskType("CAUSAL_LM").setModuleShapes(new ArrayList<>()).setLive(live)
                .setRecentEventIds(new ArrayList<>(List.of("e-a", "e-b"))).build();
    }

    @Test
    void currentRecordsRoundTrip() {
        GroupState s = state("SEQ_CLS", "BF16");
        s.setOutputDType("BF16");
        s.setModuleParameters(new java.util.HashMap<>(java.util.Map.of("k", "4", "outputDType", "BF16")));
        assertEquals(s, codec.decode(codec.encode(s)));
        assertEquals(4, codec.encode(s)[0], "format byte");
    }

    /**
     * Format 1 (0.1.0) is GroupState before LiveAdapter had a taskType (and a dtype) and GroupState its
     * withdrawnVersions (and outputDType). A record written with that schema reads back with taskType null and
     * everything else intact.
     */
    @Test
    void recordsOfFormat1WithoutTheTaskTypeStillRead() throws Exception {
        Schema format1 = groupStateWithout("LiveAdapter.taskType", "LiveAdapter.dtype", "GroupState.withdrawnVersions",
                "GroupState.outputDType", "GroupState.moduleParameters");

        GroupState s = state(null);
        s.setWithdrawnVersions(new java.util.HashMap<>());
        GroupState read = codec.decode(written(1, format1, s));
        assertEquals(s, read);
        assertEquals(java.util.Map.of(), read.getWithdrawnVersions());
        for (LiveAdapter a : read.getLive()) assertNull(a.getTaskType());
        assertEquals("CAUSAL_LM", read.getTaskType());
        assertEquals(List.of("e-a", "e-b"), read.getRecentEventIds(), "fields after the live set are read in place");
    }

    /**
     * Format 2 (0.2.0) is GroupState before LiveAdapter had a dtype and GroupState its outputDType: it reads back with
     * both null, taskType kept.
     */
    @Test
    void recordsOfFormat2WithoutTheDTypeStillRead() throws Exception {
        Schema format2 = groupStateWithout("LiveAdapter.dtype", "GroupState.outputDType", "GroupState.moduleParameters");

        GroupState s = state("SEQ_CLS");
        s.setWithdrawnVersions(new java.util.HashMap<>(java.util.Map.of("c", 4L)));
        GroupState read = codec.decode(written(2, format2, s));
        assertEquals(s, read);
        for (LiveAdapter a : read.getLive()) {
            assertNull(a.getDtype());
            assertEquals("SEQ_CLS", a.getTaskType());
        }
        assertEquals(java.util.Map.of("c", 4L), read.getWithdrawnVersions());
        assertNull(read.getOutputDType());
        assertEquals(List.of("e-a", "e-b"), read.getRecentEventIds(), "fields after the live set are read in place");
    }

    /**
     * Format 3 (0.3.0) is GroupState before it had its moduleParameters: it reads back with them null, the dtypes
     * kept.
     */
    @Test
    void recordsOfFormat3WithoutTheModuleParametersStillRead() throws Exception {
        Schema format3 = groupStateWithout("GroupState.moduleParameters");

        GroupState s = state("SEQ_CLS", "F16");
        s.setWithdrawnVersions(new java.util.HashMap<>(java.util.Map.of("c", 4L)));
        s.setOutputDType("F16");
        GroupState read = codec.decode(written(3, format3, s));
        assertEquals(s, read);
        for (LiveAdapter a : read.getLive()) assertEquals("F16", a.getDtype());
        assertEquals("F16", read.getOutputDType());
        assertNull(read.getModuleParameters());
    }

    @Test
    void anUnknownFormatByteIsAnError() {
        byte[] bytes = codec.encode(state("X"));
        bytes[0] = 9;
        assertEquals("not an internal GroupState record (format byte 9)",
                assertThrows(IllegalStateException.class, () -> codec.decode(bytes)).getMessage());
    }

    @Test
    void theDerivedOlderSchemasLeaveOutExactlyTheAddedFields() {
        Schema format3 = InternalCodec.without(GroupState.getClassSchema(), InternalCodec.FIELDS_ADDED_IN_FORMAT_4, new java.util.HashMap<>());
        assertNull(format3.getField("moduleParameters"));
        assertEquals(GroupState.getClassSchema().getFields().size() - 1, format3.getFields().size());

        Schema format2 = InternalCodec.without(format3, InternalCodec.FIELDS_ADDED_IN_FORMAT_3, new java.util.HashMap<>());
        Schema live2 = format2.getField("live").schema().getElementType();
        assertNull(live2.getField("dtype"));
        assertEquals(LiveAdapter.getClassSchema().getFields().size() - 1, live2.getFields().size());
        assertEquals(GroupState.getClassSchema().getFields().size() - 2, format2.getFields().size());
        assertNull(format2.getField("outputDType"));

        Schema format1 = InternalCodec.without(format2, InternalCodec.FIELDS_ADDED_IN_FORMAT_2, new java.util.HashMap<>());
        Schema live = format1.getField("live").schema().getElementType();
        assertNull(live.getField("taskType"));
        assertNull(live.getField("dtype"));
        assertEquals(LiveAdapter.getClassSchema().getFields().size() - 2, live.getFields().size());
        assertEquals(GroupState.getClassSchema().getFields().size() - 3, format1.getFields().size());
        assertNull(format1.getField("withdrawnVersions"));
    }

    /**
     * GroupState's schema without the named fields ({@code Record.field}, each present exactly once), built by
     * editing the schema's JSON, independently of the codec's own derivation.
     */
    private static Schema groupStateWithout(String... fields) throws Exception {
        JsonNode schema = new ObjectMapper().readTree(GroupState.getClassSchema().toString());
        for (String f : fields) {
            String[] recordAndField = f.split("\\.");
            assertEquals(1, removeField(schema, recordAndField[0], recordAndField[1]), f);
        }
        return new Schema.Parser().parse(schema.toString());
    }

    /**
     * {@code s} written with an older writer schema after that format's byte. Every removed field is the last of its
     * record, so the field positions the writer reads from {@code s} agree with the older schema's.
     */
    private static byte[] written(int format, Schema older, GroupState s) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(format);
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new SpecificDatumWriter<GroupState>(older).write(s, enc);
        enc.flush();
        return out.toByteArray();
    }

    /** Removes field {@code field} from every record named {@code record} in a schema's JSON; returns how many. */
    private static int removeField(JsonNode node, String record, String field) {
        int n = 0;
        if (node instanceof ObjectNode o) {
            if ("record".equals(o.path("type").asText()) && record.equals(o.path("name").asText())) {
                ArrayNode fields = (ArrayNode) o.get("fields");
                for (int i = fields.size() - 1; i >= 0; i--) {
                    if (field.equals(fields.get(i).path("name").asText())) {
                        fields.remove(i);
                        n++;
                    }
                }
            }
            for (JsonNode child : o) n += removeField(child, record, field);
        } else if (node instanceof ArrayNode a) {
            for (JsonNode child : a) n += removeField(child, record, field);
        }
        return n;
    }
}
