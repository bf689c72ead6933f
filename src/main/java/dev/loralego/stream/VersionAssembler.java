package dev.loralego.stream;

import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.internal.AssemblyInput;
import dev.loralego.avro.internal.AssemblyState;
import dev.loralego.avro.internal.ModuleResult;
import dev.loralego.avro.internal.VersionPlan;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Per merge group (key = group): collects the {@link VersionPlan} of each sequence number and the
 * {@link ModuleResult}s of its affected modules, and once all are in emits the
 * {@link MergedVersionManifest} under key {@code group} (latest) and {@code group@sequence} (history).
 * Versions leave strictly in sequence order. The latest manifest of each group (wire format, as on the
 * topic) is also kept in a store for interactive queries.
 */
public final class VersionAssembler implements Processor<byte[], byte[], String, byte[]> {
    private static final Logger LOG = LoggerFactory.getLogger(VersionAssembler.class);

    private final String storeName;
    private final String latestStoreName;
    private final String versionsTopic;
    private final Serializer<MergedVersionManifest> manifests;
    private final String versionsSink;
    private final String serviceVersion;
    private final VersionListener listener;
    private final InternalCodec<AssemblyInput> inputCodec = new InternalCodec<>(AssemblyInput.class);
    private final InternalCodec<AssemblyState> stateCodec = new InternalCodec<>(AssemblyState.class);
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> store;
    private KeyValueStore<String, byte[]> latest;

    /** Told about every emitted version (logging and metrics; never influences content). */
    public interface VersionListener {
        void versionEmitted(MergedVersionManifest manifest);
    }

    VersionAssembler(String storeName, String latestStoreName, String versionsTopic, Serializer<MergedVersionManifest> manifests,
                     String versionsSink, String serviceVersion, VersionListener listener) {
        this.storeName = Objects.requireNonNull(storeName);
        this.latestStoreName = Objects.requireNonNull(latestStoreName);
        this.versionsTopic = Objects.requireNonNull(versionsTopic);
        this.manifests = Objects.requireNonNull(manifests);
        this.versionsSink = Objects.requireNonNull(versionsSink);
        this.serviceVersion = Objects.requireNonNull(serviceVersion);
        this.listener = listener == null ? m -> { } : listener;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.store = context.getStateStore(storeName);
        this.latest = context.getStateStore(latestStoreName);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        String group = new String(record.key(), StandardCharsets.UTF_8);
        AssemblyInput input = inputCodec.decode(record.value());
        AssemblyState state = load(group);
        Object payload = input.getPayload();
        if (payload instanceof VersionPlan plan) {
            if (plan.getSequence() >= state.getNextToEmit()) {
                List<VersionPlan> plans = new ArrayList<>(state.getPlans());
                plans.add(plan);
                plans.sort(Comparator.comparingLong(VersionPlan::getSequence));
                state.setPlans(plans);
            }
        } else if (payload instanceof ModuleResult result) {
            if (result.getSequence() >= state.getNextToEmit()) {
                List<ModuleResult> results = new ArrayList<>(state.getResults());
                results.add(result);
                state.setResults(results);
            }
        }
        emitReady(state);
        store.put(group, stateCodec.encode(state));
    }

    private void emitReady(AssemblyState state) {
        while (!state.getPlans().isEmpty() && state.getPlans().get(0).getSequence() == state.getNextToEmit()) {
            VersionPlan plan = state.getPlans().get(0);
            TreeMap<String, ModuleResult> done = new TreeMap<>();
            for (ModuleResult r : state.getResults()) {
                if (r.getSequence() == plan.getSequence()) done.put(r.getModule(), r);
            }
            if (!done.keySet().containsAll(plan.getAffectedModules())) return;
            TreeMap<String, ModuleRef> current = new TreeMap<>();
            TreeMap<String, Double> inertia = new TreeMap<>();
            for (int i = 0; i < state.getCurrent().size(); i++) {
                ModuleRef m = state.getCurrent().get(i);
                current.put(m.getModule(), m);
                inertia.put(m.getModule(), i < state.getInertia().size() ? state.getInertia().get(i) : 0.0);
            }
            List<String> warnings = new ArrayList<>();
            for (ModuleResult r : done.values()) {
                if (r.getRejected() != null) {
                    LOG.warn("group {} version {}: module {} merged without {}: {}", plan.getGroup(),
                            plan.getSequence(), r.getModule(), plan.getTrigger().getAdapterId(), r.getRejected());
                    warnings.add(r.getModule() + ": " + r.getRejected());
                }
                if (r.getRank() == 0) {
                    current.remove(r.getModule());
                    inertia.remove(r.getModule());
                } else {
                    current.put(r.getModule(), new ModuleRef(r.getModule(), r.getRank(), r.getDIn(), r.getDOut(), r.getDigest()));
                    inertia.put(r.getModule(), r.getInertia());
                }
            }
            List<ModuleRef> modules = new ArrayList<>(current.values());
            double inertiaSum = 0;
            for (double v : inertia.values()) inertiaSum += v;
            MergedVersionManifest manifest = MergedVersionManifest.newBuilder()
                    .setGroup(plan.getGroup())
                    .setSequence(plan.getSequence())
                    .setBaseModel(plan.getBaseModel())
                    .setTrigger(plan.getTrigger())
                    .setAdapters(plan.getAdapters())
                    .setModules(modules)
                    .setDigest(Digests.ofModules(modules.stream().map(ModuleRef::getModule).toList(),
                            modules.stream().map(ModuleRef::getDigest).toList()))
                    .setFanInFanOut(plan.getFanInFanOut())
                    .setTaskType(plan.getTaskType())
                    .setParameters(new TreeMap<>(plan.getParameters()))
                    .setEventTimestamp(plan.getEventTimestamp())
                    .setServiceVersion(serviceVersion)
                    .setWarnings(warnings)
                    .setMeanInertia(modules.isEmpty() ? 0.0 : inertiaSum / modules.size())
                    .setWithdrawnVersions(new TreeMap<>(plan.getWithdrawnVersions()))
                    .build();
            byte[] bytes = manifests.serialize(versionsTopic, manifest);
            long ts = plan.getEventTimestamp();
            context.forward(new Record<>(plan.getGroup() + "@" + plan.getSequence(), bytes, ts), versionsSink);
            context.forward(new Record<>(plan.getGroup(), bytes, ts), versionsSink);
            latest.put(plan.getGroup(), bytes);
            state.setCurrent(modules);
            state.setInertia(new ArrayList<>(inertia.values()));
            state.setPlans(new ArrayList<>(state.getPlans().subList(1, state.getPlans().size())));
            List<ModuleResult> rest = new ArrayList<>();
            for (ModuleResult r : state.getResults()) if (r.getSequence() != plan.getSequence()) rest.add(r);
            state.setResults(rest);
            state.setNextToEmit(plan.getSequence() + 1);
            listener.versionEmitted(manifest);
        }
    }

    private AssemblyState load(String group) {
        byte[] bytes = store.get(group);
        if (bytes != null) return stateCodec.decode(bytes);
        return AssemblyState.newBuilder().setGroup(group).setNextToEmit(1).setCurrent(new ArrayList<>())
                .setPlans(new ArrayList<>()).setResults(new ArrayList<>()).build();
    }
}
