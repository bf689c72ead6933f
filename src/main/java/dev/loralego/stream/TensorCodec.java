package dev.loralego.stream;

import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.TensorDType;
import dev.loralego.lego.AdapterModule;
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
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < count; i++) out[i] = in.getFloat();
            }
            case F16 -> {
                for (int i = 0; i < count; i++) out[i] = DTypeCodec.halfToFloat(in.getShort());
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) out[i] = DTypeCodec.bfloat16ToFloat(in.getShort());
            }
        }
        return out;
    }

    /** Encodes values (rounded to nearest even in the narrower types). */
    public static byte[] encode(double[] values, TensorDType dtype) {
        ByteBuffer out = ByteBuffer.allocate(values.length * byteSize(dtype)).order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case F32 -> {
                for (double v : values) out.putFloat((float) v);
            }
            case F16 -> {
                for (double v : values) out.putShort(DTypeCodec.floatToHalf((float) v));
            }
            case BF16 -> {
                for (double v : values) out.putShort(DTypeCodec.floatToBFloat16((float) v));
            }
        }
        return out.array();
    }

    /** The layer's factors as the merge math takes them. */
    public static AdapterModule toAdapterModule(AdapterLayer layer, double weight) {
        double[] a = decode(layer.getA(), layer.getDtype(), layer.getRank() * layer.getDIn());
        double[] b = decode(layer.getB(), layer.getDtype(), layer.getDOut() * layer.getRank());
        return new AdapterModule(layer.getAdapterId(), weight, layer.getScaling(), layer.getRank(), layer.getDIn(),
                layer.getDOut(), a, b);
    }
}
