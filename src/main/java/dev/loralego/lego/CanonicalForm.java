package dev.loralego.lego;

/** How each adapter's units are normalised before clustering (ALGORITHM.md §2). */
public enum CanonicalForm {
    /** Paper-faithful: cluster the units as stored. */
    NONE,
    /** Rescale each unit so {@code ‖a‖ = ‖b‖}, then fix its sign. */
    BALANCED,
    /** Replace each adapter's {@code (A, B)} by the balanced SVD factors of {@code B A}, then fix signs. */
    SVD
}
