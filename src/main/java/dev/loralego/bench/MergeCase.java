package dev.loralego.bench;

import dev.loralego.merge.MergeSpec;

import java.util.Objects;

/**
 * One row of the quality benchmark: a merge (method and options) of the first {@code adapters} task adapters,
 * or the reference "ideal" update when {@code spec} is {@code null}.
 *
 * @param section  the table it belongs to
 * @param method   method label, e.g. {@code lego (svd)}
 * @param k        rank label, e.g. {@code 16}, {@code auto τ=0.9}, {@code Σr}
 * @param adapters number of task adapters merged (the first ones)
 * @param spec     the merge, or {@code null} for the reference
 */
public record MergeCase(Section section, String method, String k, int adapters, MergeSpec spec) {

    /** The tables of the report. */
    public enum Section {
        /** All methods and ranks, merging the world's {@code mergedTasks} adapters. */
        MAIN,
        /** LoRA-LEGO with one step changed at a time. */
        ABLATION,
        /** Number of adapters merged. */
        ADAPTERS
    }

    public MergeCase {
        Objects.requireNonNull(section, "section");
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(k, "k");
        if (adapters < 1) throw new IllegalArgumentException("adapters must be >= 1");
    }

    /** Whether this is the reference row (no merge). */
    public boolean reference() {
        return spec == null;
    }

    /** A key unique within a benchmark: what is merged and how. */
    public String key() {
        return section + "|" + method + "|" + k + "|" + adapters;
    }

    /** The key of the computation (equal for rows of different sections that merge the same way). */
    String computationKey() {
        return (spec == null ? "reference" : spec.toString()) + "|" + adapters;
    }
}
