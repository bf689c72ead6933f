package dev.loralego.lego;

/** Which vectors k-means assigns on (ALGORITHM.md §3); centroids always average the raw vectors. */
public enum FeatureNorm {
    /** Assign on the raw {@code [a ; b]}. */
    NONE,
    /** Assign on {@code [a/‖a‖ ; b/‖b‖]}. */
    HALVES
}
