/**
 * Operating the {@code run} service: the HTTP endpoint for probes, Prometheus metrics and interactive
 * queries of the latest merged version ({@link dev.loralego.ops.OpsServer}), the metrics themselves
 * ({@link dev.loralego.ops.ServiceMetrics}), the JSON view of a version manifest
 * ({@link dev.loralego.client.ManifestJson}, the same JSON as the manifest.json files), the forwarding of a query to the instance that owns the group
 * ({@link dev.loralego.ops.InstanceForwarding}) and the log modes of the CLI
 * ({@link dev.loralego.ops.ServiceLogging}).
 *
 * <p>Depends on {@code stream} (the running {@code KafkaStreams}, the store names, the listeners) and never
 * the other way round: the topology knows nothing of HTTP or metrics registries.
 */
package dev.loralego.ops;
