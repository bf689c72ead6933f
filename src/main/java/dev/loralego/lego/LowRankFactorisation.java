package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.SingularOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

import java.util.Arrays;

/**
 * Balanced SVD factorisations used by the canonical form {@link CanonicalForm#SVD} (ALGORITHM.md §2) and by the
 * {@code svd}, {@code ties} and {@code dare} baselines (§7).
 *
 * <p>Three entry points:
 * <ul>
 *   <li>{@link #ofProduct}: the SVD of a product {@code B A} without forming it: thin QR of {@code B} and of
 *       {@code Aᵀ}, SVD of the small core {@code R_B R_Aᵀ = U S Vᵀ}, then {@code B' = Q_B U S^{1/2}},
 *       {@code A' = S^{1/2} Vᵀ Q_Aᵀ}. Cost {@code O(r² (dIn + dOut) + r³)}. The QRs are CholeskyQR2 without forming
 *       {@code Q} ({@link #ofProductCholeskyQr}) when both factors are tall and safely of full rank, else our
 *       Householder ({@link #thinQr}, {@link #ofProductHouseholder}).</li>
 *   <li>{@link #ofDense}: the compact SVD of a dense {@code dOut × dIn} matrix (EJML), cost
 *       {@code O(dOut · dIn · min(dOut, dIn))} time and {@code O(dOut · dIn)} memory: acceptable for gpt2-size
 *       modules (768 × 2304 takes about 3 s), expensive for 4096 × 11008.</li>
 *   <li>{@link #ofDenseTruncated}: only the leading {@code k} pairs of a dense matrix, from the eigenvectors of its
 *       smaller Gram matrix and a Rayleigh–Ritz step, checked by residuals; it falls back to {@link #ofDense} when
 *       {@code k} is not small or the check fails (768 × 2304 at k = 8: about 0.7 s).</li>
 * </ul>
 * Singular triplets are returned in descending order of singular value. EJML's decompositions and our passes are
 * sequential and deterministic (fixed summation orders, no threads), so the same input gives bit-identical factors;
 * {@link #fixSigns} then makes the sign of each pair independent of EJML's choices.
 */
public final class LowRankFactorisation {

    private LowRankFactorisation() {
    }

    /**
     * Balanced factors {@code ΔW = B A = Σ_j b_j a_jᵀ}, row-major, with the singular values they came from.
     *
     * @param rank           number of pairs {@code m}
     * @param dIn            columns of {@code A}
     * @param dOut           rows of {@code B}
     * @param a              {@code m × dIn}, row {@code j} is {@code sqrt(σ_j) v_jᵀ}
     * @param b              {@code dOut × m}, column {@code j} is {@code sqrt(σ_j) u_j}
     * @param singularValues {@code σ_0 ≥ σ_1 ≥ … ≥ 0}
     */
    public record Factors(int rank, int dIn, int dOut, double[] a, double[] b, double[] singularValues) {
        public Factors {
            if (a.length != (long) rank * dIn || b.length != (long) dOut * rank || singularValues.length != rank) {
                throw new IllegalArgumentException("factor sizes do not match rank " + rank + ", dIn " + dIn + ", dOut " + dOut);
            }
        }

        /** The leading {@code min(k, rank)} pairs (new arrays). */
        public Factors truncate(int k) {
            if (k < 0) throw new IllegalArgumentException("k must be >= 0, got " + k);
            int m = Math.min(k, rank);
            double[] na = new double[m * dIn];
            System.arraycopy(a, 0, na, 0, m * dIn);
            double[] nb = new double[dOut * m];
            for (int o = 0; o < dOut; o++) System.arraycopy(b, o * rank, nb, o * m, m);
            double[] ns = new double[m];
            System.arraycopy(singularValues, 0, ns, 0, m);
            return new Factors(m, dIn, dOut, na, nb, ns);
        }
    }

    /**
     * SVD of {@code B A} from its factors, never forming the {@code dOut × dIn} product.
     *
     * <p>Two routes, the same result up to rounding (ALGORITHM.md §2): when {@code B} and {@code Aᵀ} are tall
     * ({@code dOut ≥ r}, {@code dIn ≥ r}) and safely of full column rank, a CholeskyQR2 route
     * ({@link #ofProductCholeskyQr}) that never forms {@code Q}; otherwise (a wide factor, a rank-deficient or
     * ill-conditioned one, e.g. PEFT's initial {@code B = 0}) the Householder route ({@link #ofProductHouseholder}).
     * Both are sequential and deterministic, and which one runs depends on the input values only.
     *
     * @param b    row-major {@code dOut × r} (not modified)
     * @param a    row-major {@code r × dIn} (not modified)
     * @return all {@code min(dOut, dIn, r)} balanced pairs, descending singular values, signs as EJML returns them
     */
    public static Factors ofProduct(double[] b, double[] a, int dOut, int r, int dIn) {
        return ofProductTransposed(b, a, dOut, r, dIn, 1.0).toFactors(dIn, dOut);
    }

    /**
     * Balanced factors in unit layout: {@code a[j]} is row {@code j} of {@code A'} (length {@code dIn}), {@code bt[j]}
     * is column {@code j} of {@code B'} (length {@code dOut}), {@code j < rank} (the layout of
     * {@link MinimalSemanticUnits}: no strided copy).
     */
    record Transposed(int rank, double[][] a, double[][] bt, double[] singularValues, Replay replay) {

        Transposed(int rank, double[][] a, double[][] bt, double[] singularValues) {
            this(rank, a, bt, singularValues, null);
        }

        Factors toFactors(int dIn, int dOut) {
            double[] fa = new double[rank * dIn];
            double[] fb = new double[dOut * rank];
            for (int j = 0; j < rank; j++) {
                System.arraycopy(a[j], 0, fa, j * dIn, dIn);
                double[] col = bt[j];
                for (int o = 0; o < dOut; o++) fb[o * rank + j] = col[o];
            }
            return new Factors(rank, dIn, dOut, fa, fb, singularValues);
        }

        static Transposed of(Factors f) {
            int m = f.rank();
            return new Transposed(m, rowsOf(f.a(), m, f.dIn()), columnsOf(f.b(), f.dOut(), m), f.singularValues());
        }
    }

    /**
     * Balanced SVD factors of {@code s · B A}, {@code B'} transposed; the CholeskyQR2 route when it applies, else
     * Householder (see {@link #ofProduct}).
     *
     * @param s a scale {@code > 0} folded into the core (the PEFT scaling): no scaled copies of the factors
     */
    static Transposed ofProductTransposed(double[] b, double[] a, int dOut, int r, int dIn, double s) {
        if (b.length != (long) dOut * r || a.length != (long) r * dIn) {
            throw new IllegalArgumentException("factors do not match dOut " + dOut + ", r " + r + ", dIn " + dIn);
        }
        Transposed fast = ofProductCholeskyQr(b, a, dOut, r, dIn, s);
        return fast != null ? fast : Transposed.of(ofProductHouseholder(b, a, dOut, r, dIn, s));
    }

    /**
     * Bound on {@code ‖R‖_F ‖R⁻¹‖_F ≥ κ₂(X)} of the first Cholesky factor above which the CholeskyQR2 route gives
     * way to Householder. CholeskyQR2 needs {@code κ² u ≪ 1} (here {@code ≤ 1e-4}); the Gram matrix of a rank-deficient
     * factor has a zero or rounding-level pivot, i.e. a bound of {@code 1e8} or more, or no Cholesky factor at all.
     */
    static final double MAX_CONDITION = 1e6;

    /**
     * Smallest Gram diagonal ({@code ‖x_j‖²}) the CholeskyQR2 route accepts: {@code 2^-900}, far above the subnormal
     * range where squared entries lose relative precision. Smaller columns go to Householder, which does not square.
     */
    static final double MIN_GRAM_DIAGONAL = 0x1p-900;

    /** Columns per cache block of the tall passes (16 rows of 1024 doubles: 128 KiB, one target row in L1). */
    private static final int CHUNK = 1024;

    /**
     * The CholeskyQR2 route of {@link #ofProduct} (scaled by {@code s}), {@code null} when it does not apply: a wide
     * factor ({@code dOut < r} or {@code dIn < r}), or for {@code B} or {@code Aᵀ} a Gram diagonal below
     * {@link #MIN_GRAM_DIAGONAL}, a Cholesky pivot that is not finite and {@code > 0}, a condition bound above
     * {@link #MAX_CONDITION}, or a second Cholesky factor with a diagonal entry off 1 by more than 1/8.
     *
     * <p>For {@code X = B} and {@code X = Aᵀ}, held transposed ({@code Xᵀ} is {@code r × n}, long contiguous rows):
     * {@code R₁ = chol(XᵀX)}, {@code Q₁ = X R₁⁻¹} by forward substitution (backward stable: {@code Q₁ R₁ = X} up to
     * rounding whatever {@code κ(X)}), {@code R₂ = chol(Q₁ᵀQ₁)} (≈ I: it restores the orthogonality {@code Q₁} lost,
     * {@code O(κ² u)}), {@code Q = Q₁ R₂⁻¹}, {@code R = R₂ R₁}. The core {@code s R_B R_Aᵀ = U S Vᵀ} is as in the
     * Householder route; then {@code B'ᵀ = (R₂⁻¹ U S^½)ᵀ Q₁ᵀ} and {@code A' = (R₂⁻¹ V S^½)ᵀ Q₁ᵀ} with small
     * {@code r × r} back substitutions. {@code Q} is never formed; every tall pass is an elementwise loop over
     * {@code n} (vectorised by the JIT, no reduction) or a 4 × 4 register-blocked set of dot products, each summed in
     * index order, so the result does not depend on the machine.
     */
    static Transposed ofProductCholeskyQr(double[] b, double[] a, int dOut, int r, int dIn, double s) {
        if (dOut < r || dIn < r || r == 0) return null;
        // Xᵀ one array per row (the passes below are elementwise over rows of different arrays: the JIT vectorises
        // them, which it does not for two rows of one array); these copies become Q₁ᵀ in place
        CholQr qb = cholQr2(columnsOf(b, dOut, r), r, dOut);
        if (qb == null) return null;
        CholQr qa = cholQr2(rowsOf(a, r, dIn), r, dIn);
        if (qa == null) return null;
        // core = s R_B R_Aᵀ, R = R₂ R₁ (upper triangular)
        double[] rb = upperProduct(qb.r2, qb.r1, r), ra = upperProduct(qa.r2, qa.r1, r);
        DMatrixRMaj core = new DMatrixRMaj(r, r);
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < r; j++) {
                double acc = 0;
                for (int k = Math.max(i, j); k < r; k++) acc += rb[i * r + k] * ra[j * r + k];
                core.data[i * r + j] = s * acc;
            }
        }
        Svd svd = svd(core);
        int m = svd.m;
        double[] mb = new double[r * m], ma = new double[r * m];
        for (int k = 0; k < r; k++) {
            for (int j = 0; j < m; j++) {
                double h = Math.sqrt(svd.sigma[j]);
                mb[k * m + j] = svd.u.data[k * m + j] * h;
                ma[k * m + j] = svd.v.data[k * m + j] * h;
            }
        }
        backSolve(qb.r2, mb, r, m);
        backSolve(qa.r2, ma, r, m);
        return new Transposed(m, combine(qa.q1t, ma, r, m, dIn), combine(qb.q1t, mb, r, m, dOut), svd.sigma.clone(),
                new Replay(r, dIn, dOut, s, qb.r1, qa.r1, mb, ma, svd.sigma.clone()));
    }

    /**
     * What the CholeskyQR2 route computed from the small matrices of one factorisation: the first Cholesky factors
     * of {@code B} and {@code Aᵀ} and the final {@code r × m} combinations (after the back substitutions). Given the
     * same factors again, {@link #replay} repeats only the tall passes — the two forward substitutions and the two
     * combinations — and skips the four Gram matrices, the Cholesky factorisations and the core SVD; since those
     * passes do the same operations on the same values, the result has the same bits (a caller that must be sure
     * compares a digest). About 8 KB for r = 16.
     */
    record Replay(int r, int dIn, int dOut, double scale, double[] r1b, double[] r1a, double[] mb, double[] ma,
                  double[] sigma) {
        /** Doubles held. */
        long values() {
            return (long) r1b.length + r1a.length + mb.length + ma.length + sigma.length;
        }
    }

    /**
     * {@link #ofProductCholeskyQr} of the same factors and scale that produced {@code plan}, from its small matrices;
     * {@code null} when the shape or scale differ from the plan's.
     */
    static Transposed replay(Replay plan, double[] b, double[] a, int dOut, int r, int dIn, double s) {
        if (plan.r() != r || plan.dIn() != dIn || plan.dOut() != dOut
                || Double.doubleToRawLongBits(plan.scale()) != Double.doubleToRawLongBits(s)
                || b.length != (long) dOut * r || a.length != (long) r * dIn) {
            return null;
        }
        double[][] qbt = forwardSolve(columnsOf(b, dOut, r), plan.r1b(), r, dOut);
        double[][] qat = forwardSolve(rowsOf(a, r, dIn), plan.r1a(), r, dIn);
        int m = plan.sigma().length;
        return new Transposed(m, combine(qat, plan.ma(), r, m, dIn), combine(qbt, plan.mb(), r, m, dOut),
                plan.sigma().clone(), plan);
    }

    /** The {@code cols} columns of a row-major {@code rows × cols} matrix, each as its own array. */
    private static double[][] columnsOf(double[] m, int rows, int cols) {
        double[][] out = new double[cols][rows];
        for (int o = 0; o < rows; o++) {
            int row = o * cols;
            for (int j = 0; j < cols; j++) out[j][o] = m[row + j];
        }
        return out;
    }

    /** The {@code rows} rows of a row-major {@code rows × cols} matrix, each as its own array (copies). */
    private static double[][] rowsOf(double[] m, int rows, int cols) {
        double[][] out = new double[rows][];
        for (int j = 0; j < rows; j++) out[j] = Arrays.copyOfRange(m, j * cols, (j + 1) * cols);
        return out;
    }

    /** {@code Q₁ᵀ} ({@code r × n}) and the two Cholesky factors of CholeskyQR2. */
    private record CholQr(double[][] q1t, double[] r1, double[] r2) {
    }

    /**
     * CholeskyQR2 of {@code X} given as {@code xt = Xᵀ} ({@code r} rows of {@code n}, overwritten by {@code Q₁ᵀ});
     * {@code null} when a check fails (see {@link #ofProductCholeskyQr}).
     */
    private static CholQr cholQr2(double[][] xt, int r, int n) {
        double[] g1 = gram(xt, r, n);
        for (int j = 0; j < r; j++) {
            if (!(g1[j * r + j] >= MIN_GRAM_DIAGONAL)) return null;
        }
        double[] r1 = cholesky(g1, r);
        if (r1 == null || !(frobeniusCondition(r1, r) <= MAX_CONDITION)) return null;
        double[][] q1t = forwardSolve(xt, r1, r, n);
        double[] r2 = cholesky(gram(q1t, r, n), r);
        if (r2 == null) return null;
        for (int j = 0; j < r; j++) {
            // Q₁ has nearly orthonormal columns once κ passed: R₂ ≈ I; anything else means the Gram lied
            if (!(Math.abs(r2[j * r + j] - 1.0) <= 0.125)) return null;
        }
        return new CholQr(q1t, r1, r2);
    }

    /**
     * {@code X Xᵀ} ({@code r × r}, row-major) of the {@code r} rows of length {@code n} of {@code x}: 4 × 4 blocks of
     * rows, sixteen independent accumulators sharing each load; each entry is one sum in index order.
     */
    static double[] gram(double[][] x, int r, int n) {
        double[] g = new double[r * r];
        int r4 = r - r % 4;
        for (int k = 0; k < r4; k += 4) {
            double[] x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
            for (int c = k; c < r4; c += 4) {
                double[] y0 = x[c], y1 = x[c + 1], y2 = x[c + 2], y3 = x[c + 3];
                double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
                double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
                for (int i = 0; i < n; i++) {
                    double p0 = x0[i], p1 = x1[i], p2 = x2[i], p3 = x3[i];
                    double e0 = y0[i], e1 = y1[i], e2 = y2[i], e3 = y3[i];
                    s00 += p0 * e0;
                    s01 += p0 * e1;
                    s02 += p0 * e2;
                    s03 += p0 * e3;
                    s10 += p1 * e0;
                    s11 += p1 * e1;
                    s12 += p1 * e2;
                    s13 += p1 * e3;
                    s20 += p2 * e0;
                    s21 += p2 * e1;
                    s22 += p2 * e2;
                    s23 += p2 * e3;
                    s30 += p3 * e0;
                    s31 += p3 * e1;
                    s32 += p3 * e2;
                    s33 += p3 * e3;
                }
                double[] blk = {s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33};
                for (int u = 0; u < 4; u++) {
                    for (int v = 0; v < 4; v++) {
                        // in a diagonal block keep the upper entry (the mirrored one is the same sum anyway)
                        if (c == k && v < u) continue;
                        g[(k + u) * r + c + v] = blk[u * 4 + v];
                        g[(c + v) * r + k + u] = blk[u * 4 + v];
                    }
                }
            }
        }
        for (int k = 0; k < r; k++) {
            for (int c = Math.max(k, r4); c < r; c++) {
                double[] x0 = x[k], y0 = x[c];
                double acc = 0;
                for (int i = 0; i < n; i++) acc += x0[i] * y0[i];
                g[k * r + c] = acc;
                g[c * r + k] = acc;
            }
        }
        return g;
    }

    /**
     * Upper Cholesky factor {@code R} of {@code G = RᵀR} (row-major {@code r × r}), {@code null} unless every pivot is
     * finite and {@code > 0}.
     */
    static double[] cholesky(double[] g, int r) {
        double[] f = new double[r * r];
        for (int j = 0; j < r; j++) {
            double d = g[j * r + j];
            for (int k = 0; k < j; k++) d -= f[k * r + j] * f[k * r + j];
            if (!(d > 0) || !Double.isFinite(d)) return null;
            double rjj = Math.sqrt(d);
            f[j * r + j] = rjj;
            for (int c = j + 1; c < r; c++) {
                double e = g[j * r + c];
                for (int k = 0; k < j; k++) e -= f[k * r + j] * f[k * r + c];
                f[j * r + c] = e / rjj;
            }
        }
        return f;
    }

    /**
     * {@code ‖R‖_F ‖R⁻¹‖_F} of an upper triangular {@code R} with non-zero diagonal: an upper bound on {@code κ₂(R)}
     * (at most {@code r} times too large).
     */
    static double frobeniusCondition(double[] f, int r) {
        double[] inv = new double[r * r];
        for (int j = r - 1; j >= 0; j--) {
            inv[j * r + j] = 1.0 / f[j * r + j];
            for (int c = j + 1; c < r; c++) {
                // (R⁻¹)[j][c] = −(Σ_{k=j+1..c} R[j][k] (R⁻¹)[k][c]) / R[j][j]
                double acc = 0;
                for (int k = j + 1; k <= c; k++) acc += f[j * r + k] * inv[k * r + c];
                inv[j * r + c] = -acc / f[j * r + j];
            }
        }
        double nf = 0, ni = 0;
        for (int i = 0; i < r * r; i++) {
            nf += f[i] * f[i];
            ni += inv[i] * inv[i];
        }
        return Math.sqrt(nf) * Math.sqrt(ni);
    }

    /**
     * {@code Q₁ᵀ} with {@code Q₁ R = X}, in place over {@code xt = Xᵀ} ({@code r} rows of {@code n}): row {@code j}
     * becomes {@code (x_j − Σ_{k<j} R[k][j] q_k) / R[j][j]}, elementwise over {@code n} in blocks of {@link #CHUNK}.
     */
    private static double[][] forwardSolve(double[][] q, double[] f, int r, int n) {
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            int i1 = Math.min(n, i0 + CHUNK);
            for (int j = 0; j < r; j++) {
                double[] qj = q[j];
                for (int k = 0; k < j; k++) {
                    double c = f[k * r + j];
                    double[] qk = q[k];
                    for (int i = i0; i < i1; i++) qj[i] -= c * qk[i];
                }
                double d = 1.0 / f[j * r + j];
                for (int i = i0; i < i1; i++) qj[i] *= d;
            }
        }
        return q;
    }

    /** Solves {@code R M = W} in place ({@code w}: row-major {@code r × m}), {@code R} upper triangular. */
    private static void backSolve(double[] f, double[] w, int r, int m) {
        for (int i = r - 1; i >= 0; i--) {
            for (int j = 0; j < m; j++) {
                double acc = w[i * m + j];
                for (int k = i + 1; k < r; k++) acc -= f[i * r + k] * w[k * m + j];
                w[i * m + j] = acc / f[i * r + i];
            }
        }
    }

    /** Upper triangular {@code P Q} of two upper triangular {@code r × r} matrices. */
    private static double[] upperProduct(double[] p, double[] q, int r) {
        double[] out = new double[r * r];
        for (int i = 0; i < r; i++) {
            for (int j = i; j < r; j++) {
                double acc = 0;
                for (int k = i; k <= j; k++) acc += p[i * r + k] * q[k * r + j];
                out[i * r + j] = acc;
            }
        }
        return out;
    }

    /**
     * {@code Mᵀ Qᵀ}, {@code m} rows of {@code n}: row {@code j} is {@code Σ_k M[k][j] q_k} ({@code qt}: {@code r} rows
     * of {@code n}, {@code mm}: row-major {@code r × m}), summed in index order of {@code k}, four terms per sweep.
     * Output and input rows are distinct arrays indexed alike, so the JIT vectorises the sweeps.
     */
    private static double[][] combine(double[][] qt, double[] mm, int r, int m, int n) {
        double[][] out = new double[m][n];
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            int i1 = Math.min(n, i0 + CHUNK);
            for (int j = 0; j < m; j++) {
                double[] o = out[j];
                int k = 0;
                for (; k + 4 <= r; k += 4) {
                    double c0 = mm[k * m + j], c1 = mm[(k + 1) * m + j], c2 = mm[(k + 2) * m + j], c3 = mm[(k + 3) * m + j];
                    double[] q0 = qt[k], q1 = qt[k + 1], q2 = qt[k + 2], q3 = qt[k + 3];
                    for (int i = i0; i < i1; i++) o[i] = o[i] + c0 * q0[i] + c1 * q1[i] + c2 * q2[i] + c3 * q3[i];
                }
                for (; k < r; k++) {
                    double c = mm[k * m + j];
                    double[] qk = qt[k];
                    for (int i = i0; i < i1; i++) o[i] += c * qk[i];
                }
            }
        }
        return out;
    }

    /**
     * The Householder route of {@link #ofProduct} (scaled by {@code s}): thin QR of {@code B} and {@code Aᵀ}
     * ({@link #thinQr}), SVD of {@code s R_B R_Aᵀ}, {@code B' = Q_B U S^½}, {@code A' = S^½ Vᵀ Q_Aᵀ}. Handles any
     * shape and rank (a column already zero gets no reflection); the reference for the CholeskyQR2 route.
     */
    static Factors ofProductHouseholder(double[] b, double[] a, int dOut, int r, int dIn, double s) {
        if (b.length != (long) dOut * r || a.length != (long) r * dIn) {
            throw new IllegalArgumentException("factors do not match dOut " + dOut + ", r " + r + ", dIn " + dIn);
        }
        // B = Q_B R_B (thin: Q_B is dOut × p, R_B is p × r, p = min(dOut, r))
        DMatrixRMaj bm = DMatrixRMaj.wrap(dOut, r, b.clone());
        DMatrixRMaj[] qrB = thinQr(bm);
        // Aᵀ = Q_A R_A (Q_A is dIn × q, R_A is q × r)
        DMatrixRMaj at = new DMatrixRMaj(dIn, r);
        CommonOps_DDRM.transpose(DMatrixRMaj.wrap(r, dIn, a), at);
        DMatrixRMaj[] qrA = thinQr(at);
        // core = s R_B R_Aᵀ (p × q); s B A = Q_B core Q_Aᵀ
        DMatrixRMaj core = new DMatrixRMaj(qrB[1].numRows, qrA[1].numRows);
        CommonOps_DDRM.multTransB(s, qrB[1], qrA[1], core);
        Svd sv = svd(core);
        // B' = Q_B U S^{1/2}; A' = S^{1/2} Vᵀ Q_Aᵀ = (Q_A V S^{1/2})ᵀ
        DMatrixRMaj bu = new DMatrixRMaj(dOut, sv.m);
        CommonOps_DDRM.mult(qrB[0], sv.u, bu);
        DMatrixRMaj av = new DMatrixRMaj(dIn, sv.m);
        CommonOps_DDRM.mult(qrA[0], sv.v, av);
        return balanced(bu, av, sv.sigma, dIn, dOut);
    }

    /**
     * Compact SVD of a dense matrix.
     *
     * @param w row-major {@code dOut × dIn} (not modified)
     * @return all {@code min(dOut, dIn)} balanced pairs, descending singular values, signs as EJML returns them
     */
    public static Factors ofDense(double[] w, int dOut, int dIn) {
        if (w.length != (long) dOut * dIn) {
            throw new IllegalArgumentException("dense matrix has " + w.length + " values, expected " + dOut + "*" + dIn);
        }
        Svd s = svd(DMatrixRMaj.wrap(dOut, dIn, w.clone()));
        return balanced(s.u, s.v, s.sigma, dIn, dOut);
    }

    /**
     * Best rank-{@code k} factors of a dense matrix (Eckart–Young): the leading {@code m = min(k, dOut, dIn)} balanced
     * SVD pairs of {@code W}, the same result as {@code ofDense(w, dOut, dIn).truncate(k)} up to rounding and the sign of
     * each pair ({@link #fixSigns}), and within a group of equal singular values up to a rotation of the group's
     * vectors (only the product {@code B A} is determined there).
     *
     * <p>Route (ALGORITHM.md §7): with {@code n = min(dOut, dIn)}, the Gram route ({@link #ofDenseGram}) runs when
     * {@code 1 ≤ m} and {@code 4m ≤ n} ({@link #gramRoutePays}); it costs the Gram matrix ({@code n² max(dOut, dIn) / 2}
     * multiply-adds), a symmetric eigen-decomposition of order {@code n} and {@code O(n · max(dOut, dIn) · m)} more,
     * instead of the full SVD (gpt2 {@code 768 × 2304}: about 0.7 s instead of 3 s). Its result is kept only if every
     * kept triplet passes its residual check; otherwise, and when {@code 4m > n}, the full SVD ({@link #ofDense}) runs
     * and is truncated, bit for bit the former result. Sequential and deterministic: the same input gives the same
     * bits.
     *
     * @param w row-major {@code dOut × dIn} (not modified)
     * @param k number of pairs wanted, {@code ≥ 0}
     * @return {@code min(k, dOut, dIn)} balanced pairs, descending singular values, signs not fixed
     * @throws IllegalArgumentException on a size mismatch, {@code k < 0}, or (from the full SVD) non-finite values
     */
    public static Factors ofDenseTruncated(double[] w, int dOut, int dIn, int k) {
        if (w.length != (long) dOut * dIn) {
            throw new IllegalArgumentException("dense matrix has " + w.length + " values, expected " + dOut + "*" + dIn);
        }
        if (k < 0) throw new IllegalArgumentException("k must be >= 0, got " + k);
        int n = Math.min(dOut, dIn), m = Math.min(k, n);
        if (gramRoutePays(m, n)) {
            Factors f = ofDenseGram(w, dOut, dIn, m);
            if (f != null) return f;
        }
        return ofDense(w, dOut, dIn).truncate(k);
    }

    /**
     * Whether {@link #ofDenseTruncated} tries the Gram route for {@code m} pairs of a matrix whose smaller dimension is
     * {@code n}: {@code 1 ≤ m} and {@code 4m ≤ n}. The eigen-decomposition alone costs about half a full SVD of a
     * square matrix; past {@code m = n/4} the {@code O(n · max(dOut, dIn) · m)} steps (projection, QR, residual
     * check) eat the rest of the saving (measured on a 768 × 768 TIES update: 0.66 s against 1.04 s at {@code m = 192}, 0.58 s at
     * {@code m = 8}; see {@code DenseFactorTiming}).
     */
    static boolean gramRoutePays(int m, int n) {
        return m >= 1 && 4L * m <= n;
    }

    /**
     * Bound, relative to the largest singular value {@code σ_1}, on the residual {@code ‖M q_j − σ_j e_j‖} of each triplet that
     * {@link #ofDenseGram} accepts: {@code 2^-40 ≈ 9.1e-13}, about 4096 unit roundoffs (the full SVD's residuals are
     * about {@code 1e-15 σ_1}). The Gram route's residuals are about {@code u σ_1² / σ_j}, so the check fails, and the
     * full SVD runs, roughly when {@code σ_m < 1e-4 σ_1}.
     */
    static final double GRAM_RESIDUAL_TOL = 0x1p-40;

    /**
     * The Gram route of {@link #ofDenseTruncated}: the leading {@code m} balanced SVD pairs of {@code W}, or
     * {@code null} when it does not apply or its result fails the check (the caller then runs the full SVD).
     *
     * <ol>
     *   <li>Let {@code M} be {@code W} if {@code dOut < dIn}, else {@code Wᵀ}: {@code n × N}, {@code n ≤ N}. Scale it by
     *       a power of two {@code s} (exact) so its largest entry has magnitude in {@code [1, 2)}: the Gram matrix
     *       neither overflows nor underflows. {@code null} for a non-finite or all-zero {@code W}.</li>
     *   <li>{@code G = s² M Mᵀ} ({@link #gram}, {@code n × n}) and its symmetric eigen-decomposition (EJML, sequential;
     *       its exceptional shifts come from a fixed seed); {@code E} = the eigenvectors of the {@code m} largest
     *       eigenvalues (equal eigenvalues in EJML's index order).</li>
     *   <li>Rayleigh–Ritz on {@code span(E)}, without squaring: {@code Y = s Mᵀ E} ({@code N × m}), Householder
     *       {@code Y = Q R} ({@link #thinQr}), {@code R = Ũ Σ Zᵀ} (SVD, descending). Then {@code s Mᵀ (E Z) = (Q Ũ) Σ}
     *       up to rounding: {@code E Z} are the {@code n}-side singular vectors, {@code Q Ũ} the {@code N}-side ones,
     *       {@code Σ / s} the singular values. They come from {@code Y}, not from eigenvalues, so they carry no squared
     *       error; both sets of vectors are orthonormal.</li>
     *   <li>Check: for every kept {@code j}, {@code ‖s M q_j − sσ_j e_j‖ ≤ }{@link #GRAM_RESIDUAL_TOL}{@code · sσ_1}.
     *       With the other side exact, the triplets are then exact singular triplets of {@code W + F},
     *       {@code ‖F‖_F ≤ √m · 2^-40 σ_1}, so {@code ‖W − B A‖_F} exceeds the Eckart–Young optimum by at most
     *       {@code 2√m · 2^-40 σ_1}. A pair with {@code σ_j = 0} (an exactly rank-deficient {@code W}) is checked too:
     *       its {@code q_j} must be orthogonal to the range of {@code Mᵀ}, i.e. nothing of {@code W} was missed.</li>
     * </ol>
     * Why the check: the Gram matrix holds {@code σ_j²} with an absolute error of about {@code u σ_1²}, so the
     * eigenvectors of small eigenvalues lean out of the true singular subspace by about {@code u σ_1² / σ_j²}, which
     * gives residuals of about {@code u σ_1² / σ_j}. Leading-ness comes from the eigen-decomposition, which sees every
     * direction of {@code W}: a direction whose {@code σ²} is resolved above {@code u σ_1²} cannot be skipped.
     *
     * @param m pairs wanted, {@code 0 ≤ m ≤ min(dOut, dIn)}
     */
    static Factors ofDenseGram(double[] w, int dOut, int dIn, int m) {
        int n = Math.min(dOut, dIn), big = Math.max(dOut, dIn);
        if (w.length != (long) dOut * dIn || m < 0 || m > n) {
            throw new IllegalArgumentException("bad shape " + dOut + "x" + dIn + " for " + m + " pairs");
        }
        if (m == 0) return new Factors(0, dIn, dOut, new double[0], new double[0], new double[0]);
        double max = 0;
        for (double v : w) {
            if (!Double.isFinite(v)) return null;
            max = Math.max(max, Math.abs(v));
        }
        if (max == 0) return null;
        double s = Math.scalb(1.0, -Math.getExponent(max));
        boolean tall = dOut >= dIn;
        // X = s M, n rows of length N
        double[][] x = new double[n][big];
        if (tall) {
            for (int o = 0; o < dOut; o++) {
                int row = o * dIn;
                for (int i = 0; i < dIn; i++) x[i][o] = s * w[row + i];
            }
        } else {
            for (int o = 0; o < dOut; o++) {
                double[] xo = x[o];
                int row = o * dIn;
                for (int i = 0; i < dIn; i++) xo[i] = s * w[row + i];
            }
        }
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(n, true, true);
        if (!eig.decompose(DMatrixRMaj.wrap(n, n, gram(x, n, big)))) return null;
        double[] lambda = new double[n];
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            lambda[i] = eig.getEigenvalue(i).real;
            if (!Double.isFinite(lambda[i])) return null;
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Double.compare(lambda[b], lambda[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        DMatrixRMaj e = new DMatrixRMaj(n, m);
        for (int j = 0; j < m; j++) {
            DMatrixRMaj v = eig.getEigenVector(order[j]);
            if (v == null) return null;
            for (int i = 0; i < n; i++) e.data[i * m + j] = v.data[i];
        }
        DMatrixRMaj[] qr = thinQr(projectRows(x, e.data, n, m, big));
        Svd core = svd(qr[1]);
        DMatrixRMaj bigSide = new DMatrixRMaj(big, m), smallSide = new DMatrixRMaj(n, m);
        CommonOps_DDRM.mult(qr[0], core.u, bigSide);
        CommonOps_DDRM.mult(e, core.v, smallSide);
        double[] sigmaScaled = core.sigma;
        if (!(sigmaScaled[0] > 0) || !residualsPass(x, n, big, bigSide, smallSide, sigmaScaled)) return null;
        double[] sigma = new double[m];
        for (int j = 0; j < m; j++) sigma[j] = sigmaScaled[j] / s;
        return tall ? balanced(bigSide, smallSide, sigma, dIn, dOut) : balanced(smallSide, bigSide, sigma, dIn, dOut);
    }

    /**
     * The check of {@link #ofDenseGram}: {@code ‖X q_j − σ_j e_j‖ ≤ GRAM_RESIDUAL_TOL · σ[0]} for every kept {@code j}
     * ({@code X}: {@code n} rows of {@code N}; {@code q_j}: column {@code j} of {@code bigSide},
     * {@code e_j}: of {@code smallSide}; all scaled alike).
     */
    private static boolean residualsPass(double[][] x, int n, int big, DMatrixRMaj bigSide, DMatrixRMaj smallSide,
                                         double[] sigma) {
        int m = sigma.length;
        double bound = GRAM_RESIDUAL_TOL * sigma[0];
        double[][] q = new double[m][big];
        for (int c = 0; c < big; c++) {
            for (int j = 0; j < m; j++) q[j][c] = bigSide.data[c * m + j];
        }
        double[] sq = new double[m];
        for (int i = 0; i < n; i++) {
            double[] xi = x[i];
            int j = 0;
            // four dot products per sweep share the loads of x_i; each is one sum in index order
            for (; j + 4 <= m; j += 4) {
                double[] q0 = q[j], q1 = q[j + 1], q2 = q[j + 2], q3 = q[j + 3];
                double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int c = 0; c < big; c++) {
                    double v = xi[c];
                    a0 += v * q0[c];
                    a1 += v * q1[c];
                    a2 += v * q2[c];
                    a3 += v * q3[c];
                }
                double[] acc = {a0, a1, a2, a3};
                for (int t = 0; t < 4; t++) {
                    double r = acc[t] - sigma[j + t] * smallSide.data[i * m + j + t];
                    sq[j + t] += r * r;
                }
            }
            for (; j < m; j++) {
                double[] qj = q[j];
                double acc = 0;
                for (int c = 0; c < big; c++) acc += xi[c] * qj[c];
                double r = acc - sigma[j] * smallSide.data[i * m + j];
                sq[j] += r * r;
            }
        }
        for (int j = 0; j < m; j++) {
            if (!(Math.sqrt(sq[j]) <= bound)) return false;
        }
        return true;
    }

    /** Columns per cache block of {@link #projectRows} ({@code m} rows of 2 KiB of output: in L2 for {@code m ≤ 128}). */
    private static final int PROJECT_CHUNK = 256;

    /**
     * {@code Xᵀ E} as a row-major {@code N × p} matrix, {@code X} given as {@code n} rows of {@code N}, {@code E}
     * row-major {@code n × p}: each entry {@code Σ_i X[i][c] E[i][j]} summed in index order of {@code i}. Computed
     * transposed in column blocks (elementwise sweeps over one row of {@code X}, which the JIT vectorises), then
     * transposed back.
     */
    private static DMatrixRMaj projectRows(double[][] x, double[] e, int n, int p, int big) {
        double[][] yt = new double[p][big];
        for (int c0 = 0; c0 < big; c0 += PROJECT_CHUNK) {
            int c1 = Math.min(big, c0 + PROJECT_CHUNK);
            for (int i = 0; i < n; i++) {
                double[] xi = x[i];
                int er = i * p;
                for (int j = 0; j < p; j++) {
                    double f = e[er + j];
                    double[] yj = yt[j];
                    for (int c = c0; c < c1; c++) yj[c] += f * xi[c];
                }
            }
        }
        DMatrixRMaj y = new DMatrixRMaj(big, p);
        for (int j = 0; j < p; j++) {
            double[] yj = yt[j];
            for (int c = 0; c < big; c++) y.data[c * p + j] = yj[c];
        }
        return y;
    }

    /**
     * The sign rule of ALGORITHM.md §2 on factor layout, in place: for each pair {@code j}, the entry of largest
     * magnitude of column {@code j} of {@code B} (lowest row index on ties) is made positive by negating column
     * {@code j} of {@code B} and row {@code j} of {@code A} together ({@code b_j a_jᵀ} is unchanged). A zero column
     * is left as it is.
     *
     * @param a row-major {@code m × dIn}, modified
     * @param b row-major {@code dOut × m}, modified
     */
    public static void fixSigns(double[] a, double[] b, int m, int dIn, int dOut) {
        for (int j = 0; j < m; j++) {
            double best = 0;
            double bestVal = 0;
            for (int o = 0; o < dOut; o++) {
                double v = b[o * m + j];
                if (Math.abs(v) > best) {
                    best = Math.abs(v);
                    bestVal = v;
                }
            }
            if (bestVal < 0) {
                for (int o = 0; o < dOut; o++) b[o * m + j] = -b[o * m + j];
                for (int i = 0; i < dIn; i++) a[j * dIn + i] = -a[j * dIn + i];
            }
        }
    }

    private static Factors balanced(DMatrixRMaj u, DMatrixRMaj v, double[] sigma, int dIn, int dOut) {
        int m = sigma.length, uc = u.numCols, vc = v.numCols;
        double[] a = new double[m * dIn];
        double[] b = new double[dOut * m];
        double[] h = new double[m];
        for (int j = 0; j < m; j++) h[j] = Math.sqrt(sigma[j]);
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < m; j++) b[o * m + j] = u.data[o * uc + j] * h[j];
        }
        for (int i = 0; i < dIn; i++) {
            for (int j = 0; j < m; j++) a[j * dIn + i] = v.data[i * vc + j] * h[j];
        }
        return new Factors(m, dIn, dOut, a, b, sigma.clone());
    }

    /**
     * Thin Householder QR of an {@code m × n} matrix: {@code M = Q R}, {@code Q} is {@code m × p} with orthonormal
     * columns, {@code R} is {@code p × n} upper triangular, {@code p = min(m, n)}. Our own (EJML's Householder QR
     * reports failure on a zero column, e.g. PEFT's initial {@code B = 0}); a column that is already zero below the
     * diagonal gets no reflection. Sequential and deterministic.
     *
     * @param mat row-major {@code m × n}, modified (used as the work array)
     * @return {@code {Q, R}}
     */
    static DMatrixRMaj[] thinQr(DMatrixRMaj mat) {
        int m = mat.numRows, n = mat.numCols, p = Math.min(m, n);
        double[] w = mat.data;
        double[][] v = new double[p][];
        double[] beta = new double[p];
        for (int j = 0; j < p; j++) {
            double norm = 0;
            for (int i = j; i < m; i++) norm += w[i * n + j] * w[i * n + j];
            norm = Math.sqrt(norm);
            if (norm == 0) continue;
            // H = I − β v vᵀ maps x = w[j.., j] onto α e_1, α = −sign(x_0) ‖x‖ (no cancellation in v_0)
            double x0 = w[j * n + j];
            double alpha = x0 >= 0 ? -norm : norm;
            double[] vj = new double[m - j];
            for (int i = j; i < m; i++) vj[i - j] = w[i * n + j];
            vj[0] -= alpha;
            double vv = 0;
            for (double e : vj) vv += e * e;
            if (vv == 0) continue;
            double bj = 2.0 / vv;
            // apply H to columns j..n-1 of rows j..m-1. Row-wise sweeps (the matrix is row-major and tall): each
            // column's dot product still accumulates over i in ascending order and each update is elementwise, so
            // the result is bit-identical to the column-by-column form, without the strided passes.
            double[] dots = new double[n];
            for (int i = j; i < m; i++) {
                double vi = vj[i - j];
                int row = i * n;
                for (int c = j; c < n; c++) dots[c] += vi * w[row + c];
            }
            for (int c = j; c < n; c++) dots[c] *= bj;
            for (int i = j; i < m; i++) {
                double vi = vj[i - j];
                int row = i * n;
                for (int c = j; c < n; c++) w[row + c] -= dots[c] * vi;
            }
            for (int i = j + 1; i < m; i++) w[i * n + j] = 0.0;
            w[j * n + j] = alpha;
            v[j] = vj;
            beta[j] = bj;
        }
        DMatrixRMaj r = new DMatrixRMaj(p, n);
        for (int i = 0; i < p; i++) {
            for (int c = i; c < n; c++) r.data[i * n + c] = w[i * n + c];
        }
        // Q = H_0 H_1 … H_{p−1} [I_p ; 0]
        DMatrixRMaj q = new DMatrixRMaj(m, p);
        for (int i = 0; i < p; i++) q.data[i * p + i] = 1.0;
        for (int j = p - 1; j >= 0; j--) {
            if (v[j] == null) continue;
            double[] vj = v[j];
            double[] qd = q.data;
            // Row-wise sweeps, same per-column summation order as a column-by-column pass (bit-identical). Columns
            // c < j are still e_c here (only reflectors j' > j were applied, and they touch rows >= j' only), so their
            // rows j.. are exact zeros, their dot product is +0 and the former pass skipped them: start at c = j.
            double[] f = new double[p];
            for (int i = j; i < m; i++) {
                double vi = vj[i - j];
                int row = i * p;
                for (int c = j; c < p; c++) f[c] += vi * qd[row + c];
            }
            boolean any = false, all = true;
            for (int c = j; c < p; c++) {
                f[c] = beta[j] * f[c];
                any |= f[c] != 0;
                all &= f[c] != 0;
            }
            if (!any) continue;
            if (all) {
                // the usual case: no column to skip, a branch-free loop the JIT can vectorise
                for (int i = j; i < m; i++) {
                    double vi = vj[i - j];
                    int row = i * p;
                    for (int c = j; c < p; c++) qd[row + c] -= f[c] * vi;
                }
            } else {
                for (int i = j; i < m; i++) {
                    double vi = vj[i - j];
                    int row = i * p;
                    for (int c = j; c < p; c++) {
                        if (f[c] != 0) qd[row + c] -= f[c] * vi;
                    }
                }
            }
        }
        return new DMatrixRMaj[]{q, r};
    }

    private record Svd(int m, DMatrixRMaj u, DMatrixRMaj v, double[] sigma) {
    }

    private static Svd svd(DMatrixRMaj m) {
        int n = Math.min(m.numRows, m.numCols);
        if (CommonOps_DDRM.elementMaxAbs(m) == 0) {
            // zero matrix: σ = 0, any orthonormal U, V; take the leading identity columns
            DMatrixRMaj u = new DMatrixRMaj(m.numRows, n), v = new DMatrixRMaj(m.numCols, n);
            for (int j = 0; j < n; j++) {
                u.set(j, j, 1.0);
                v.set(j, j, 1.0);
            }
            return new Svd(n, u, v, new double[n]);
        }
        SingularValueDecomposition_F64<DMatrixRMaj> svd =
                DecompositionFactory_DDRM.svd(m.numRows, m.numCols, true, true, true);
        if (!svd.decompose(m)) {
            throw new IllegalArgumentException("SVD of a " + m.numRows + " x " + m.numCols
                    + " matrix did not converge (non-finite values?)");
        }
        DMatrixRMaj u = svd.getU(null, false);
        DMatrixRMaj w = svd.getW(null);
        DMatrixRMaj v = svd.getV(null, false);
        SingularOps_DDRM.descendingOrder(u, false, w, v, false);
        double[] sigma = new double[n];
        for (int j = 0; j < n; j++) sigma[j] = w.get(j, j);
        return new Svd(n, u, v, sigma);
    }
}
