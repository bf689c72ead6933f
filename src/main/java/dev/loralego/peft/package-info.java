/**
 * PEFT adapter I/O: the safetensors format (memory-mapped reading, deterministic streaming writing), the
 * floating-point dtype conversions it needs (F32, F16, BF16, F64), {@code adapter_config.json} with PEFT's
 * per-module rank/alpha resolution, whole adapter directories (read and write) and a generator of synthetic
 * adapters with real base-model shapes.
 *
 * <p>References: the safetensors format (github.com/huggingface/safetensors, README "Format"), and HuggingFace
 * PEFT's LoRA tuner ({@code peft/tuners/lora/model.py}, {@code tuners_utils.get_pattern_key},
 * {@code check_target_module_exists}), whose behaviour {@link dev.loralego.peft.AdapterConfig} reproduces.
 *
 * <p>Plain Java: no Kafka, no Avro, nothing from the {@code lego} package.
 */
package dev.loralego.peft;
