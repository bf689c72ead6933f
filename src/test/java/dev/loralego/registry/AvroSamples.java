package dev.loralego.registry;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.LoraConfigSnapshot;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.VersionTrigger;
import org.apache.avro.specific.SpecificRecord;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Realistic instances of every generated record type (gpt2-sized LoRA factors), built from a seed. */
final class AvroSamples {

    static final String GROUP = "gpt2-base";
    static final String MODULE = "transformer.h.0.attn.c_attn";
    static final int RANK = 8;
    static final int D_IN = 768;
    static final int D_OUT = 2304;

    private AvroSamples() {
    }

    /** One instance of each generated record class, top-level types first. */
    static List<SpecificRecord> all(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<SpecificRecord> out = new ArrayList<>();
        out.add(adapterLayer(rnd));
        out.add(adapterEvent(rnd));
        out.add(mergedLayer(rnd));
        out.add(manifest(rnd));
        out.add(deadLetter(rnd));
        out.add(config());
        out.add(moduleRef(rnd, MODULE));
        out.add(adapterRef(rnd, "team-a/imdb"));
        out.add(trigger());
        return out;
    }

    static AdapterLayer adapterLayer(SplittableRandom rnd) {
        byte[] a = f32(rnd, RANK * D_IN);
        byte[] b = f32(rnd, D_OUT * RANK);
        return AdapterLayer.newBuilder().setGroup(GROUP).setAdapterId("team-a/imdb").setAdapterVersion(3)
                .setModule(MODULE).setDtype(TensorDType.F32).setRank(RANK).setDIn(D_IN).setDOut(D_OUT)
                .setScaling(16.0 / RANK).setA(ByteBuffer.wrap(a)).setB(ByteBuffer.wrap(b))
                .setDigest(sha256(a, b)).build();
    }

    static AdapterEvent adapterEvent(SplittableRandom rnd) {
        List<ModuleRef> modules = new ArrayList<>();
        for (int layer = 0; layer < 12; layer++) {
            modules.add(moduleRef(rnd, "transformer.h." + layer + ".attn.c_attn"));
        }
        return AdapterEvent.newBuilder().setType(AdapterEventType.PUBLISH)
                .setEventId("6f1c7a52-7d43-4a8e-9f0e-2b9d1c3e4f50").setGroup(GROUP).setAdapterId("team-a/imdb")
                .setAdapterVersion(3).setTeam("team-a").setBaseModel("openai-community/gpt2").setWeight(0.75)
                .setConfig(config()).setModules(modules).setAdapterDigest(hex(rnd, 32)).build();
    }

    static MergedLayer mergedLayer(SplittableRandom rnd) {
        byte[] a = f32(rnd, RANK * D_IN);
        byte[] b = f32(rnd, D_OUT * RANK);
        return MergedLayer.newBuilder().setGroup(GROUP).setModule(MODULE).setSequence(17).setDtype(TensorDType.F32)
                .setRank(RANK).setDIn(D_IN).setDOut(D_OUT).setA(ByteBuffer.wrap(a)).setB(ByteBuffer.wrap(b))
                .setDigest(sha256(a, b)).setInertia(12.375).setLiveAdapters(3).build();
    }

    static MergedVersionManifest manifest(SplittableRandom rnd) {
        Map<String, String> params = new LinkedHashMap<>();
        params.put("k", "8");
        params.put("seed", "42");
        params.put("canonical", "SVD");
        return MergedVersionManifest.newBuilder().setGroup(GROUP).setSequence(17)
                .setBaseModel("openai-community/gpt2").setTrigger(trigger())
                .setAdapters(List.of(adapterRef(rnd, "team-a/imdb"), adapterRef(rnd, "team-b/tigrinya")))
                .setModules(List.of(moduleRef(rnd, MODULE), moduleRef(rnd, "transformer.h.1.attn.c_attn")))
                .setDigest(hex(rnd, 32)).setFanInFanOut(true).setTaskType("CAUSAL_LM").setParameters(params)
                .setEventTimestamp(1_717_000_000_123L).setServiceVersion("0.1.0").build();
    }

    static DeadLetter deadLetter(SplittableRandom rnd) {
        byte[] value = new byte[64];
        rnd.nextBytes(value);
        return DeadLetter.newBuilder().setSourceTopic("lora.adapter.layers").setPartition(2).setOffset(4711)
                .setKey(ByteBuffer.wrap((GROUP + "|" + MODULE).getBytes(StandardCharsets.UTF_8)))
                .setValue(ByteBuffer.wrap(value)).setReason("unknown magic byte 0x07").setField(null)
                .setGroup(GROUP).setTimestamp(1_717_000_000_000L).build();
    }

    static LoraConfigSnapshot config() {
        return LoraConfigSnapshot.newBuilder().setR(RANK).setLoraAlpha(16.0).setUseRslora(false)
                .setFanInFanOut(true).setRankPattern(Map.of("transformer.h.11.attn.c_attn", 4))
                .setAlphaPattern(Map.of("transformer.h.11.attn.c_attn", 8.0))
                .setTargetModules(List.of("c_attn")).setTaskType("SEQ_CLS").build();
    }

    static ModuleRef moduleRef(SplittableRandom rnd, String module) {
        return ModuleRef.newBuilder().setModule(module).setRank(RANK).setDIn(D_IN).setDOut(D_OUT)
                .setDigest(hex(rnd, 32)).build();
    }

    static AdapterRef adapterRef(SplittableRandom rnd, String id) {
        return AdapterRef.newBuilder().setAdapterId(id).setAdapterVersion(3).setWeight(1.0).setTeam("team-a")
                .setDigest(hex(rnd, 32)).build();
    }

    static VersionTrigger trigger() {
        return VersionTrigger.newBuilder().setEventId("6f1c7a52-7d43-4a8e-9f0e-2b9d1c3e4f50")
                .setType(AdapterEventType.PUBLISH).setAdapterId("team-a/imdb").setAdapterVersion(3).build();
    }

    /** {@code n} float32 values ~ N(0, 0.02), little-endian as in safetensors. */
    static byte[] f32(SplittableRandom rnd, int n) {
        ByteBuffer buf = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            double u1 = 1.0 - rnd.nextDouble();
            double u2 = rnd.nextDouble();
            buf.putFloat((float) (0.02 * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)));
        }
        return buf.array();
    }

    static String hex(SplittableRandom rnd, int bytes) {
        byte[] b = new byte[bytes];
        rnd.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    static String sha256(byte[] a, byte[] b) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(a);
            md.update(b);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
