package dev.loralego.lego;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.SingularOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/**
 * Balanced SVD factorisations used by the canonical form {@link CanonicalForm#SVD} (ALGORITHM.md §2) and by the
 * {@code svd}, {@code ties} and {@code dare} baselines (§7).
 *
 * <p>Two entry points:
 * <ul>
 *   <li>{@link #ofProduct}: the SVD of a product {@code B A} without forming it: thin QR of {@code B} and of
 *       {@code Aᵀ} (our Householder, {@link #thinQr}), SVD of the small core {@code R_B R_Aᵀ = U S Vᵀ}, then
 *       {@code B' = Q_B U S^{1/2}}, {@code A' = S^{1/2} Vᵀ Q_Aᵀ}. Cost {@code O(r² (dIn + dOut) + r³)}.</li>
 *   <li>{@link #ofDense}: the compact SVD of a dense {@code dOut × dIn} matrix (EJML), cost
 *       {@code O(dOut · dIn · min(dOut, dIn))} time and {@code O(dOut · dIn)} memory: acceptable for gpt2-size
 *       modules (768 × 2304 takes seconds), expensive for 4096 × 11008.</li>
 * </ul>
 * Singular triplets are returned in descending order of singular value. EJML's decompositions are sequential
 * and deterministic, so the same input gives bit-identical factors; {@link #fixSigns} then makes the sign of
 * each pair independent of EJML's choices.
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
     * @param b    row-major {@code dOut × r} (not modified)
     * @param a    row-major {@code r × dIn} (not modified)
     * @return all {@code min(dOut, dIn, r)} balanced pairs, descending singular values, signs as EJML returns them
     */
    public static Factors ofProduct(double[] b, double[] a, int dOut, int r, int dIn) {
        if (b.length != (long) dOut * r || a.length != (long) r * dIn) {
            throw new IllegalArgumentException("factors do not match dOut " + dOut + ", r " + r + ", dIn " + dIn);
        }
        // B = Q_B R_B (thin: Q_B is dOut × p, R_B is p × r, p = min(dOut, r))
        DMatrixRMaj bm = DMatrixRMaj.wrap(dOut, r, b.clone());
        DMatrixRMaj[] qrB = thinQr(bm);
        // Aᵀ = Q_A R_A (Q_A is dIn × q, R_A is q × r)
        DMatrixRMaj at = new DMatrixRMaj(dIn, r);
        CommonOps_DDRM.transpose(DMatrixRMaj.wrap(r, dIn, a.clone()), at);
        DMatrixRMaj[] qrA = thinQr(at);
        // core = R_B R_Aᵀ (p × q); B A = Q_B core Q_Aᵀ
        DMatrixRMaj core = new DMatrixRMaj(qrB[1].numRows, qrA[1].numRows);
        CommonOps_DDRM.multTransB(qrB[1], qrA[1], core);
        Svd s = svd(core);
        // B' = Q_B U S^{1/2}; A' = S^{1/2} Vᵀ Q_Aᵀ = (Q_A V S^{1/2})ᵀ
        DMatrixRMaj bu = new DMatrixRMaj(dOut, s.m);
        CommonOps_DDRM.mult(qrB[0], s.u, bu);
        DMatrixRMaj av = new DMatrixRMaj(dIn, s.m);
        CommonOps_DDRM.mult(qrA[0], s.v, av);
        return balanced(bu, av, s.sigma, dIn, dOut);
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
        int m = sigma.length;
        double[] a = new double[m * dIn];
        double[] b = new double[dOut * m];
        for (int j = 0; j < m; j++) {
            double h = Math.sqrt(sigma[j]);
            for (int o = 0; o < dOut; o++) b[o * m + j] = u.get(o, j) * h;
            for (int i = 0; i < dIn; i++) a[j * dIn + i] = v.get(i, j) * h;
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
