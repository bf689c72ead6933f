/**
 * The clients of the merge service, the processes on either side of it (ARCHITECTURE.md, "Who uses it"):
 * <ul>
 *   <li>{@link dev.loralego.client.AdapterPublisher}: a team publishes a PEFT adapter (all its layer records
 *       and the publish event in one Kafka transaction) or withdraws one;</li>
 *   <li>{@link dev.loralego.client.MergedVersionReader}: reads version manifests and merged layers back from
 *       the compacted output topics;</li>
 *   <li>{@link dev.loralego.client.PeftExport}: writes one merged version as a PEFT adapter directory with a
 *       {@code manifest.json} ({@link dev.loralego.client.ManifestJson}) and verifies it digest by digest;</li>
 *   <li>{@link dev.loralego.client.VersionWatcher}: the serving-side subscriber that keeps a directory per group
 *       pointing at the latest merged version, swapped atomically;</li>
 *   <li>{@link dev.loralego.client.DeadLetterReader}: reads back the inputs the service rejected, from the
 *       dead-letter topic.</li>
 * </ul>
 * Every client connects through one {@link dev.loralego.client.ClientConnection} (bootstrap servers, the
 * {@code --config} file's client settings, topic names, schema resolver, record size limit). Consumers read
 * {@code read_committed}, without a consumer group: partitions are assigned and read from the beginning.
 */
package dev.loralego.client;
