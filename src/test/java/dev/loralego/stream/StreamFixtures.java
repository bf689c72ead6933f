package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.LoraConfigSnapshot;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.lego.AdapterModule;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;

/** Random adapters for the stream tests, as the records a publisher writes and as the math's input. */
public final class StreamFixtures {
    /** Two modules of a made-up base model: name → {dIn, dOut}. */
    public static final Map<String, int[]> MODULES = new LinkedHashMap<>();

    static {
        MODULES.put("layers.0.q_proj", new int[]{12, 10});
        MODULES.put("layers.0.v_proj", new int[]{12, 14});
    }

    static final String BASE_MODEL = "test/base";

    private StreamFixtures() {
    }

    /** One adapter version: its layers (F32) and factors per module. */
    public record Adapter(String group, String id, long version, double weight, int rank, double scaling,
                   Map<String, AdapterLayer> layers, Map<String, AdapterModule> factors) {

        public AdapterEvent publishEvent() {
            List<ModuleRef> refs = new ArrayList<>();
            layers.forEach((m, l) -> refs.add(new ModuleRef(m, l.getRank(), l.getDIn(), l.getDOut(), l.getDigest())));
            refs.sort((x, y) -> x.getModule().compareTo(y.getModule()));
            LoraConfigSnapshot config = LoraConfigSnapshot.newBuilder().setR(rank).setLoraAlpha(scaling * rank)
                    .setUseRslora(false).setFanInFanOut(false).setRankPattern(Map.of()).setAlphaPattern(Map.of())
                    .setTargetModules(List.of("q_proj", "v_proj")).setTaskType("CAUSAL_LM").build();
            return AdapterEvent.newBuilder().setType(AdapterEventType.PUBLISH).setEventId(UUID.randomUUID().toString())
                    .setGroup(group).setAdapterId(id).setAdapterVersion(version).setTeam("team-" + id)
                    .setBaseModel(BASE_MODEL).setWeight(weight).setConfig(config).setModules(refs)
                    .setAdapterDigest(null).build();
        }
    }

    static AdapterEvent withdrawEvent(String group, String id) {
        return AdapterEvent.newBuilder().setType(AdapterEventType.WITHDRAW).setEventId(UUID.randomUUID().toString())
                .setGroup(group).setAdapterId(id).setAdapterVersion(-1).setWeight(1.0).setModules(List.of()).build();
    }

    /** A random adapter over {@code modules} (a subset of {@link #MODULES}). */
    static Adapter adapter(String group, String id, long version, int rank, double weight, long seed, List<String> modules) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double scaling = 2.0;
        Map<String, AdapterLayer> layers = new LinkedHashMap<>();
        Map<String, AdapterModule> factors = new LinkedHashMap<>();
        for (String m : modules) {
            int dIn = MODULES.get(m)[0], dOut = MODULES.get(m)[1];
            double[] a = new double[rank * dIn];
            double[] b = new double[dOut * rank];
            for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextDouble() * 2 - 1);
            for (int i = 0; i < b.length; i++) b[i] = (float) ((rnd.nextDouble() * 2 - 1) * 0.1);
            byte[] aBytes = TensorCodec.encode(a, TensorDType.F32);
            byte[] bBytes = TensorCodec.encode(b, TensorDType.F32);
            layers.put(m, AdapterLayer.newBuilder().setGroup(group).setAdapterId(id).setAdapterVersion(version).setModule(m)
                    .setDtype(TensorDType.F32).setRank(rank).setDIn(dIn).setDOut(dOut).setScaling(scaling)
                    .setA(ByteBuffer.wrap(aBytes)).setB(ByteBuffer.wrap(bBytes)).setDigest(Digests.layer(aBytes, bBytes))
                    .build());
            factors.put(m, new AdapterModule(id, weight, scaling, rank, dIn, dOut, a, b));
        }
        return new Adapter(group, id, version, weight, rank, scaling, layers, factors);
    }

    public static Adapter adapter(String group, String id, long version, int rank, long seed) {
        return adapter(group, id, version, rank, 1.0, seed, new ArrayList<>(MODULES.keySet()));
    }
}
