package dev.loralego.peft;

import java.util.Locale;

/**
 * The floating-point element types this project reads and writes in safetensors files, named as in the
 * safetensors header ({@code "dtype": "BF16"}). All are little-endian IEEE 754 (BF16: the top 16 bits of an
 * IEEE binary32). A file may hold tensors of other types too ({@link ElementType}: every type the format defines);
 * those are read as raw bytes only, never decoded or written.
 */
public enum DType {
    /** IEEE 754 binary32. */
    F32("F32", 4),
    /** IEEE 754 binary16 (half precision): 1 sign, 5 exponent, 10 mantissa bits. */
    F16("F16", 2),
    /** bfloat16: the upper half of a binary32 (1 sign, 8 exponent, 7 mantissa bits). */
    BF16("BF16", 2),
    /** IEEE 754 binary64. */
    F64("F64", 8);

    private final String safetensorsName;
    private final int byteSize;

    DType(String safetensorsName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The name used in a safetensors header. */
    public String safetensorsName() {
        return safetensorsName;
    }

    /**
     * The dtype for a safetensors header name (exact, case-sensitive, as the format defines it).
     *
     * @throws IllegalArgumentException for any other name, including valid safetensors dtypes this project
     *                                  does not handle (I8, U8, I64, F8_E4M3, ...)
     */
    public static DType parse(String safetensorsName) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(safetensorsName)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown or unsupported dtype '" + safetensorsName
                + "' (supported: F32, F16, BF16, F64)");
    }

    /**
     * A dtype from a user-facing name: case-insensitive, also accepting the common aliases
     * {@code float32/fp32, float16/fp16/half, bfloat16, float64/fp64/double}.
     *
     * @throws IllegalArgumentException for an unknown name
     */
    public static DType fromUserName(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        switch (n) {
            case "f32": case "fp32": case "float32": case "float":
                return F32;
            case "f16": case "fp16": case "float16": case "half":
                return F16;
            case "bf16": case "bfloat16":
                return BF16;
            case "f64": case "fp64": case "float64": case "double":
                return F64;
            default:
                throw new IllegalArgumentException("unknown dtype '" + name + "' (use f32, f16, bf16 or f64)");
        }
    }
}
