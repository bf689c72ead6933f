/**
 * The offline merge: PEFT LoRA adapter directories in, one merged PEFT adapter directory out, with LoRA-LEGO
 * (Zhao et al., arXiv 2409.16167) or one of the baselines of {@code ALGORITHM.md} §7.
 * <ul>
 *   <li>{@link dev.loralego.merge.MergeSpec}: a {@link dev.loralego.lego.MergeMethod} with its options, and how it
 *       turns the user's weights into per-adapter weights (normalised over all adapters for {@code linear},
 *       {@code svd}, {@code dare}).</li>
 *   <li>{@link dev.loralego.merge.AdapterMerge}: reads the adapters ({@code dev.loralego.peft}), merges every module
 *       of the union of their targets from the adapters that target it, modules in parallel with results independent
 *       of the thread count, and writes the result with {@code r = lora_alpha} per module ({@code ALGORITHM.md} §5).
 *       Non-LoRA tensors (e.g. {@code modules_to_save} heads) are left out and reported.</li>
 * </ul>
 */
package dev.loralego.merge;
