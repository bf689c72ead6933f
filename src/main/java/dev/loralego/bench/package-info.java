/**
 * Benchmarks behind {@code docs/results/} (GitHub issue 6): does LoRA-LEGO (Zhao et al., arXiv 2409.16167) merge
 * trained adapters better than the usual methods, and which of its options matter?
 * <ul>
 *   <li>{@link dev.loralego.bench.SkillWorld}: a base layer, rank-1 skills, tasks made of shared skills;</li>
 *   <li>{@link dev.loralego.bench.LoraTrainer}: PEFT-style LoRA training (Kaiming-uniform A, B = 0, Adam, early
 *       stopping) in plain Java;</li>
 *   <li>{@link dev.loralego.bench.HeldOutLoss}: exact held-out loss of a low-rank update, normalised gain;</li>
 *   <li>{@link dev.loralego.bench.QualityBenchmark}: trains, writes PEFT adapters, merges with every method
 *       ({@link dev.loralego.bench.MergeCase}), scores ({@link dev.loralego.bench.QualityResults});</li>
 *   <li>{@link dev.loralego.bench.QualityReport} and {@link dev.loralego.bench.QualityPlots}: {@code quality.md}
 *       and its PNG figures; {@link dev.loralego.bench.PerfReport}: JMH results into {@code perf.md}.</li>
 * </ul>
 * The JMH benchmarks themselves are test sources in {@code dev.loralego.bench.jmh}. Everything is deterministic from
 * the seeds; nothing here needs Kafka.
 */
package dev.loralego.bench;
