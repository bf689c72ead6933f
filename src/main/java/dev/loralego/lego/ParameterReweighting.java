package dev.loralego.lego;

/** The norm used by the parameter (norm-decay) reweighting of ALGORITHM.md §4, or none. */
public enum ParameterReweighting {
    /** Step switched off. */
    OFF,
    /** Restore each centroid to the weighted mean L2 norm of its members (default). */
    L2,
    /** Restore each centroid to the weighted mean L∞ norm of its members (both public re-implementations). */
    LINF
}
