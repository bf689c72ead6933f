package dev.loralego.lego;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The minimal semantic units (MSUs) of one adapter for one module (Zhao et al., "Merging LoRAs like Playing
 * LEGO", arXiv 2409.16167, §3; ALGORITHM.md §1–§2), scaling folded in and put in a canonical form.
 *
 * <p>Unit {@code i} is row {@code i} of {@code A} paired with column {@code i} of {@code B}, stored as one vector
 * {@code x = [a ; b] ∈ R^{dIn + dOut}}; all units of the adapter form a row-major {@code count × (dIn + dOut)}
 * array. The adapter's PEFT scaling {@code s} is folded in as {@code sqrt(s)} on each side, so
 * {@code ΔW = Σ_i b_i a_iᵀ} exactly. The merge weight {@code w} is NOT multiplied in: it is the sample weight of
 * every unit in the clustering (ALGORITHM.md §1).
 *
 * <p>Canonical forms (ALGORITHM.md §2):
 * <ul>
 *   <li>{@link CanonicalForm#NONE}: the folded units as stored, all {@code r} of them (zero units included).</li>
 *   <li>{@link CanonicalForm#BALANCED}: each unit rescaled to {@code ‖a‖ = ‖b‖}, then the sign rule. A unit with
 *       {@code a = 0} or {@code b = 0} contributes nothing to {@code ΔW} and is dropped.</li>
 *   <li>{@link CanonicalForm#SVD}: the balanced SVD factors of the adapter's {@code ΔW}
 *       ({@link LowRankFactorisation#ofProduct}), in descending order of singular value, then the sign rule.
 *       Singular values {@code σ ≤ max(p, q) · ulp(1) · σ_max} (numerically zero, the numpy {@code matrix_rank}
 *       tolerance) and all of them when {@code σ_max = 0} are dropped: they contribute nothing, and their
 *       directions are arbitrary.</li>
 * </ul>
 * Sign rule: the entry of largest magnitude of {@code b} (lowest index on ties) is made positive by negating the
 * whole unit. {@link #rankIndex()} says which source rank (NONE, BALANCED) or singular index (SVD) each unit is.
 * Immutable; arrays are owned by this object and never exposed for writing by the library.
 *
 * <p>Binary form ({@link #toBytes()}, {@link #fromBytes(byte[])}): the immutable part of one adapter in a
 * streaming state, stored once per adapter by the service (see {@link StreamingModuleClusters#unitsBytes}).
 */
public final class MinimalSemanticUnits {

    /** First byte of {@link #toBytes()}: marks a units blob (ASCII {@code 'U'}). */
    public static final byte BYTES_MAGIC = 'U';
    /** Second byte of {@link #toBytes()}; bump when the layout changes, keep reading old versions. */
    public static final byte BYTES_VERSION = 1;

    private final String adapterId;
    private final double weight;
    private final int sourceRank;
    private final int dIn;
    private final int dOut;
    private final int count;
    private final double[] units;
    private final int[] rankIndex;
    /** See {@link #replay()}; set by the SVD canonicalisation only. */
    private LowRankFactorisation.Replay replay;

    /**
     * Wraps already-computed units (not copied). Used when restoring stored state.
     *
     * @param adapterId  provenance
     * @param weight     merge weight {@code w > 0}
     * @param sourceRank rank {@code r} of the source adapter (enters {@code r̄} of the output reweighting)
     * @param units      row-major {@code count × (dIn + dOut)}
     * @param rankIndex  length {@code count}
     */
    public MinimalSemanticUnits(String adapterId, double weight, int sourceRank, int dIn, int dOut,
                                double[] units, int[] rankIndex) {
        this.adapterId = Objects.requireNonNull(adapterId, "adapterId");
        if (!(weight > 0) || !Double.isFinite(weight)) {
            throw new IllegalArgumentException("merge weight of " + adapterId + " must be finite and > 0, got " + weight);
        }
        if (sourceRank < 1 || dIn < 1 || dOut < 1) {
            throw new IllegalArgumentException("units of " + adapterId + ": rank, dIn, dOut must be >= 1, got "
                    + sourceRank + ", " + dIn + ", " + dOut);
        }
        int dim = dIn + dOut;
        if (units.length % dim != 0 || units.length / dim != rankIndex.length) {
            throw new IllegalArgumentException("units of " + adapterId + ": " + units.length + " values and "
                    + rankIndex.length + " rank indices do not fit dim " + dim);
        }
        this.weight = weight;
        this.sourceRank = sourceRank;
        this.dIn = dIn;
        this.dOut = dOut;
        this.count = rankIndex.length;
        this.units = units;
        this.rankIndex = rankIndex;
    }

    /**
     * Extracts, folds and canonicalises the units of one adapter.
     *
     * @param m         the adapter's factors (not modified)
     * @param canonical canonical form
     * @throws IllegalArgumentException if a factor holds a non-finite value (names the adapter)
     */
    public static MinimalSemanticUnits of(AdapterModule m, CanonicalForm canonical) {
        return derive(m, canonical, null);
    }

    /**
     * {@link #of} again for factors already canonicalised once ({@link CanonicalForm#SVD} through CholeskyQR2):
     * repeats only the tall passes from the small matrices that derivation kept ({@link #replay()}), the same
     * values. Any other form, or {@code replay == null}, is {@link #of}.
     */
    static MinimalSemanticUnits rederive(AdapterModule m, CanonicalForm canonical, LowRankFactorisation.Replay replay) {
        return derive(m, canonical, replay);
    }

    private static MinimalSemanticUnits derive(AdapterModule m, CanonicalForm canonical,
                                               LowRankFactorisation.Replay replay) {
        Objects.requireNonNull(m, "adapter");
        Objects.requireNonNull(canonical, "canonical");
        String nonFinite = m.firstNonFinite();
        if (nonFinite != null) throw new IllegalArgumentException(nonFinite);
        return switch (canonical) {
            case NONE -> {
                int[] idx = new int[m.rank()];
                for (int i = 0; i < idx.length; i++) idx[i] = i;
                yield new MinimalSemanticUnits(m.adapterId(), m.weight(), m.rank(), m.dIn(), m.dOut(), fold(m), idx);
            }
            case BALANCED -> balanced(m);
            case SVD -> svd(m, replay);
        };
    }

    /**
     * The folded units {@code [sqrt(s) a_i ; sqrt(s) b_i]} of an adapter, row-major {@code r × (dIn + dOut)}.
     *
     * @param m the adapter's factors (not modified)
     */
    public static double[] fold(AdapterModule m) {
        int r = m.rank(), dIn = m.dIn(), dOut = m.dOut(), dim = dIn + dOut;
        double h = Math.sqrt(m.scaling());
        double[] x = new double[r * dim];
        double[] a = m.a(), b = m.b();
        for (int i = 0; i < r; i++) {
            int row = i * dim;
            for (int c = 0; c < dIn; c++) x[row + c] = h * a[i * dIn + c];
            for (int o = 0; o < dOut; o++) x[row + dIn + o] = h * b[o * r + i];
        }
        return x;
    }

    /**
     * Dense {@code Σ_i b_i a_iᵀ} of row-major units, {@code dOut × dIn}. For tests and small modules only.
     *
     * @param units row-major {@code n × (dIn + dOut)} (not modified)
     */
    public static double[] deltaW(double[] units, int n, int dIn, int dOut) {
        int dim = dIn + dOut;
        double[] w = new double[dOut * dIn];
        for (int u = 0; u < n; u++) {
            int row = u * dim;
            for (int o = 0; o < dOut; o++) {
                double bo = units[row + dIn + o];
                if (bo == 0) continue;
                int wr = o * dIn;
                for (int i = 0; i < dIn; i++) w[wr + i] += bo * units[row + i];
            }
        }
        return w;
    }

    /**
     * The sign rule in unit layout, in place: negates unit {@code u} if the entry of largest magnitude of its
     * {@code b} part (lowest index on ties) is negative.
     */
    static void fixSign(double[] units, int u, int dIn, int dOut) {
        int dim = dIn + dOut;
        int row = u * dim;
        double best = 0, bestVal = 0;
        for (int o = 0; o < dOut; o++) {
            double v = units[row + dIn + o];
            if (Math.abs(v) > best) {
                best = Math.abs(v);
                bestVal = v;
            }
        }
        if (bestVal < 0) {
            for (int c = 0; c < dim; c++) units[row + c] = -units[row + c];
        }
    }

    private static MinimalSemanticUnits balanced(AdapterModule m) {
        int r = m.rank(), dIn = m.dIn(), dOut = m.dOut(), dim = dIn + dOut;
        double[] x = fold(m);
        double[] out = new double[r * dim];
        int[] idx = new int[r];
        int kept = 0;
        for (int i = 0; i < r; i++) {
            int row = i * dim;
            double na = 0, nb = 0;
            for (int c = 0; c < dIn; c++) na += x[row + c] * x[row + c];
            for (int c = dIn; c < dim; c++) nb += x[row + c] * x[row + c];
            na = Math.sqrt(na);
            nb = Math.sqrt(nb);
            if (na == 0 || nb == 0) continue;
            // a ← a·c, b ← b/c with c = sqrt(‖b‖/‖a‖): both halves get norm sqrt(‖a‖‖b‖)
            double c = Math.sqrt(nb / na);
            int dst = kept * dim;
            for (int j = 0; j < dIn; j++) out[dst + j] = x[row + j] * c;
            for (int j = dIn; j < dim; j++) out[dst + j] = x[row + j] / c;
            fixSign(out, kept, dIn, dOut);
            idx[kept++] = i;
        }
        return new MinimalSemanticUnits(m.adapterId(), m.weight(), r, dIn, dOut,
                Arrays.copyOf(out, kept * dim), Arrays.copyOf(idx, kept));
    }

    private static MinimalSemanticUnits svd(AdapterModule m, LowRankFactorisation.Replay plan) {
        int r = m.rank(), dIn = m.dIn(), dOut = m.dOut(), dim = dIn + dOut;
        // ΔW = s B A: the scaling goes into the r × r core, no scaled copies of the factors
        LowRankFactorisation.Transposed f = plan == null ? null
                : LowRankFactorisation.replay(plan, m.b(), m.a(), dOut, r, dIn, m.scaling());
        if (f == null) f = LowRankFactorisation.ofProductTransposed(m.b(), m.a(), dOut, r, dIn, m.scaling());
        double[] s = f.singularValues();
        int p = Math.min(dOut, r), q = Math.min(dIn, r);
        double tol = s.length == 0 ? 0 : s[0] * Math.max(p, q) * Math.ulp(1.0);
        int kept = 0;
        while (kept < s.length && s[kept] > 0 && s[kept] > tol) kept++;
        double[] out = new double[kept * dim];
        int[] idx = new int[kept];
        for (int j = 0; j < kept; j++) {
            int row = j * dim;
            System.arraycopy(f.a()[j], 0, out, row, dIn);
            System.arraycopy(f.bt()[j], 0, out, row + dIn, dOut);
            fixSign(out, j, dIn, dOut);
            idx[j] = j;
        }
        MinimalSemanticUnits u = new MinimalSemanticUnits(m.adapterId(), m.weight(), r, dIn, dOut, out, idx);
        u.replay = f.replay();
        return u;
    }

    /**
     * The small matrices of this SVD canonicalisation when it took the CholeskyQR2 route, for {@link #rederive};
     * {@code null} otherwise. Not part of the units' value (bytes, equality).
     */
    LowRankFactorisation.Replay replay() {
        return replay;
    }

    /** Provenance: the source adapter's id. */
    public String adapterId() {
        return adapterId;
    }

    /** Merge weight {@code w} (sample weight of every unit). */
    public double weight() {
        return weight;
    }

    /** Rank {@code r} of the source adapter for this module (not necessarily {@link #count()}). */
    public int sourceRank() {
        return sourceRank;
    }

    /** Input dimension. */
    public int dIn() {
        return dIn;
    }

    /** Output dimension. */
    public int dOut() {
        return dOut;
    }

    /** {@code dIn + dOut}. */
    public int dim() {
        return dIn + dOut;
    }

    /** Number of units (≤ r; fewer when a canonical form dropped zero units). */
    public int count() {
        return count;
    }

    /** Row-major {@code count × (dIn + dOut)}; the internal array: do not modify. */
    public double[] units() {
        return units;
    }

    /** Source rank (NONE, BALANCED) or singular index (SVD) of each unit; the internal array: do not modify. */
    public int[] rankIndex() {
        return rankIndex;
    }

    /** Dense {@code ΔW = Σ_i b_i a_iᵀ} of these units. For tests and small modules only. */
    public double[] deltaW() {
        return deltaW(units, count, dIn, dOut);
    }

    // ------------------------------------------------------------------ binary form

    /**
     * These units as bytes, big-endian: {@link #BYTES_MAGIC}, {@link #BYTES_VERSION}, adapter id (int length +
     * UTF-8), weight, source rank, dIn, dOut, count, {@code count} rank indices, then the {@code count × (dIn + dOut)}
     * unit values; doubles by their raw bits. Deterministic: equal units give equal bytes.
     */
    public byte[] toBytes() {
        long size = 2L + 4 + adapterId.getBytes(StandardCharsets.UTF_8).length + 8 + 4 * 4 + 4L * count + 8L * units.length;
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("units of " + adapterId + ": " + size + " bytes do not fit one array");
        }
        // one chunk of exactly the size: streamBytes writes the layout, this keeps its buffer
        byte[][] whole = new byte[1][];
        streamBytes((int) size, chunk -> {
            if (whole[0] != null || chunk.position() != 0 || chunk.remaining() != chunk.capacity()) {
                throw new IllegalStateException("units of " + adapterId + ": size computed as " + size + " bytes");
            }
            whole[0] = chunk.array();
        });
        return whole[0];
    }

    /**
     * Hands the bytes of {@link #toBytes()} to {@code sink}, in order, as consecutive chunks of one reused buffer of
     * at most {@code chunkBytes} bytes (at least 8), so that a checksum of the units costs no copy of the whole
     * (≈ 2 MB for a llama-7b MLP module of a rank-16 adapter). Each chunk is passed flipped, positioned at its first
     * byte; the sink must consume it before returning.
     */
    public void streamBytes(int chunkBytes, Consumer<ByteBuffer> sink) {
        if (chunkBytes < 8) throw new IllegalArgumentException("chunkBytes " + chunkBytes + " < 8");
        byte[] id = adapterId.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(chunkBytes);
        out.put(BYTES_MAGIC).put(BYTES_VERSION).putInt(id.length);
        for (int from = 0; from < id.length; ) {
            room(out, 1, sink);
            int n = Math.min(out.remaining(), id.length - from);
            out.put(id, from, n);
            from += n;
        }
        room(out, 8, sink).putLong(Double.doubleToRawLongBits(weight));
        for (int v : new int[]{sourceRank, dIn, dOut, count}) room(out, 4, sink).putInt(v);
        for (int i = 0; i < count; i++) room(out, 4, sink).putInt(rankIndex[i]);
        for (int from = 0; from < units.length; ) {
            int n = Math.min(room(out, 8, sink).remaining() / 8, units.length - from);
            // a bulk copy through a big-endian view: the raw bits of each double, as putLong(doubleToRawLongBits)
            out.asDoubleBuffer().put(units, from, n);
            out.position(out.position() + 8 * n);
            from += n;
        }
        flush(out, sink);
    }

    /** {@code out}, flushed first if it has less than {@code bytes} left. */
    private static ByteBuffer room(ByteBuffer out, int bytes, Consumer<ByteBuffer> sink) {
        if (out.remaining() < bytes) flush(out, sink);
        return out;
    }

    private static void flush(ByteBuffer out, Consumer<ByteBuffer> sink) {
        out.flip();
        if (out.hasRemaining()) sink.accept(out);
        out.clear();
    }

    /**
     * Restores units written by {@link #toBytes()}.
     *
     * @throws IllegalArgumentException on a foreign blob, an unknown version, truncated or trailing bytes, or invalid
     *                                  content (the message says what, naming the adapter once known)
     */
    public static MinimalSemanticUnits fromBytes(byte[] data) {
        Objects.requireNonNull(data, "data");
        ByteBuffer in = ByteBuffer.wrap(data);
        String id = "(unknown adapter)";
        try {
            byte magic = in.get();
            if (magic != BYTES_MAGIC) {
                throw new IllegalArgumentException("not a units blob (first byte " + magic + ", expected " + BYTES_MAGIC + ")");
            }
            byte version = in.get();
            if (version != BYTES_VERSION) {
                throw new IllegalArgumentException("units blob: unknown format version " + version + " (this build reads "
                        + BYTES_VERSION + ")");
            }
            int idLen = in.getInt();
            if (idLen < 0 || idLen > in.remaining()) {
                throw new IllegalArgumentException("units blob: adapter id length " + idLen + " exceeds the "
                        + in.remaining() + " remaining bytes");
            }
            byte[] idBytes = new byte[idLen];
            in.get(idBytes);
            id = new String(idBytes, StandardCharsets.UTF_8);
            double weight = Double.longBitsToDouble(in.getLong());
            int sourceRank = in.getInt(), dIn = in.getInt(), dOut = in.getInt(), count = in.getInt();
            if (count < 0 || dIn < 1 || dOut < 1
                    || (long) count * (4 + 8L * ((long) dIn + dOut)) != in.remaining()) {
                throw new IllegalArgumentException("units blob of adapter " + id + ": " + count + " units of dim "
                        + dIn + " + " + dOut + " do not fit the " + in.remaining() + " remaining bytes");
            }
            int[] rankIndex = new int[count];
            for (int i = 0; i < count; i++) rankIndex[i] = in.getInt();
            double[] units = new double[count * (dIn + dOut)];
            for (int i = 0; i < units.length; i++) units[i] = Double.longBitsToDouble(in.getLong());
            return new MinimalSemanticUnits(id, weight, sourceRank, dIn, dOut, units, rankIndex);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("units blob of adapter " + id + ": truncated (" + data.length + " bytes)", e);
        }
    }
}
