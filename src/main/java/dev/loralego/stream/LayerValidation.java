package dev.loralego.stream;

import dev.loralego.avro.AdapterLayer;

import java.nio.ByteBuffer;

/** Checks an adapter layer record before it is buffered: everything a bad publisher could get wrong. */
final class LayerValidation {
    private LayerValidation() {
    }

    /**
     * @param key the record key, which must be {@code group|module}
     * @throws GroupSequencer.RejectedInput naming the offending field
     */
    static void check(AdapterLayer layer, String key) {
        String expectedKey = layer.getGroup() + "|" + layer.getModule();
        if (!expectedKey.equals(key)) reject("record key '" + key + "' must be group|module = '" + expectedKey + "'", "module");
        if (layer.getAdapterId().isBlank() || layer.getAdapterId().contains("|")) reject("adapterId must be non-blank and contain no '|'", "adapterId");
        if (layer.getRank() < 1) reject("rank must be >= 1, got " + layer.getRank(), "rank");
        if (layer.getDIn() < 1 || layer.getDOut() < 1) reject("dimensions must be >= 1, got " + layer.getDIn() + "x" + layer.getDOut(), "dIn");
        if (!(layer.getScaling() > 0) || !Double.isFinite(layer.getScaling())) reject("scaling must be finite and > 0, got " + layer.getScaling(), "scaling");
        int size = TensorCodec.byteSize(layer.getDtype());
        long aBytes = (long) layer.getRank() * layer.getDIn() * size;
        long bBytes = (long) layer.getDOut() * layer.getRank() * size;
        if (layer.getA().remaining() != aBytes) {
            reject("lora_A of " + layer.getModule() + " has " + layer.getA().remaining() + " bytes, shape [" + layer.getRank()
                    + ", " + layer.getDIn() + "] " + layer.getDtype() + " needs " + aBytes, "a");
        }
        if (layer.getB().remaining() != bBytes) {
            reject("lora_B of " + layer.getModule() + " has " + layer.getB().remaining() + " bytes, shape [" + layer.getDOut()
                    + ", " + layer.getRank() + "] " + layer.getDtype() + " needs " + bBytes, "b");
        }
        String digest = Digests.layer(bytes(layer.getA()), bytes(layer.getB()));
        if (!digest.equals(layer.getDigest())) reject("digest mismatch: record says " + layer.getDigest() + ", bytes give " + digest, "digest");
        checkFinite(layer.getA(), layer, "a");
        checkFinite(layer.getB(), layer, "b");
    }

    private static void checkFinite(ByteBuffer bytes, AdapterLayer layer, String field) {
        int count = bytes.remaining() / TensorCodec.byteSize(layer.getDtype());
        int bad = TensorCodec.firstNonFinite(bytes, layer.getDtype(), count);
        if (bad >= 0) {
            reject((field.equals("a") ? "lora_A" : "lora_B") + " of " + layer.getModule() + " holds "
                    + TensorCodec.elementAt(bytes, layer.getDtype(), bad) + " at element " + bad, field);
        }
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer d = buffer.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    private static void reject(String message, String field) {
        throw new GroupSequencer.RejectedInput(message, field);
    }
}
