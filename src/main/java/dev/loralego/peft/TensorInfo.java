package dev.loralego.peft;

import java.util.Arrays;
import java.util.Objects;

/**
 * One entry of a safetensors header: name, dtype, row-major shape and the byte range of its data.
 *
 * <p>{@code dataStart}/{@code dataEnd} are the header's {@code data_offsets}: relative to the first byte after
 * the header (see {@link SafetensorsFile#dataSectionOffset()} for the absolute position), end exclusive.
 *
 * @param name      tensor name as in the header
 * @param dtype     element type
 * @param shape     dimensions, outermost first (copied; the accessor returns a copy)
 * @param dataStart first byte, relative to the data section
 * @param dataEnd   one past the last byte, relative to the data section
 */
public record TensorInfo(String name, DType dtype, long[] shape, long dataStart, long dataEnd) {

    /** Checks non-null fields, non-negative ordered offsets and a byte length equal to elements × dtype size. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
        if (dataStart < 0 || dataEnd < dataStart) {
            throw new IllegalArgumentException("tensor '" + name + "': invalid data offsets [" + dataStart + ", " + dataEnd + "]");
        }
        long count = TensorShapes.elementCount(name, shape);
        if (count > Long.MAX_VALUE / dtype.byteSize() || count * dtype.byteSize() != dataEnd - dataStart) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + TensorShapes.format(shape) + " of "
                    + dtype.safetensorsName() + " needs " + count + " x " + dtype.byteSize() + " bytes but data_offsets ["
                    + dataStart + ", " + dataEnd + "] hold " + (dataEnd - dataStart));
        }
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
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && dataStart == t.dataStart && dataEnd == t.dataEnd;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), dataStart, dataEnd);
    }

    @Override
    public String toString() {
        return name + " " + dtype.safetensorsName() + TensorShapes.format(shape) + " @[" + dataStart + ", " + dataEnd + ")";
    }
}
