package dev.loralego.client;

import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.peft.DTypeCodec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * A hand-made merged layer, as the service writes it: values exactly representable in its dtype, bytes and digest
 * computed here; planted on the topics with {@link ClientTestKafka#plant}.
 */
final class PlantedLayer {
    final String group;
    final String module;
    final int rank;
    final int dIn;
    final int dOut;
    final long sequence;
    final TensorDType dtype;
    final float[] a;
    final float[] b;
    final byte[] aBytes;
    final byte[] bBytes;
    final String digest;

    private PlantedLayer(String group, String module, int rank, int dIn, int dOut, long sequence, TensorDType dtype,
                    float[] a, float[] b) {
        this.group = group;
        this.module = module;
        this.rank = rank;
        this.dIn = dIn;
        this.dOut = dOut;
        this.sequence = sequence;
        this.dtype = dtype;
        this.a = a;
        this.b = b;
        this.aBytes = encode(a, dtype);
        this.bBytes = encode(b, dtype);
        this.digest = NaiveReference.sha256(aBytes, bBytes);
    }

    static PlantedLayer of(String group, String module, int rank, int dIn, int dOut, long sequence, TensorDType dtype,
                      SplittableRandom rnd) {
        return new PlantedLayer(group, module, rank, dIn, dOut, sequence, dtype, values(rank * dIn, dtype, rnd),
                values(dOut * rank, dtype, rnd));
    }

    MergedLayer record() {
        return MergedLayer.newBuilder().setGroup(group).setModule(module).setSequence(sequence).setDtype(dtype)
                .setRank(rank).setDIn(dIn).setDOut(dOut).setA(ByteBuffer.wrap(aBytes)).setB(ByteBuffer.wrap(bBytes))
                .setDigest(digest).setInertia(0.25).setLiveAdapters(1).build();
    }

    private static float[] values(int n, TensorDType dtype, SplittableRandom rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            switch (dtype) {
                case F32 -> v[i] = (float) (rnd.nextDouble() * 2 - 1);
                // Upper 16 bits of a float: exact in BF16.
                case BF16 -> v[i] = Float.intBitsToFloat(Float.floatToIntBits((float) (rnd.nextDouble() * 2 - 1)) & 0xffff0000);
                // k / 256 with |k| <= 1024: 11 significant bits at most, exact in F16.
                case F16 -> v[i] = (rnd.nextInt(2049) - 1024) / 256f;
            }
        }
        return v;
    }

    private static byte[] encode(float[] v, TensorDType dtype) {
        return switch (dtype) {
            case F32 -> NaiveReference.f32Bytes(v);
            case BF16 -> NaiveReference.bf16Bytes(v);
            case F16 -> {
                ByteBuffer buf = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) buf.putShort(DTypeCodec.floatToHalf(f));
                yield buf.array();
            }
        };
    }

    /**
     * The manifest of version {@code sequence} of {@code group} over {@code modules} (sorted by name, digests as the
     * service computes them), as the service would write it.
     */
    static MergedVersionManifest manifest(String group, long sequence, List<PlantedLayer> modules, List<AdapterRef> adapters) {
        List<PlantedLayer> sorted = new ArrayList<>(modules);
        sorted.sort((x, y) -> x.module.compareTo(y.module));
        List<ModuleRef> refs = new ArrayList<>();
        for (PlantedLayer p : sorted) refs.add(new ModuleRef(p.module, p.rank, p.dIn, p.dOut, p.digest));
        Map<String, String> params = new TreeMap<>(Map.of("k", "0", "seed", "42", "canonical", "svd"));
        return MergedVersionManifest.newBuilder().setGroup(group).setSequence(sequence).setBaseModel("tiny-base")
                .setTrigger(new VersionTrigger("event-" + sequence, AdapterEventType.PUBLISH, "a", sequence))
                .setAdapters(adapters).setModules(refs)
                .setDigest(NaiveReference.wholeDigest(refs.stream().map(ModuleRef::getModule).toList(),
                        refs.stream().map(ModuleRef::getDigest).toList()))
                .setFanInFanOut(true).setTaskType("CAUSAL_LM").setParameters(params)
                .setEventTimestamp(1_700_000_000_000L + sequence).setServiceVersion("lora-lego test").build();
    }
}
