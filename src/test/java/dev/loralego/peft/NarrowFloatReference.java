package dev.loralego.peft;

import java.util.Arrays;

/**
 * Test-only reference for the narrow float formats, written without bit tricks: every finite non-negative
 * value is listed from the textbook formula (sign · 2^(e-bias) · (1 + m/2^p), subnormals 2^(1-bias) · m/2^p),
 * and rounding searches the two neighbours of a value and keeps the nearer, ties to the even bit pattern.
 * Overflow follows from listing 2^emax+1 as the even pattern after the largest finite value (→ infinity).
 * All differences used are exact in double (Sterbenz / common grid), so ties are detected exactly.
 */
final class NarrowFloatReference {

    /** F16: 5 exponent bits, bias 15, 10 mantissa bits. */
    static final NarrowFloatReference HALF = new NarrowFloatReference(5, 15, 10);
    /** BF16: 8 exponent bits, bias 127, 7 mantissa bits. */
    static final NarrowFloatReference BFLOAT16 = new NarrowFloatReference(8, 127, 7);

    private final int mantissaBits;
    private final int infinityBits;
    private final double[] values; // index = bit pattern, 0 .. infinityBits (the last entry stands for overflow)

    private NarrowFloatReference(int exponentBits, int bias, int mantissaBits) {
        this.mantissaBits = mantissaBits;
        this.infinityBits = ((1 << exponentBits) - 1) << mantissaBits;
        this.values = new double[infinityBits + 1];
        for (int bits = 0; bits < infinityBits; bits++) {
            values[bits] = value(bits, bias);
        }
        values[infinityBits] = Math.pow(2, (1 << exponentBits) - 1 - bias); // 2^(emax+1)
        for (int i = 1; i < values.length; i++) {
            if (!(values[i] > values[i - 1])) {
                throw new AssertionError("reference table not increasing at " + i);
            }
        }
    }

    private double value(int bits, int bias) {
        int e = bits >>> mantissaBits;
        int m = bits & ((1 << mantissaBits) - 1);
        double frac = m / Math.pow(2, mantissaBits);
        if (e == 0) {
            return Math.pow(2, 1 - bias) * frac;
        }
        return Math.pow(2, e - bias) * (1 + frac);
    }

    /** The value of any bit pattern (sign bit included): ±value, ±inf, NaN. */
    double decode(int bits) {
        int sign = bits >>> (15);
        int abs = bits & 0x7fff;
        double v;
        if (abs > infinityBits) {
            return Double.NaN;
        } else if (abs == infinityBits) {
            v = Double.POSITIVE_INFINITY;
        } else {
            v = values[abs];
        }
        return sign == 1 ? -v : v;
    }

    /** The bit pattern nearest to {@code x} (ties to even pattern); -1 for NaN. */
    int round(double x) {
        if (Double.isNaN(x)) {
            return -1;
        }
        int sign = (Double.doubleToRawLongBits(x) < 0) ? 0x8000 : 0;
        double a = Math.abs(x);
        if (a >= values[infinityBits]) {
            return sign | infinityBits;
        }
        int i = Arrays.binarySearch(values, a);
        if (i >= 0) {
            return sign | i;
        }
        int hi = -i - 1;
        int lo = hi - 1;
        double dLo = a - values[lo];
        double dHi = values[hi] - a;
        int pick;
        if (dLo < dHi) {
            pick = lo;
        } else if (dHi < dLo) {
            pick = hi;
        } else {
            pick = (lo & 1) == 0 ? lo : hi;
        }
        return sign | pick;
    }

    /** Largest finite pattern. */
    int maxFinite() {
        return infinityBits - 1;
    }

    /** The finite non-negative value of pattern {@code bits} (no sign). */
    double valueOf(int bits) {
        return values[bits];
    }
}
