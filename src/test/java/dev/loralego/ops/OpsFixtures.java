package dev.loralego.ops;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.LoraConfigSnapshot;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.stream.Digests;
import dev.loralego.stream.TensorCodec;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;

/** A random adapter as the records a publisher writes (cut down from the stream tests' fixtures). */
final class OpsFixtures {
    /** Two modules of a made-up base model: name → {dIn, dOut}. */
    static final Map<String, int[]> MODULES = new LinkedHashMap<>();

    static {
        MODULES.put("layers.0.q_proj", new int[]{12, 10});
        MODULES.put("layers.0.v_proj", new int[]{12, 14});
    }

    private OpsFixtures() {
    }

    /** One adapter version's records. */
    record Adapter(String group, String id, long version, int rank, double scaling, Map<String, AdapterLayer> layers) {
        AdapterEvent publishEvent() {
            List<ModuleRef> refs = new ArrayList<>();
            layers.forEach((m, l) -> refs.add(new ModuleRef(m, l.getRank(), l.getDIn(), l.getDOut(), l.getDigest())));
            refs.sort((x, y) -> x.getModule().compareTo(y.getModule()));
            LoraConfigSnapshot config = LoraConfigSnapshot.newBuilder().setR(rank).setLoraAlpha(scaling * rank)
                    .setUseRslora(false).setFanInFanOut(false).setRankPattern(Map.of()).setAlphaPattern(Map.of())
                    .setTargetModules(List.of("q_proj", "v_proj")).setTaskType("CAUSAL_LM").build();
            return AdapterEvent.newBuilder().setType(AdapterEventType.PUBLISH).setEventId(UUID.randomUUID().toString())
                    .setGroup(group).setAdapterId(id).setAdapterVersion(version).setTeam("team-" + id)
                    .setBaseModel("test/base").setWeight(1.0).setConfig(config).setModules(refs)
                    .setAdapterDigest(null).build();
        }
    }

    /** A random F32 adapter over every module of {@link #MODULES}. */
    static Adapter adapter(String group, String id, long version, int rank, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double scaling = 2.0;
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : MODULES.entrySet()) {
            int dIn = e.getValue()[0], dOut = e.getValue()[1];
            double[] a = new double[rank * dIn];
            double[] b = new double[dOut * rank];
            for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextDouble() * 2 - 1);
            for (int i = 0; i < b.length; i++) b[i] = (float) ((rnd.nextDouble() * 2 - 1) * 0.1);
            byte[] aBytes = TensorCodec.encode(a, TensorDType.F32);
            byte[] bBytes = TensorCodec.encode(b, TensorDType.F32);
            layers.put(e.getKey(), AdapterLayer.newBuilder().setGroup(group).setAdapterId(id).setAdapterVersion(version)
                    .setModule(e.getKey()).setDtype(TensorDType.F32).setRank(rank).setDIn(dIn).setDOut(dOut)
                    .setScaling(scaling).setA(ByteBuffer.wrap(aBytes)).setB(ByteBuffer.wrap(bBytes))
                    .setDigest(Digests.layer(aBytes, bBytes)).build());
        }
        return new Adapter(group, id, version, rank, scaling, layers);
    }
}
