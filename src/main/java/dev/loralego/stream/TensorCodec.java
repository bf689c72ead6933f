package dev.loralego.stream;

import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.TensorDType;
import dev.loralego.lego.AdapterModule;
import dev.loralego.peft.DType;
import dev.loralego.peft.DTypeCodec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Raw little-endian tensor bytes (as in safetensors) to and from {@code double[]}, for the element types
 * that travel on the topics.
 */
public final class TensorCodec {
    private TensorCodec() {
    }

    /** Bytes per element of {@code dtype}. */
    public static int byteSize(TensorDType dtype) {
        return dtype == TensorDType.F32 ? 4 : 2;
    }

    /** Decodes {@code count} elements; the buffer must hold exactly that many. */
    public static double[] decode(ByteBuffer bytes, TensorDType dtype, int count) {
        ByteBuffer in = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() != (long) count * byteSize(dtype)) {
            throw new IllegalArgumentException("expected " + count + " " + dtype + " values (" + (long) count * byteSize(dtype)
                    + " bytes), got " + in.remaining() + " bytes");
        }
        double[] out = new double[count];
        DTypeCodec.decode(peftType(dtype), in, out, 0, count);
        return out;
    }

    /** The safetensors element type of a topic dtype (same names). */
    static DType peftType(TensorDType dtype) {
        return DType.valueOf(dtype.name());
    }

    /**
     * Index of the first element of {@code count} that is infinite or NaN, or -1 when all are finite: decided on the
     * raw bits (exponent all ones), without decoding.
     */
    public static int firstNonFinite(ByteBuffer bytes, TensorDType dtype, int count) {
        ByteBuffer in = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (in.remaining() != (long) count * byteSize(dtype)) {
            throw new IllegalArgumentException("expected " + count + " " + dtype + " values (" + (long) count * byteSize(dtype)
                    + " bytes), got " + in.remaining() + " bytes");
        }
        if (dtype == TensorDType.F32) {
            int[] v = new int[count];
            in.asIntBuffer().get(v);
            for (int i = 0; i < count; i++) if ((v[i] & 0x7F80_0000) == 0x7F80_0000) return i;
            return -1;
        }
        short[] h = new short[count];
        in.asShortBuffer().get(h);
        int mask = dtype == TensorDType.BF16 ? 0x7F80 : 0x7C00;
        for (int i = 0; i < count; i++) if ((h[i] & mask) == mask) return i;
        return -1;
    }

    /** The one element at {@code index}, decoded (for messages). */
    public static double elementAt(ByteBuffer bytes, TensorDType dtype, int index) {
        ByteBuffer in = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int at = in.position() + index * byteSize(dtype);
        return switch (dtype) {
            case F32 -> in.getFloat(at);
            case F16 -> DTypeCodec.halfToFloat(in.getShort(at));
            case BF16 -> DTypeCodec.bfloat16ToFloat(in.getShort(at));
        };
    }

    /**
     * Encodes values with {@link DTypeCodec} (round to nearest even straight from double, as the offline writer does,
     * so a merged tensor has the same bytes whichever of the two wrote it).
     */
    public static byte[] encode(double[] values, TensorDType dtype) {
        byte[] out = new byte[Math.multiplyExact(values.length, byteSize(dtype))];
        DTypeCodec.encode(peftType(dtype), values, 0, values.length, out, 0);
        return out;
    }

    /** The layer's factors as the merge math takes them. */
    public static AdapterModule toAdapterModule(AdapterLayer layer, double weight) {
        double[] a = decode(layer.getA(), layer.getDtype(), layer.getRank() * layer.getDIn());
        double[] b = decode(layer.getB(), layer.getDtype(), layer.getDOut() * layer.getRank());
        return new AdapterModule(layer.getAdapterId(), weight, layer.getScaling(), layer.getRank(), layer.getDIn(),
                layer.getDOut(), a, b);
    }
}
