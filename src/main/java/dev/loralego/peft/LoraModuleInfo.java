package dev.loralego.peft;

import java.util.Objects;

/**
 * One LoRA-adapted module of a PEFT adapter: its full name, its factors' tensors and PEFT's scaling.
 * {@code A} is {@code [rank, dIn]} and {@code B} is {@code [dOut, rank]} (also with {@code fan_in_fan_out},
 * where the base weight is transposed but the factors are not), so {@code ΔW = scaling · B A}.
 *
 * @param module  full module name without the {@code base_model.model.} prefix, e.g. {@code transformer.h.0.attn.c_attn}
 * @param rank    {@code r} of this module
 * @param dIn     input features (columns of A)
 * @param dOut    output features (rows of B)
 * @param a       the {@code lora_A} tensor
 * @param b       the {@code lora_B} tensor
 * @param scaling PEFT's scaling for this module ({@code alpha / r} or {@code alpha / sqrt(r)})
 */
public record LoraModuleInfo(String module, int rank, int dIn, int dOut, TensorInfo a, TensorInfo b, double scaling) {

    /** Checks the names are present and the dimensions positive. */
    public LoraModuleInfo {
        Objects.requireNonNull(module, "module");
        Objects.requireNonNull(a, "lora_A of " + module);
        Objects.requireNonNull(b, "lora_B of " + module);
        if (rank < 1 || dIn < 1 || dOut < 1) {
            throw new IllegalArgumentException("module '" + module + "': rank, dIn, dOut must be >= 1, got "
                    + rank + ", " + dIn + ", " + dOut);
        }
    }
}
