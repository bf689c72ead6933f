package dev.loralego.stream;

import dev.loralego.avro.TensorDType;
import dev.loralego.peft.DTypeCodec;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link TensorCodec}'s bulk decode and raw-bit finiteness check against element-by-element references: every one of
 * the 65 536 F16 and BF16 bit patterns, and seeded F32 patterns including every class of special value.
 */
class TensorCodecTest {

    private static ByteBuffer halves(int from, int count) {
        ByteBuffer b = ByteBuffer.allocate(2 * count).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < count; i++) b.putShort((short) (from + i));
        return b.flip();
    }

    @Test
    void everyHalfAndBfloatPatternDecodesAsTheScalarCodecAndIsCheckedByItsValue() {
        ByteBuffer all = halves(0, 65536);
        double[] bf = TensorCodec.decode(all, TensorDType.BF16, 65536);
        double[] f16 = TensorCodec.decode(all, TensorDType.F16, 65536);
        for (int bits = 0; bits < 65536; bits++) {
            assertEquals(Double.doubleToRawLongBits(DTypeCodec.bfloat16ToFloat((short) bits)), Double.doubleToRawLongBits(bf[bits]));
            assertEquals(Double.doubleToRawLongBits(DTypeCodec.halfToFloat((short) bits)), Double.doubleToRawLongBits(f16[bits]));
            // one element at a time: the first non-finite of a one-element buffer is 0 exactly when the value is not finite
            ByteBuffer one = halves(bits, 1);
            assertEquals(Double.isFinite(bf[bits]) ? -1 : 0, TensorCodec.firstNonFinite(one, TensorDType.BF16, 1), "bf16 " + bits);
            assertEquals(Double.isFinite(f16[bits]) ? -1 : 0, TensorCodec.firstNonFinite(one, TensorDType.F16, 1), "f16 " + bits);
        }
        // in a long buffer it finds the first: BF16 0x7F80 is +inf, F16 0x7C00 is +inf
        assertEquals(0x7F80, TensorCodec.firstNonFinite(all, TensorDType.BF16, 65536));
        assertEquals(0x7C00, TensorCodec.firstNonFinite(all, TensorDType.F16, 65536));
        assertEquals(-1, TensorCodec.firstNonFinite(halves(0, 0x7C00), TensorDType.F16, 0x7C00));
    }

    @Test
    void encodeRoundsEachDoubleOnceAsTheScalarCodecDoesInLittleEndianOrder() {
        SplittableRandom rng = new SplittableRandom(8);
        double[] v = new double[10_001];
        for (int i = 0; i < v.length; i++) v[i] = rng.nextGaussian() * Math.pow(10, rng.nextInt(-40, 40));
        v[0] = Double.NaN;
        v[1] = Double.NEGATIVE_INFINITY;
        v[2] = -0.0;
        v[3] = 1e300;
        ByteBuffer f32 = ByteBuffer.wrap(TensorCodec.encode(v, TensorDType.F32)).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer bf = ByteBuffer.wrap(TensorCodec.encode(v, TensorDType.BF16)).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer f16 = ByteBuffer.wrap(TensorCodec.encode(v, TensorDType.F16)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < v.length; i++) {
            assertEquals(Float.floatToRawIntBits((float) v[i]), f32.getInt(4 * i), "f32 " + i);
            assertEquals(DTypeCodec.doubleToBFloat16(v[i]), bf.getShort(2 * i), "bf16 " + i);
            assertEquals(DTypeCodec.doubleToHalf(v[i]), f16.getShort(2 * i), "f16 " + i);
        }
    }

    @Test
    void narrowTypesRoundOnceFromDoubleNotThroughFloat() {
        // 1 + 2^-8 + 2^-30: nearest bfloat16 is 1 + 2^-7; through float it would first become 1 + 2^-8, a tie, and
        // then round to even (1.0)
        double v = 1 + Math.scalb(1.0, -8) + Math.scalb(1.0, -30);
        double[] back = TensorCodec.decode(ByteBuffer.wrap(TensorCodec.encode(new double[]{v}, TensorDType.BF16)),
                TensorDType.BF16, 1);
        assertEquals(1 + Math.scalb(1.0, -7), back[0]);
        // the same for binary16 (11 significand bits): 1 + 2^-11 + 2^-30 rounds up to 1 + 2^-10
        double h = 1 + Math.scalb(1.0, -11) + Math.scalb(1.0, -30);
        double[] backH = TensorCodec.decode(ByteBuffer.wrap(TensorCodec.encode(new double[]{h}, TensorDType.F16)),
                TensorDType.F16, 1);
        assertEquals(1 + Math.scalb(1.0, -10), backH[0]);
    }

    @Test
    void f32PatternsDecodeAndAreCheckedByTheirValue() {
        SplittableRandom rng = new SplittableRandom(3);
        int n = 200_000;
        int[] bits = new int[n];
        for (int i = 0; i < n; i++) bits[i] = rng.nextInt();
        int[] special = {0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x00000001, 0x80000000, 0x7F7FFFFF};
        System.arraycopy(special, 0, bits, 1000, special.length);
        ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : bits) b.putInt(v);
        b.flip();
        double[] d = TensorCodec.decode(b, TensorDType.F32, n);
        int firstBad = -1;
        for (int i = 0; i < n; i++) {
            assertEquals(Double.doubleToRawLongBits(Float.intBitsToFloat(bits[i])), Double.doubleToRawLongBits(d[i]));
            if (firstBad < 0 && !Double.isFinite(d[i])) firstBad = i;
        }
        assertEquals(firstBad, TensorCodec.firstNonFinite(b, TensorDType.F32, n));
        assertEquals(Double.doubleToRawLongBits(d[firstBad]),
                Double.doubleToRawLongBits(TensorCodec.elementAt(b, TensorDType.F32, firstBad)));
        assertThrows(IllegalArgumentException.class, () -> TensorCodec.firstNonFinite(b, TensorDType.F32, n + 1));
    }
}
