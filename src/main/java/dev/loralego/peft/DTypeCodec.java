package dev.loralego.peft;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * Conversions between Java {@code float}/{@code double} and the stored element types of {@link DType}, and
 * bulk little-endian encoding/decoding of arrays (the byte order of safetensors).
 *
 * <p>Every narrowing conversion rounds to nearest, ties to even (IEEE 754 roundTiesToEven), including into the
 * subnormal range and to ±infinity on overflow; NaN stays NaN (made quiet, sign and top payload bits kept).
 * Widening conversions are exact. Java 17 has no {@code Float.floatToFloat16} (added in Java 20), so binary16
 * is implemented here with bit manipulation.
 *
 * <p>{@code double → F16/BF16} is done without double rounding: the double is first rounded to a float with
 * round-to-odd (which keeps enough information because a float has more than two extra bits of precision),
 * then that float is rounded to nearest-even; the result equals direct rounding of the double.
 */
public final class DTypeCodec {

    private static final VarHandle LE_FLOAT = MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE_DOUBLE = MethodHandles.byteArrayViewVarHandle(double[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LE_SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private DTypeCodec() {
    }

    // ---------------------------------------------------------------- scalar conversions

    /**
     * binary32 → binary16, round to nearest even. Values of magnitude ≥ 65520 become ±inf; values of
     * magnitude ≤ 2^-25 become ±0; NaN becomes a quiet NaN with the float's sign and top payload bits.
     */
    public static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int abs = x & 0x7fff_ffff;
        if (abs >= 0x7f80_0000) {
            if (abs == 0x7f80_0000) {
                return (short) (sign | 0x7c00);
            }
            // NaN: keep the top 10 payload bits, force the quiet bit so it can never collapse to infinity.
            return (short) (sign | 0x7c00 | 0x0200 | ((abs >>> 13) & 0x03ff));
        }
        if (abs >= 0x477f_f000) {
            // >= 65520 = halfway between the largest half (65504) and 2^16: ties-to-even goes up to infinity.
            return (short) (sign | 0x7c00);
        }
        if (abs >= 0x3880_0000) {
            // Normal half (>= 2^-14): rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
            int rebased = abs - 0x3800_0000;
            int rounded = rebased + 0x0fff + ((rebased >>> 13) & 1);
            return (short) (sign | (rounded >>> 13));
        }
        if (abs < 0x3300_0000) {
            // < 2^-25: less than half the smallest subnormal, rounds to zero.
            return (short) sign;
        }
        // Subnormal half: value = M * 2^(e - 150) with the 24-bit significand M; in units of 2^-24 that is
        // M * 2^(e - 126), i.e. M shifted right by (126 - e) in [14, 24], rounded to nearest even.
        int e = abs >>> 23;
        int significand = (abs & 0x007f_ffff) | 0x0080_0000;
        int shift = 126 - e;
        int q = significand >>> shift;
        int rem = significand & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        if (rem > half || (rem == half && (q & 1) == 1)) {
            q++; // may carry into 0x400, which is exactly the smallest normal half
        }
        return (short) (sign | q);
    }

    /**
     * The float bits of every half, computed once by {@link #halfToFloatComputed}: decoding F16 tensors is a
     * table lookup (the branchy bit manipulation ran at a third of the BF16 speed; docs/results/perf.md).
     */
    private static final int[] HALF_TO_FLOAT_BITS = new int[1 << 16];

    static {
        for (int h = 0; h < HALF_TO_FLOAT_BITS.length; h++) {
            HALF_TO_FLOAT_BITS[h] = Float.floatToRawIntBits(halfToFloatComputed((short) h));
        }
    }

    /** binary16 → binary32, exact (every half is a float). NaN payloads are kept. */
    public static float halfToFloat(short h) {
        return Float.intBitsToFloat(HALF_TO_FLOAT_BITS[h & 0xffff]);
    }

    /** {@link #halfToFloat} by bit manipulation (fills the table). */
    static float halfToFloatComputed(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x03ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f80_0000 | (mant << 13));
        }
        if (exp == 0) {
            // zero or subnormal: mant * 2^-24, exact in float
            float magnitude = mant * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /**
     * binary32 → bfloat16, round to nearest even on the top 16 bits (overflow gives ±inf); NaN stays a quiet
     * NaN with its sign and top payload bits.
     */
    public static short floatToBFloat16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fff_ffff) > 0x7f80_0000) {
            return (short) ((x >>> 16) | 0x0040);
        }
        return roundBitsToBFloat16(x);
    }

    /** The bits of a non-NaN binary32 rounded to its upper 16 bits, to nearest even. */
    private static short roundBitsToBFloat16(int x) {
        return (short) ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
    }

    /** bfloat16 → binary32, exact. */
    public static float bfloat16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** binary64 → binary16, round to nearest even (no double rounding). */
    public static short doubleToHalf(double d) {
        return floatToHalf(roundToOddFloat(d));
    }

    /** binary64 → bfloat16, round to nearest even (no double rounding). */
    public static short doubleToBFloat16(double d) {
        long bits = Double.doubleToRawLongBits(d);
        int exponent = (int) (bits >>> 52) & 0x7ff;
        if (exponent >= FLOAT_NORMAL_MIN_EXPONENT && exponent <= FLOAT_NORMAL_MAX_EXPONENT) {
            // roundToOddFloat's fast path, then floatToBFloat16 without its NaN case (the float is a finite normal)
            return roundBitsToBFloat16(roundToOddFloatBits(bits, exponent));
        }
        return floatToBFloat16(roundToOddFloatSlow(d));
    }

    /**
     * The float nearest to {@code d} in round-to-odd mode: exact values stay, inexact ones go to the neighbour
     * whose last mantissa bit is 1. Rounding that float to a format with at least two fewer significand bits
     * gives the same result as rounding {@code d} directly. Overflow gives ±inf (the callers' target formats
     * overflow well before the largest float), NaN stays NaN.
     */
    static float roundToOddFloat(double d) {
        long bits = Double.doubleToRawLongBits(d);
        int exponent = (int) (bits >>> 52) & 0x7ff;
        if (exponent >= FLOAT_NORMAL_MIN_EXPONENT && exponent <= FLOAT_NORMAL_MAX_EXPONENT) {
            // A float normal below the top binade: truncate the significand to 23 bits, then set the last bit when anything was cut
            // off (round-to-odd is truncation with a sticky last bit). Branch-free; the merged tensors' values are
            // all here.
            return Float.intBitsToFloat(roundToOddFloatBits(bits, exponent));
        }
        return roundToOddFloatSlow(d);
    }

    /** The bits of {@link #roundToOddFloat} of the double with these bits, whose biased exponent is in the fast range. */
    private static int roundToOddFloatBits(long bits, int exponent) {
        long mantissa = bits & 0x000f_ffff_ffff_ffffL;
        int f = (int) (bits >>> 32) & 0x8000_0000 | (exponent - 896) << 23 | (int) (mantissa >>> 29);
        return f | (int) ((mantissa & 0x1fff_ffffL) + 0x1fff_ffffL >>> 29);
    }

    /**
     * Biased binary64 exponents of the fast path: the binary32 normals (unbiased -126..127) but the top binade, where
     * the slow path overflows to infinity what round-to-odd would keep at the largest float (same final result).
     */
    private static final int FLOAT_NORMAL_MIN_EXPONENT = 1023 - 126, FLOAT_NORMAL_MAX_EXPONENT = 1023 + 126;

    /** {@link #roundToOddFloat} for every double (zero, float subnormals, overflow, NaN), through the JDK's rounding. */
    static float roundToOddFloatSlow(double d) {
        float f = (float) d;
        if (Double.isNaN(d) || Float.isInfinite(f) || (double) f == d) {
            return f;
        }
        if ((Float.floatToRawIntBits(f) & 1) == 0) {
            // RNE chose the even neighbour; round-to-odd picks the other neighbour (towards d).
            f = Math.nextAfter(f, d);
        }
        return f;
    }

    // ---------------------------------------------------------------- bulk, byte[]

    /** Encodes {@code n} floats from {@code src[srcOff..]} as {@code type}, little-endian, into {@code dst[dstOff..]}. */
    public static void encode(DType type, float[] src, int srcOff, int n, byte[] dst, int dstOff) {
        checkRange(src.length, srcOff, n, dst.length, dstOff, (long) n * type.byteSize());
        switch (type) {
            case F32:
                for (int i = 0; i < n; i++) {
                    LE_FLOAT.set(dst, dstOff + 4 * i, src[srcOff + i]);
                }
                break;
            case F64:
                for (int i = 0; i < n; i++) {
                    LE_DOUBLE.set(dst, dstOff + 8 * i, (double) src[srcOff + i]);
                }
                break;
            case F16:
                for (int i = 0; i < n; i++) {
                    LE_SHORT.set(dst, dstOff + 2 * i, floatToHalf(src[srcOff + i]));
                }
                break;
            case BF16:
                for (int i = 0; i < n; i++) {
                    LE_SHORT.set(dst, dstOff + 2 * i, floatToBFloat16(src[srcOff + i]));
                }
                break;
            default:
                throw new AssertionError(type);
        }
    }

    /** Encodes {@code n} doubles from {@code src[srcOff..]} as {@code type}, little-endian, into {@code dst[dstOff..]}. */
    public static void encode(DType type, double[] src, int srcOff, int n, byte[] dst, int dstOff) {
        checkRange(src.length, srcOff, n, dst.length, dstOff, (long) n * type.byteSize());
        switch (type) {
            case F32:
                for (int i = 0; i < n; i++) {
                    LE_FLOAT.set(dst, dstOff + 4 * i, (float) src[srcOff + i]);
                }
                break;
            case F64:
                for (int i = 0; i < n; i++) {
                    LE_DOUBLE.set(dst, dstOff + 8 * i, src[srcOff + i]);
                }
                break;
            case F16:
                for (int i = 0; i < n; i++) {
                    LE_SHORT.set(dst, dstOff + 2 * i, doubleToHalf(src[srcOff + i]));
                }
                break;
            case BF16:
                for (int i = 0; i < n; i++) {
                    LE_SHORT.set(dst, dstOff + 2 * i, doubleToBFloat16(src[srcOff + i]));
                }
                break;
            default:
                throw new AssertionError(type);
        }
    }

    /** Decodes {@code n} little-endian {@code type} elements from {@code src[srcOff..]} into floats (F64 rounds to nearest even). */
    public static void decode(DType type, byte[] src, int srcOff, float[] dst, int dstOff, int n) {
        checkRange(dst.length, dstOff, n, src.length, srcOff, (long) n * type.byteSize());
        switch (type) {
            case F32:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = (float) LE_FLOAT.get(src, srcOff + 4 * i);
                }
                break;
            case F64:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = (float) (double) LE_DOUBLE.get(src, srcOff + 8 * i);
                }
                break;
            case F16:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = halfToFloat((short) LE_SHORT.get(src, srcOff + 2 * i));
                }
                break;
            case BF16:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = bfloat16ToFloat((short) LE_SHORT.get(src, srcOff + 2 * i));
                }
                break;
            default:
                throw new AssertionError(type);
        }
    }

    /** Decodes {@code n} little-endian {@code type} elements from {@code src[srcOff..]} into doubles (exact). */
    public static void decode(DType type, byte[] src, int srcOff, double[] dst, int dstOff, int n) {
        checkRange(dst.length, dstOff, n, src.length, srcOff, (long) n * type.byteSize());
        switch (type) {
            case F32:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = (float) LE_FLOAT.get(src, srcOff + 4 * i);
                }
                break;
            case F64:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = (double) LE_DOUBLE.get(src, srcOff + 8 * i);
                }
                break;
            case F16:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = halfToFloat((short) LE_SHORT.get(src, srcOff + 2 * i));
                }
                break;
            case BF16:
                for (int i = 0; i < n; i++) {
                    dst[dstOff + i] = bfloat16ToFloat((short) LE_SHORT.get(src, srcOff + 2 * i));
                }
                break;
            default:
                throw new AssertionError(type);
        }
    }

    // ---------------------------------------------------------------- bulk, ByteBuffer

    /**
     * Encodes {@code n} floats as {@code type} little-endian at {@code dst}'s position, advancing it. The
     * buffer's own byte order is ignored and left unchanged.
     */
    public static void encode(DType type, float[] src, int srcOff, int n, ByteBuffer dst) {
        byte[] tmp = new byte[Math.multiplyExact(n, type.byteSize())];
        encode(type, src, srcOff, n, tmp, 0);
        dst.put(tmp);
    }

    /** Encodes {@code n} doubles as {@code type} little-endian at {@code dst}'s position, advancing it. */
    public static void encode(DType type, double[] src, int srcOff, int n, ByteBuffer dst) {
        byte[] tmp = new byte[Math.multiplyExact(n, type.byteSize())];
        encode(type, src, srcOff, n, tmp, 0);
        dst.put(tmp);
    }

    /** Decodes {@code n} little-endian {@code type} elements from {@code src}'s position (advancing it) into floats. */
    public static void decode(DType type, ByteBuffer src, float[] dst, int dstOff, int n) {
        byte[] tmp = new byte[Math.multiplyExact(n, type.byteSize())];
        src.get(tmp);
        decode(type, tmp, 0, dst, dstOff, n);
    }

    /** Decodes {@code n} little-endian {@code type} elements from {@code src}'s position (advancing it) into doubles. */
    public static void decode(DType type, ByteBuffer src, double[] dst, int dstOff, int n) {
        byte[] tmp = new byte[Math.multiplyExact(n, type.byteSize())];
        src.get(tmp);
        decode(type, tmp, 0, dst, dstOff, n);
    }

    private static void checkRange(int valuesLength, int valuesOff, int n, int bytesLength, int bytesOff, long byteCount) {
        Objects.checkFromIndexSize(valuesOff, n, valuesLength);
        if (bytesOff < 0 || byteCount > bytesLength - (long) bytesOff) {
            throw new IndexOutOfBoundsException("byte range [" + bytesOff + ", " + (bytesOff + byteCount)
                    + ") outside an array of " + bytesLength + " bytes");
        }
    }
}
