package dev.loralego.peft;

import java.util.Arrays;
import java.util.Objects;

/**
 * One entry of a safetensors header: name, element type, row-major shape and the byte range of its data.
 *
 * <p>{@code dataStart}/{@code dataEnd} are the header's {@code data_offsets}: relative to the first byte after
 * the header (see {@link SafetensorsFile#dataSectionOffset()} for the absolute position), end exclusive.
 *
 * <p>The element type may be any the format defines; only a {@linkplain #decodable() decodable} one (F32, F16,
 * BF16, F64) has a {@link #dtype()} and can be read as numbers. LoRA factors always are (PeftAdapter checks).
 *
 * @param name        tensor name as in the header
 * @param elementType element type, as named in the header
 * @param shape       dimensions, outermost first (copied; the accessor returns a copy)
 * @param dataStart   first byte, relative to the data section
 * @param dataEnd     one past the last byte, relative to the data section
 */
public record TensorInfo(String name, ElementType elementType, long[] shape, long dataStart, long dataEnd) {

    /** Checks non-null fields, non-negative ordered offsets and a byte length equal to what the shape needs. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(elementType, "elementType");
        shape = shape.clone();
        if (dataStart < 0 || dataEnd < dataStart) {
            throw new IllegalArgumentException("tensor '" + name + "': invalid data offsets [" + dataStart + ", " + dataEnd + "]");
        }
        long count = TensorShapes.elementCount(name, shape);
        String mismatch = elementType.byteRangeMismatch(shape, count, dataStart, dataEnd);
        if (mismatch != null) {
            throw new IllegalArgumentException("tensor '" + name + "': " + mismatch);
        }
    }

    /** A tensor of a floating-point {@link DType}. */
    public TensorInfo(String name, DType dtype, long[] shape, long dataStart, long dataEnd) {
        this(name, ElementType.of(Objects.requireNonNull(dtype, "dtype")), shape, dataStart, dataEnd);
    }

    /** Whether the elements can be decoded to numbers (F32, F16, BF16 or F64). */
    public boolean decodable() {
        return elementType.decodable();
    }

    /**
     * The floating-point dtype of a {@linkplain #decodable() decodable} tensor.
     *
     * @throws IllegalArgumentException naming the tensor and its element type if it is not decodable
     */
    public DType dtype() {
        DType d = elementType.floatType();
        if (d == null) {
            throw new IllegalArgumentException("tensor '" + name + "' has dtype " + elementType.safetensorsName()
                    + ", which cannot be decoded to numbers (only F32, F16, BF16 and F64 can)");
        }
        return d;
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** One dimension, without copying the shape. */
    public long dim(int i) {
        return shape[i];
    }

    /** Product of the dimensions. */
    public long elementCount() {
        return TensorShapes.elementCount(name, shape);
    }

    /** {@code dataEnd - dataStart}. */
    public long byteLength() {
        return dataEnd - dataStart;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && elementType == t.elementType && Arrays.equals(shape, t.shape)
                && dataStart == t.dataStart && dataEnd == t.dataEnd;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, elementType, Arrays.hashCode(shape), dataStart, dataEnd);
    }

    @Override
    public String toString() {
        return name + " " + elementType.safetensorsName() + TensorShapes.format(shape) + " @[" + dataStart + ", " + dataEnd + ")";
    }
}
