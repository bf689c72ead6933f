package dev.loralego.peft;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Conversions against {@link NarrowFloatReference}, exhaustively where the domain is 16 bits. */
class DTypeCodecTest {

    private static final NarrowFloatReference HALF = NarrowFloatReference.HALF;
    private static final NarrowFloatReference BF16 = NarrowFloatReference.BFLOAT16;
    /** Sweep stride over all 2^32 float bit patterns (prime, so every mantissa bit pattern class is hit). */
    private static final long FLOAT_SWEEP_STRIDE = 9_973;

    // ------------------------------------------------------------ F16 widening, all 65536 patterns

    @Test
    void halfToFloatMatchesFormulaForAll65536Patterns() {
        for (int bits = 0; bits < 0x10000; bits++) {
            int sign = bits >>> 15;
            int e = (bits >>> 10) & 0x1f;
            int m = bits & 0x3ff;
            float got = DTypeCodec.halfToFloat((short) bits);
            if (e == 31) {
                if (m == 0) {
                    assertEquals(sign == 0 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY, got, "bits " + bits);
                } else {
                    assertTrue(Float.isNaN(got), "NaN pattern " + Integer.toHexString(bits));
                }
                continue;
            }
            double magnitude = e == 0 ? Math.pow(2, -14) * (m / 1024.0) : Math.pow(2, e - 15) * (1 + m / 1024.0);
            double expected = sign == 1 ? -magnitude : magnitude;
            assertEquals(expected, (double) got, 0.0, "bits " + Integer.toHexString(bits));
            // signed zero kept
            assertEquals(sign == 1, (Float.floatToRawIntBits(got) >>> 31) == 1, "sign of " + Integer.toHexString(bits));
        }
    }

    @Test
    void floatToHalfIsExactOnEveryHalfValue() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float f = DTypeCodec.halfToFloat((short) bits);
            short back = DTypeCodec.floatToHalf(f);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(DTypeCodec.halfToFloat(back)), "NaN stays NaN: " + Integer.toHexString(bits));
            } else {
                assertEquals(bits, back & 0xffff, "round trip of " + Integer.toHexString(bits));
            }
        }
    }

    // ------------------------------------------------------------ F16 narrowing vs the reference

    @Test
    void floatToHalfRoundsTiesAndNearTiesLikeTheReference() {
        // every midpoint between neighbouring halves (exact in float: 12 significant bits), and one float ulp on each side
        for (int bits = 0; bits < HALF.maxFinite() + 1; bits++) {
            double lo = HALF.valueOf(bits);
            double hi = bits + 1 <= HALF.maxFinite() ? HALF.valueOf(bits + 1) : 65536.0;
            float mid = (float) ((lo + hi) / 2);
            assertEquals((lo + hi) / 2, (double) mid, 0.0, "midpoint exact in float");
            for (float x : new float[]{mid, Math.nextDown(mid), Math.nextUp(mid)}) {
                checkHalf(x);
                checkHalf(-x);
            }
        }
    }

    @Test
    void floatToHalfHandlesOverflowUnderflowAndSpecials() {
        assertEquals(0x7bff, DTypeCodec.floatToHalf(65504f) & 0xffff);
        assertEquals(0x7bff, DTypeCodec.floatToHalf(65519.996f) & 0xffff, "below the overflow tie");
        assertEquals(0x7c00, DTypeCodec.floatToHalf(65520f) & 0xffff, "tie at 65520 goes to even = inf");
        assertEquals(0x7c00, DTypeCodec.floatToHalf(1e10f) & 0xffff);
        assertEquals(0xfc00, DTypeCodec.floatToHalf(-1e10f) & 0xffff);
        assertEquals(0x7c00, DTypeCodec.floatToHalf(Float.POSITIVE_INFINITY) & 0xffff);
        assertEquals(0xfc00, DTypeCodec.floatToHalf(Float.NEGATIVE_INFINITY) & 0xffff);
        assertEquals(0x0001, DTypeCodec.floatToHalf(0x1p-24f) & 0xffff, "smallest subnormal");
        assertEquals(0x0000, DTypeCodec.floatToHalf(0x1p-25f) & 0xffff, "tie between 0 and 2^-24 goes to 0");
        assertEquals(0x0001, DTypeCodec.floatToHalf(Math.nextUp(0x1p-25f)) & 0xffff, "just above the tie");
        assertEquals(0x0002, DTypeCodec.floatToHalf(3 * 0x1p-25f) & 0xffff, "1.5 ulp ties to even 2");
        assertEquals(0x0400, DTypeCodec.floatToHalf(Math.nextDown(0x1p-14f)) & 0xffff, "rounds up into the normals");
        assertEquals(0x8000, DTypeCodec.floatToHalf(-Float.MIN_VALUE) & 0xffff, "negative underflow keeps the sign");
        assertEquals(0x8000, DTypeCodec.floatToHalf(-0.0f) & 0xffff);
        assertEquals(0x3c00, DTypeCodec.floatToHalf(1f) & 0xffff);
        assertEquals(0x3c00, DTypeCodec.floatToHalf(1f + 0x1p-11f) & 0xffff, "tie 1 + 2^-11 to even 1");
        assertEquals(0x3c02, DTypeCodec.floatToHalf(1f + 3 * 0x1p-11f) & 0xffff, "tie 1 + 3*2^-11 to even");
        for (int nan : new int[]{0x7fc00000, 0x7f800001, 0xffc00000, 0x7fbfffff, 0x7f802000}) {
            short h = DTypeCodec.floatToHalf(Float.intBitsToFloat(nan));
            assertTrue(Float.isNaN(DTypeCodec.halfToFloat(h)), "NaN " + Integer.toHexString(nan) + " stays NaN");
            assertTrue((h & 0x0200) != 0, "quiet NaN");
        }
    }

    @Test
    void floatToHalfMatchesReferenceOnAStridedSweepOfAllFloats() {
        for (long bits = 0; bits <= 0xffff_ffffL; bits += FLOAT_SWEEP_STRIDE) {
            float x = Float.intBitsToFloat((int) bits);
            checkHalf(x);
        }
    }

    @Test
    void doubleToHalfRoundsOnceNotTwice() {
        // Just above a tie: double -> float would land exactly on the tie and then round to even, wrongly.
        int checked = 0;
        for (int bits = 0; bits < HALF.maxFinite(); bits++) {
            double lo = HALF.valueOf(bits);
            double hi = HALF.valueOf(bits + 1);
            double mid = (lo + hi) / 2;
            for (double x : new double[]{Math.nextUp(mid), Math.nextDown(mid), mid}) {
                int expected = HALF.round(x);
                assertEquals(expected, DTypeCodec.doubleToHalf(x) & 0xffff, "double " + x);
                assertEquals(expected | 0x8000, DTypeCodec.doubleToHalf(-x) & 0xffff, "double " + -x);
                checked++;
            }
        }
        assertTrue(checked > 90_000);
        // the double-rounding trap itself: 1 + 2^-11 + 2^-40 must round up to 1 + 2^-10
        assertEquals(0x3c01, DTypeCodec.doubleToHalf(1 + 0x1p-11 + 0x1p-40) & 0xffff);
        SplittableRandom rnd = new SplittableRandom(42);
        for (int i = 0; i < 200_000; i++) {
            double x = Math.scalb(rnd.nextDouble(-2, 2), rnd.nextInt(-30, 18));
            assertEquals(HALF.round(x), DTypeCodec.doubleToHalf(x) & 0xffff, "double " + x);
        }
        assertTrue(Float.isNaN(DTypeCodec.halfToFloat(DTypeCodec.doubleToHalf(Double.NaN))));
        assertEquals(0x7c00, DTypeCodec.doubleToHalf(1e300) & 0xffff);
        assertEquals(0x8000, DTypeCodec.doubleToHalf(-1e-300) & 0xffff);
    }

    private static void checkHalf(float x) {
        short got = DTypeCodec.floatToHalf(x);
        if (Float.isNaN(x)) {
            assertTrue(Float.isNaN(DTypeCodec.halfToFloat(got)), "NaN " + Integer.toHexString(Float.floatToRawIntBits(x)));
            return;
        }
        int expected = HALF.round(x);
        if (expected != (got & 0xffff)) {
            fail("floatToHalf(" + x + " = 0x" + Integer.toHexString(Float.floatToRawIntBits(x)) + ") = 0x"
                    + Integer.toHexString(got & 0xffff) + ", reference 0x" + Integer.toHexString(expected));
        }
    }

    // ------------------------------------------------------------ BF16

    @Test
    void bfloat16ToFloatMatchesFormulaForAll65536Patterns() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float got = DTypeCodec.bfloat16ToFloat((short) bits);
            double expected = BF16.decode(bits);
            if (Double.isNaN(expected)) {
                assertTrue(Float.isNaN(got), "NaN pattern " + Integer.toHexString(bits));
            } else {
                assertEquals(expected, (double) got, 0.0, "bits " + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void floatToBFloat16MatchesReference() {
        for (int bits = 0; bits < BF16.maxFinite() + 1; bits++) {
            double lo = BF16.valueOf(bits);
            double hi = BF16.valueOf(bits + 1);
            float mid = (float) ((lo + hi) / 2);
            if ((double) mid == (lo + hi) / 2) {
                for (float x : new float[]{mid, Math.nextDown(mid), Math.nextUp(mid)}) {
                    checkBf16(x);
                    checkBf16(-x);
                }
            }
        }
        for (long bits = 0; bits <= 0xffff_ffffL; bits += FLOAT_SWEEP_STRIDE) {
            checkBf16(Float.intBitsToFloat((int) bits));
        }
        assertEquals(0x7f80, DTypeCodec.floatToBFloat16(Float.MAX_VALUE) & 0xffff, "max float rounds to inf");
        assertEquals(0x3f80, DTypeCodec.floatToBFloat16(1f + 0x1p-8f) & 0xffff, "tie to even");
        assertEquals(0x3f82, DTypeCodec.floatToBFloat16(1f + 3 * 0x1p-8f) & 0xffff, "tie to even (up)");
        assertEquals(0x0001, DTypeCodec.floatToBFloat16(0x1p-133f) & 0xffff, "smallest bf16 subnormal");
        assertEquals(0xff80, DTypeCodec.floatToBFloat16(Float.NEGATIVE_INFINITY) & 0xffff);
        for (int nan : new int[]{0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff}) {
            short b = DTypeCodec.floatToBFloat16(Float.intBitsToFloat(nan));
            assertTrue(Float.isNaN(DTypeCodec.bfloat16ToFloat(b)), "NaN " + Integer.toHexString(nan) + " stays NaN");
            assertEquals(nan >>> 31, (b & 0xffff) >>> 15, "NaN sign kept");
        }
    }

    /**
     * The bit-level round-to-odd of float normals agrees bit for bit with the one through the JDK's rounding (which
     * the tests above check against the independent reference), on random doubles over and beyond the float range,
     * exact floats, and the edges of the fast path. NaNs compare as NaN ({@code floatToIntBits}): the JVM may
     * convert a NaN's payload differently in interpreted and compiled code, and no NaN reaches a merged tensor.
     */
    @Test
    void roundToOddOfFloatNormalsEqualsTheJdkBasedOne() {
        SplittableRandom rnd = new SplittableRandom(11);
        for (int i = 0; i < 1_000_000; i++) {
            double x = Math.scalb(rnd.nextDouble(-2, 2), rnd.nextInt(-160, 140));
            assertEquals(Float.floatToIntBits(DTypeCodec.roundToOddFloatSlow(x)),
                    Float.floatToIntBits(DTypeCodec.roundToOddFloat(x)), () -> "double " + x);
        }
        for (int i = 0; i < 100_000; i++) {
            double x = Double.longBitsToDouble(rnd.nextLong());
            assertEquals(Float.floatToIntBits(DTypeCodec.roundToOddFloatSlow(x)),
                    Float.floatToIntBits(DTypeCodec.roundToOddFloat(x)), () -> "double " + x);
            double exact = Float.intBitsToFloat(rnd.nextInt());
            assertEquals(Float.floatToIntBits(DTypeCodec.roundToOddFloatSlow(exact)),
                    Float.floatToIntBits(DTypeCodec.roundToOddFloat(exact)), () -> "exact float " + exact);
        }
        double[] edges = {Float.MIN_NORMAL, Math.nextDown((double) Float.MIN_NORMAL), Math.nextUp((double) Float.MIN_NORMAL),
                Float.MAX_VALUE, Math.nextUp((double) Float.MAX_VALUE), Math.nextDown((double) Float.MAX_VALUE),
                0x1p128, Math.nextDown(0x1p128), 0x1p-127, 0.0, -0.0, 1.0, -1.0, Double.MIN_VALUE, Double.MAX_VALUE,
                Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY};
        for (double e : edges) {
            for (double x : new double[]{e, -e}) {
                assertEquals(Float.floatToIntBits(DTypeCodec.roundToOddFloatSlow(x)),
                        Float.floatToIntBits(DTypeCodec.roundToOddFloat(x)), () -> "double " + x);
            }
        }
    }

    @Test
    void doubleToBFloat16RoundsOnce() {
        for (int bits = 0; bits < BF16.maxFinite(); bits += 7) {
            double mid = (BF16.valueOf(bits) + BF16.valueOf(bits + 1)) / 2;
            for (double x : new double[]{mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                assertEquals(BF16.round(x), DTypeCodec.doubleToBFloat16(x) & 0xffff, "double " + x);
            }
        }
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            double x = Math.scalb(rnd.nextDouble(-2, 2), rnd.nextInt(-140, 130));
            assertEquals(BF16.round(x), DTypeCodec.doubleToBFloat16(x) & 0xffff, "double " + x);
        }
        assertEquals(0x7f80, DTypeCodec.doubleToBFloat16(1e300) & 0xffff);
        assertTrue(Float.isNaN(DTypeCodec.bfloat16ToFloat(DTypeCodec.doubleToBFloat16(Double.NaN))));
    }

    private static void checkBf16(float x) {
        short got = DTypeCodec.floatToBFloat16(x);
        if (Float.isNaN(x)) {
            assertTrue(Float.isNaN(DTypeCodec.bfloat16ToFloat(got)));
            return;
        }
        int expected = BF16.round(x);
        if (expected != (got & 0xffff)) {
            fail("floatToBFloat16(0x" + Integer.toHexString(Float.floatToRawIntBits(x)) + ") = 0x"
                    + Integer.toHexString(got & 0xffff) + ", reference 0x" + Integer.toHexString(expected));
        }
    }

    // ------------------------------------------------------------ bulk

    @Test
    void bulkEncodeDecodeIsLittleEndianAndMatchesScalars() {
        double[] values = {1.5, -2.0, 0x1p-20, 65504, Double.NaN, Double.NEGATIVE_INFINITY, 1e-40, 3.141592653589793};
        for (DType t : DType.values()) {
            byte[] bytes = new byte[values.length * t.byteSize() + 3];
            DTypeCodec.encode(t, values, 0, values.length, bytes, 3);
            ByteBuffer le = ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            double[] decoded = new double[values.length];
            DTypeCodec.decode(t, bytes, 3, decoded, 0, values.length);
            for (int i = 0; i < values.length; i++) {
                double expected;
                switch (t) {
                    case F32:
                        assertEquals(Float.floatToIntBits((float) values[i]), Float.floatToIntBits(le.getFloat(3 + 4 * i)));
                        expected = (float) values[i];
                        break;
                    case F64:
                        expected = values[i];
                        assertEquals(Double.doubleToLongBits(expected), Double.doubleToLongBits(le.getDouble(3 + 8 * i)));
                        break;
                    case F16:
                        assertEquals(HALF.round(values[i]) == -1 ? -1 : HALF.round(values[i]),
                                Double.isNaN(values[i]) ? -1 : le.getShort(3 + 2 * i) & 0xffff);
                        expected = Double.isNaN(values[i]) ? Double.NaN : HALF.decode(HALF.round(values[i]));
                        break;
                    case BF16:
                        expected = Double.isNaN(values[i]) ? Double.NaN : BF16.decode(BF16.round(values[i]));
                        break;
                    default:
                        throw new AssertionError(t);
                }
                assertEquals(expected, decoded[i], 0.0, t + " value " + values[i]);
            }
            // float[] path agrees with the double[] path for float inputs
            float[] fl = new float[values.length];
            for (int i = 0; i < fl.length; i++) {
                fl[i] = (float) values[i];
            }
            byte[] fromFloats = new byte[values.length * t.byteSize()];
            DTypeCodec.encode(t, fl, 0, fl.length, fromFloats, 0);
            byte[] fromDoubles = new byte[values.length * t.byteSize()];
            double[] widened = new double[fl.length];
            for (int i = 0; i < fl.length; i++) {
                widened[i] = fl[i];
            }
            DTypeCodec.encode(t, widened, 0, widened.length, fromDoubles, 0);
            assertArrayEquals(fromDoubles, fromFloats, t.toString());
            // ByteBuffer variants
            ByteBuffer buf = ByteBuffer.allocate(fl.length * t.byteSize());
            DTypeCodec.encode(t, fl, 0, fl.length, buf);
            assertArrayEquals(fromFloats, buf.array());
            buf.flip();
            float[] back = new float[fl.length];
            DTypeCodec.decode(t, buf, back, 0, fl.length);
            float[] expectedBack = new float[fl.length];
            DTypeCodec.decode(t, fromFloats, 0, expectedBack, 0, fl.length);
            assertArrayEquals(expectedBack, back);
        }
    }

    @Test
    void dtypeNames() {
        for (DType t : DType.values()) {
            assertEquals(t, DType.parse(t.safetensorsName()));
        }
        assertEquals(2, DType.BF16.byteSize());
        assertEquals(8, DType.F64.byteSize());
        assertEquals(DType.BF16, DType.fromUserName("bfloat16"));
        assertEquals(DType.F16, DType.fromUserName("FP16"));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> DType.parse("I8"));
        assertTrue(e.getMessage().contains("I8"));
    }

    /** The reader knows every dtype of the format; the user-facing and stream-facing DType stays the four floats. */
    @Test
    void elementTypesMapToDTypesOnlyForTheFourFloats() {
        for (DType t : DType.values()) {
            assertEquals(t, ElementType.of(t).floatType());
            assertEquals(t.byteSize() * 8, ElementType.of(t).bits());
            assertTrue(ElementType.of(t).decodable());
        }
        int decodable = 0;
        for (ElementType t : ElementType.values()) {
            assertEquals(t, ElementType.parse(t.safetensorsName()));
            if (t.decodable()) {
                decodable++;
                continue;
            }
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> DType.parse(t.safetensorsName()));
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> DType.fromUserName(t.safetensorsName()), t.name());
        }
        assertEquals(DType.values().length, decodable);
    }
}
