package dev.loralego.peft;

import java.util.Arrays;
import java.util.Objects;

/**
 * A whole tensor to write with {@link SafetensorsWriter#write}: name, stored dtype, shape and its values in
 * row-major order, held either as {@code double[]} or {@code float[]} (exactly one is non-null) and encoded to
 * {@code dtype} on write (rounding to nearest even when narrowing).
 *
 * @param name   tensor name
 * @param dtype  stored element type
 * @param shape  dimensions (copied)
 * @param values double values, or {@code null} when {@code floats} is given; not copied
 * @param floats float values, or {@code null} when {@code values} is given; not copied
 */
public record TensorData(String name, DType dtype, long[] shape, double[] values, float[] floats) {

    /** Checks that exactly one value array is given and that its length matches the shape. */
    public TensorData {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype of " + name);
        shape = shape.clone();
        if ((values == null) == (floats == null)) {
            throw new IllegalArgumentException("tensor '" + name + "': give exactly one of double[] or float[] values");
        }
        long count = TensorShapes.elementCount(name, shape);
        int length = values != null ? values.length : floats.length;
        if (count != length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + TensorShapes.format(shape) + " has "
                    + count + " elements but " + length + " values were given");
        }
    }

    /** A tensor with double values. */
    public TensorData(String name, DType dtype, long[] shape, double[] values) {
        this(name, dtype, shape, values, null);
    }

    /** A tensor with float values. */
    public static TensorData ofFloats(String name, DType dtype, long[] shape, float[] floats) {
        return new TensorData(name, dtype, shape, null, floats);
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The header entry this tensor needs. */
    public TensorSpec spec() {
        return new TensorSpec(name, dtype, shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorData t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && Arrays.equals(values, t.values) && Arrays.equals(floats, t.floats);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), Arrays.hashCode(values), Arrays.hashCode(floats));
    }

    @Override
    public String toString() {
        return "TensorData[" + name + " " + dtype.safetensorsName() + TensorShapes.format(shape) + "]";
    }
}
