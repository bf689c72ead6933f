package dev.loralego.peft;

/**
 * The LoRA factors of one module of a merged adapter, written with scaling 1 ({@code r = alpha = rank} for
 * the module): {@code A} row-major {@code [rank, dIn]}, {@code B} row-major {@code [dOut, rank]},
 * so the written adapter applies {@code ΔW = B A}.
 *
 * @param rank rank of this module
 * @param dIn  input features
 * @param dOut output features
 * @param a    {@code rank × dIn} values; not copied
 * @param b    {@code dOut × rank} values; not copied
 */
public record ModuleFactors(int rank, int dIn, int dOut, double[] a, double[] b) {

    /** Checks positive dimensions and array lengths. */
    public ModuleFactors {
        if (rank < 1 || dIn < 1 || dOut < 1) {
            throw new IllegalArgumentException("rank, dIn, dOut must be >= 1, got " + rank + ", " + dIn + ", " + dOut);
        }
        if (a == null || a.length != (long) rank * dIn) {
            throw new IllegalArgumentException("A must have rank*dIn = " + rank + "*" + dIn + " values, got "
                    + (a == null ? "null" : a.length));
        }
        if (b == null || b.length != (long) dOut * rank) {
            throw new IllegalArgumentException("B must have dOut*rank = " + dOut + "*" + rank + " values, got "
                    + (b == null ? "null" : b.length));
        }
    }
}
