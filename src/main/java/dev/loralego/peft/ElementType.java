package dev.loralego.peft;

/**
 * Every element type the safetensors format defines, named as in a header ({@code "dtype": "I64"}), with its width
 * in bits: the {@code Dtype} enum of huggingface/safetensors, whose fifteen types of 0.4 later releases extended
 * with F4, F6_E2M3, F6_E3M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ and C64. A name added after these is refused as
 * unknown: without its width its byte range cannot be checked.
 *
 * <p>{@link SafetensorsFile} accepts a tensor of any of them, checking its byte range against its shape as the
 * reference implementation does: {@code count × bits} must be a whole number of bytes and equal the range. Only the
 * four that are a {@link DType} (F32, F16, BF16, F64) can be decoded to numbers, be LoRA factors or be written; the
 * others (booleans, integers, 8-bit and narrower floats, complex) can only be read as raw bytes. They occur in real
 * adapters beside the LoRA factors, e.g. the I64 {@code num_batches_tracked} of a {@code modules_to_save} BatchNorm,
 * and like every such extra tensor they are left out of merges.
 */
public enum ElementType {
    /** Boolean, one byte per element. */
    BOOL(8, null),
    /** 4-bit float (OCP MX FP4, E2M1); two elements per byte. */
    F4(4, null),
    /** 6-bit float (OCP MX FP6, E2M3); four elements per three bytes. */
    F6_E2M3(6, null),
    /** 6-bit float (OCP MX FP6, E3M2); four elements per three bytes. */
    F6_E3M2(6, null),
    /** Unsigned 8-bit integer. */
    U8(8, null),
    /** Signed 8-bit integer. */
    I8(8, null),
    /** 8-bit float, 5 exponent and 2 mantissa bits. */
    F8_E5M2(8, null),
    /** 8-bit float, 4 exponent and 3 mantissa bits. */
    F8_E4M3(8, null),
    /** 8-bit power-of-two scale (OCP MX E8M0). */
    F8_E8M0(8, null),
    /** 8-bit float E4M3, finite, unsigned zero (PyTorch {@code float8_e4m3fnuz}). */
    F8_E4M3FNUZ(8, null),
    /** 8-bit float E5M2, finite, unsigned zero (PyTorch {@code float8_e5m2fnuz}). */
    F8_E5M2FNUZ(8, null),
    /** Signed 16-bit integer. */
    I16(16, null),
    /** Unsigned 16-bit integer. */
    U16(16, null),
    /** IEEE 754 binary16: {@link DType#F16}. */
    F16(16, DType.F16),
    /** bfloat16: {@link DType#BF16}. */
    BF16(16, DType.BF16),
    /** Signed 32-bit integer. */
    I32(32, null),
    /** Unsigned 32-bit integer. */
    U32(32, null),
    /** IEEE 754 binary32: {@link DType#F32}. */
    F32(32, DType.F32),
    /** Complex number of two binary32 parts. */
    C64(64, null),
    /** IEEE 754 binary64: {@link DType#F64}. */
    F64(64, DType.F64),
    /** Signed 64-bit integer. */
    I64(64, null),
    /** Unsigned 64-bit integer. */
    U64(64, null);

    private final int bits;
    private final DType dtype;

    ElementType(int bits, DType dtype) {
        this.bits = bits;
        this.dtype = dtype;
    }

    /** Bits per element (4 and 6 for the sub-byte floats, otherwise a multiple of 8). */
    public int bits() {
        return bits;
    }

    /** The name used in a safetensors header (the constant's name). */
    public String safetensorsName() {
        return name();
    }

    /** Whether elements of this type can be decoded to numbers: F32, F16, BF16 and F64, the {@link DType}s. */
    public boolean decodable() {
        return dtype != null;
    }

    /** The {@link DType} this type decodes as, or {@code null} if it is not one (see {@link #decodable()}). */
    public DType floatType() {
        return dtype;
    }

    /** The element type of a {@link DType}. */
    public static ElementType of(DType dtype) {
        return valueOf(dtype.safetensorsName());
    }

    /** The size of one element for messages: {@code "8 bytes"}, or {@code "4 bits"} for a sub-byte type. */
    public String sizeText() {
        return bits % 8 == 0 ? bits / 8 + " bytes" : bits + " bits";
    }

    /**
     * The exact number of bytes {@code count} elements occupy.
     *
     * @throws IllegalArgumentException if {@code count × bits} is not a whole number of bytes (an odd number of F4
     *                                  elements, say), which the format does not allow
     * @throws ArithmeticException      if the byte count exceeds {@code Long.MAX_VALUE}
     */
    public long byteLength(long count) {
        if (count < 0) {
            throw new IllegalArgumentException("negative element count " + count);
        }
        if (bits % 8 == 0) {
            return Math.multiplyExact(count, bits / 8);
        }
        // Groups of 8 elements fill exactly `bits` bytes; the rest must fill whole bytes too. No intermediate overflows.
        long restBits = (count % 8) * bits;
        if (restBits % 8 != 0) {
            throw new IllegalArgumentException(count + " elements of " + name() + " (" + bits + " bits each) are not a"
                    + " whole number of bytes");
        }
        return Math.addExact(Math.multiplyExact(count / 8, bits), restBits / 8);
    }

    /**
     * Why the byte range {@code [begin, end)} cannot hold a tensor of this type with {@code shape} ({@code count}
     * elements), or null if it holds exactly that: the one check of {@link SafetensorsFile} and {@link TensorInfo}.
     */
    String byteRangeMismatch(long[] shape, long count, long begin, long end) {
        long needed;
        try {
            needed = byteLength(count);
        } catch (ArithmeticException e) {
            needed = -1;
        } catch (IllegalArgumentException e) {
            return "shape " + TensorShapes.format(shape) + ": " + e.getMessage() + ", which the format does not allow";
        }
        if (needed == end - begin) return null;
        return "shape " + TensorShapes.format(shape) + " of " + name() + " needs " + count + " x " + sizeText()
                + " but data_offsets [" + begin + ", " + end + "] span " + (end - begin);
    }

    /**
     * The element type for a safetensors header name (exact, case-sensitive, as the format defines it).
     *
     * @throws IllegalArgumentException for a name the format does not define
     */
    public static ElementType parse(String safetensorsName) {
        for (ElementType t : values()) {
            if (t.name().equals(safetensorsName)) {
                return t;
            }
        }
        StringBuilder known = new StringBuilder();
        for (ElementType t : values()) {
            known.append(known.length() == 0 ? "" : ", ").append(t.name());
        }
        throw new IllegalArgumentException("unknown dtype '" + safetensorsName + "' (the safetensors format defines "
                + known + ")");
    }
}
