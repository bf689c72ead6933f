package dev.loralego.stream;

import dev.loralego.kafka.TopicNames;

import java.util.Map;
import java.util.Objects;

/**
 * Every topic the service reads or writes: the boundary topics ({@link TopicNames}) plus the two internal
 * topics of the topology, named after the application id. The internal topics are co-partitioned with
 * {@code lora.adapter.layers} (same partition count).
 *
 * @param boundary        the topics other processes read and write
 * @param moduleTasks     group-sequencer → module-merger, key {@code group|module}
 * @param versionAssembly sequencer and merger → version-assembler, key {@code group}
 */
public record ServiceTopics(TopicNames boundary, String moduleTasks, String versionAssembly) {
    public ServiceTopics {
        Objects.requireNonNull(boundary, "boundary");
        Objects.requireNonNull(moduleTasks, "moduleTasks");
        Objects.requireNonNull(versionAssembly, "versionAssembly");
    }

    /** Default names for application id {@code appId}. */
    public static ServiceTopics defaults(String appId) {
        return of(TopicNames.defaults(), appId);
    }

    /** Names from {@code topic.*} config entries, internal topics after {@code appId}. */
    public static ServiceTopics from(Map<String, ?> config, String appId) {
        return of(TopicNames.from(config), appId);
    }

    static ServiceTopics of(TopicNames names, String appId) {
        return new ServiceTopics(names, appId + ".module-tasks", appId + ".version-assembly");
    }

    public String adapterLayers() {
        return boundary.adapterLayers();
    }

    public String adapterEvents() {
        return boundary.adapterEvents();
    }

    public String mergedLayers() {
        return boundary.mergedLayers();
    }

    public String mergedVersions() {
        return boundary.mergedVersions();
    }

    public String deadLetter() {
        return boundary.deadLetter();
    }
}
