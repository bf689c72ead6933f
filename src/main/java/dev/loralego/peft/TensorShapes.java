package dev.loralego.peft;

/** Element counts of tensor shapes with overflow and sign checks (shared by the tensor records). */
final class TensorShapes {
    private TensorShapes() {
    }

    /**
     * The product of the dimensions ({@code 1} for a scalar's empty shape).
     *
     * @throws IllegalArgumentException for a negative dimension or a product beyond {@code Long.MAX_VALUE}
     */
    static long elementCount(String name, long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "': negative dimension " + d);
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor '" + name + "': element count overflows a long", e);
            }
        }
        return n;
    }

    static String format(long[] shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape[i]);
        }
        return sb.append(']').toString();
    }
}
