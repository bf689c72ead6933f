package dev.loralego.bench;

/**
 * Derives independent seeds from a benchmark seed and purpose tags with the SplitMix64 finaliser, so that every
 * random stream of the quality benchmark (world, task data, initialisation, minibatch order) is fixed by the
 * benchmark seed alone and does not depend on the order in which things are computed.
 */
final class Seeds {

    /** Tag of the skill world (base layer, skills, task skill sets). */
    static final long WORLD = 0x57_0e1dL;
    /** Tag of one task's data sets. */
    static final long DATA = 0xda7aL;
    /** Tag of a LoRA's A initialisation. */
    static final long INIT = 0x1417L;
    /** Tag of a LoRA's minibatch order. */
    static final long ORDER = 0x0bde7L;

    private Seeds() {
    }

    /** A seed from {@code seed} and the tags, in order. */
    static long derive(long seed, long... tags) {
        long z = mix(seed ^ 0x9E3779B97F4A7C15L);
        for (long t : tags) z = mix(z + 0x9E3779B97F4A7C15L * (t + 1));
        return z;
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
