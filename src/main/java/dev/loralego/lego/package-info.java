/**
 * LoRA-LEGO, the merge algorithm, as pure math (no Kafka, no I/O, no PEFT files): the batch merge of one module
 * and its streaming form, plus the baseline merges it is compared against.
 *
 * <p>Source: Zhao et al., "Merging LoRAs like Playing LEGO: Pushing the Modularity of LoRA to Extremes Through
 * Rank-Wise Clustering", arXiv 2409.16167 (ICLR 2025); the project's spec is {@code ALGORITHM.md}.
 * <ul>
 *   <li>§1–§2 units: {@link dev.loralego.lego.AdapterModule} (PEFT factors of one adapter and module),
 *       {@link dev.loralego.lego.MinimalSemanticUnits} (scaling folded in, canonical form),
 *       {@link dev.loralego.lego.UnitPool} (the units of all adapters of one module),
 *       {@link dev.loralego.lego.LowRankFactorisation} (QR + small SVD, dense truncated SVD).</li>
 *   <li>§3 {@link dev.loralego.lego.RankWiseClustering} → {@link dev.loralego.lego.ClusteringResult}.</li>
 *   <li>§4 {@link dev.loralego.lego.DualReweighting} → {@link dev.loralego.lego.MergedModule}.</li>
 *   <li>The batch merge: {@link dev.loralego.lego.LegoMerger}; options {@link dev.loralego.lego.LegoOptions}.</li>
 *   <li>§6 streaming: {@link dev.loralego.lego.StreamingModuleClusters}, {@link dev.loralego.lego.StreamingOptions}.</li>
 *   <li>§7 baselines: {@link dev.loralego.lego.MergeMethod}, {@link dev.loralego.lego.BaselineOptions},
 *       {@link dev.loralego.lego.ConcatenationMerge} (cat, linear, task arithmetic), {@link dev.loralego.lego.SvdMerge},
 *       {@link dev.loralego.lego.TiesMerge}, {@link dev.loralego.lego.DareMerge}.</li>
 * </ul>
 * All arrays are flat row-major {@code double[]}. Everything is deterministic: the same inputs and seed give
 * bit-identical outputs, whatever the number of threads (every computation of one module is sequential; modules
 * are the unit of parallelism).
 */
package dev.loralego.lego;
