package dev.loralego.peft;

import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor announced to a streaming {@link SafetensorsWriter} before its data: name, stored dtype and shape.
 *
 * @param name  tensor name (non-empty, not {@code __metadata__})
 * @param dtype stored element type
 * @param shape dimensions, outermost first (copied)
 */
public record TensorSpec(String name, DType dtype, long[] shape) {

    /** Validates the name and the shape. */
    public TensorSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype of " + name);
        if (name.isEmpty() || name.equals(SafetensorsFile.METADATA_KEY)) {
            throw new IllegalArgumentException("invalid tensor name '" + name + "'");
        }
        shape = shape.clone();
        long count = TensorShapes.elementCount(name, shape);
        if (count > Long.MAX_VALUE / dtype.byteSize()) {
            throw new IllegalArgumentException("tensor '" + name + "': byte size overflows a long");
        }
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Product of the dimensions. */
    public long elementCount() {
        return TensorShapes.elementCount(name, shape);
    }

    /** Stored size in bytes. */
    public long byteLength() {
        return elementCount() * dtype.byteSize();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + dtype.safetensorsName() + TensorShapes.format(shape);
    }
}
