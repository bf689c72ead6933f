package dev.loralego.stream;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.VersionTrigger;
import dev.loralego.avro.internal.AssemblyInput;
import dev.loralego.avro.internal.GroupState;
import dev.loralego.avro.internal.LiveAdapter;
import dev.loralego.avro.internal.ModuleOp;
import dev.loralego.avro.internal.ModuleTask;
import dev.loralego.avro.internal.VersionPlan;
import dev.loralego.peft.DType;
import dev.loralego.peft.MergedAdapterSpec;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Per merge group (key = group): validates each publish / withdraw event, gives it the group's next
 * sequence number, keeps the set of live adapters, and fans out one {@link ModuleTask} per affected module
 * (re-keyed to {@code group|module}) plus the {@link VersionPlan} the assembler completes.
 *
 * <p>Everything it emits depends only on the order of events, never on time or thread timing.
 */
public final class GroupSequencer implements Processor<byte[], byte[], String, byte[]> {
    /** Event ids remembered per group for idempotence. */
    static final int RECENT_EVENT_IDS = 256;

    private final String storeName;
    private final String eventsTopic;
    private final Deserializer<AdapterEvent> events;
    private final VersionParameters parametersOf;
    private final String taskSink;
    private final String assemblySink;
    private final DeadLetters deadLetters;
    private final InternalCodec<GroupState> stateCodec = new InternalCodec<>(GroupState.class);
    private final InternalCodec<ModuleTask> taskCodec = new InternalCodec<>(ModuleTask.class);
    private final InternalCodec<AssemblyInput> assemblyCodec = new InternalCodec<>(AssemblyInput.class);

    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> store;

    GroupSequencer(String storeName, String eventsTopic, Deserializer<AdapterEvent> events,
                   VersionParameters parametersOf, String taskSink, String assemblySink,
                   DeadLetters deadLetters) {
        this.storeName = Objects.requireNonNull(storeName);
        this.eventsTopic = Objects.requireNonNull(eventsTopic);
        this.events = Objects.requireNonNull(events);
        this.parametersOf = Objects.requireNonNull(parametersOf);
        this.taskSink = Objects.requireNonNull(taskSink);
        this.assemblySink = Objects.requireNonNull(assemblySink);
        this.deadLetters = Objects.requireNonNull(deadLetters);
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.store = context.getStateStore(storeName);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        String keyGroup = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
        AdapterEvent event;
        try {
            if (record.value() == null) throw new RejectedInput("event record has no value", "value");
            event = events.deserialize(eventsTopic, record.value());
        } catch (RejectedInput e) {
            deadLetters.reject(context, record, record.key(), e.getMessage(), e.field, keyGroup);
            return;
        } catch (dev.loralego.registry.SchemaRegistryException e) {
            // the registry is unreachable or refuses us: nothing is known about the record, which must not be
            // dead-lettered (it would be lost); the replaced stream thread retries it from the last commit
            throw e;
        } catch (RuntimeException e) {
            deadLetters.reject(context, record, record.key(), "undecodable adapter event: " + e.getMessage(), null, keyGroup);
            return;
        }
        String group = event.getGroup();
        try {
            if (group == null || group.isBlank() || group.startsWith(".") || group.chars().anyMatch(c -> c == '|' || c == '@'
                    || c == '/' || c == '\\' || Character.isWhitespace(c) || Character.isISOControl(c))) {
                throw new RejectedInput("group name '" + group + "' is not allowed (no '|', '@', '/', '\\', whitespace or control"
                        + " characters, not starting with '.')", "group");
            }
            if (keyGroup == null || !keyGroup.equals(group)) {
                throw new RejectedInput("record key '" + keyGroup + "' must equal the event's group '" + group + "'", "group");
            }
            GroupState state = load(group);
            if (state.getRecentEventIds().contains(event.getEventId())) {
                throw new RejectedInput("event " + event.getEventId() + " was already applied (duplicate delivery ignored)", "eventId");
            }
            MergeParameters params = parametersOf.forVersion(group, state.getNextSequence());
            if (event.getType() == AdapterEventType.PUBLISH) {
                publish(state, event, params, record.timestamp());
            } else {
                withdraw(state, event, params, record.timestamp());
            }
        } catch (RejectedInput e) {
            deadLetters.reject(context, record, record.key(), e.getMessage(), e.field, group);
        }
    }

    private void publish(GroupState state, AdapterEvent ev, MergeParameters params, long timestamp) {
        String id = ev.getAdapterId();
        if (id == null || id.isBlank() || id.contains("|")) throw new RejectedInput("adapterId must be non-blank and contain no '|'", "adapterId");
        if (ev.getAdapterVersion() < 0) throw new RejectedInput("adapterVersion must be >= 0, got " + ev.getAdapterVersion(), "adapterVersion");
        if (!(ev.getWeight() > 0) || !Double.isFinite(ev.getWeight())) {
            throw new RejectedInput("weight must be finite and > 0, got " + ev.getWeight(), "weight");
        }
        if (ev.getConfig() == null) throw new RejectedInput("publish event carries no LoRA config", "config");
        if (ev.getModules().isEmpty()) throw new RejectedInput("publish event lists no LoRA module", "modules");
        if (ev.getBaseModel() != null && state.getBaseModel() != null && !state.getBaseModel().equals(ev.getBaseModel())) {
            throw new RejectedInput("base model '" + ev.getBaseModel() + "' differs from the group's '" + state.getBaseModel() + "'", "baseModel");
        }
        boolean fifo = ev.getConfig().getFanInFanOut();
        if (state.getFanInFanOut() != null && !state.getLive().isEmpty() && state.getFanInFanOut() != fifo) {
            throw new RejectedInput("fan_in_fan_out=" + fifo + " differs from the group's", "config.fanInFanOut");
        }
        Map<String, ModuleRef> shapes = byModule(state.getModuleShapes());
        TreeMap<String, ModuleRef> newModules = new TreeMap<>();
        for (ModuleRef m : ev.getModules()) {
            String f = "modules[" + m.getModule() + "]";
            if (m.getModule() == null || m.getModule().isBlank() || m.getModule().contains("|")) {
                throw new RejectedInput("module name must be non-blank and contain no '|'", "modules");
            }
            if (newModules.put(m.getModule(), m) != null) throw new RejectedInput("module listed twice: " + m.getModule(), f);
            if (m.getRank() < 1 || m.getRank() > params.maxRank()) {
                throw new RejectedInput("rank " + m.getRank() + " of module " + m.getModule() + " is outside 1.." + params.maxRank(), f + ".rank");
            }
            if (m.getDIn() < 1 || m.getDOut() < 1) throw new RejectedInput("module " + m.getModule() + " has non-positive dimensions", f + ".dIn");
            ModuleRef known = shapes.get(m.getModule());
            if (known != null && (known.getDIn() != m.getDIn() || known.getDOut() != m.getDOut())) {
                throw new RejectedInput("module " + m.getModule() + " is " + m.getDIn() + "->" + m.getDOut()
                        + " but the group's base model has " + known.getDIn() + "->" + known.getDOut(), f + ".dIn");
            }
            if (m.getDigest() == null || m.getDigest().length() != 64) throw new RejectedInput("module " + m.getModule() + " has no SHA-256 digest", f + ".digest");
        }
        String digest = Digests.ofModules(new ArrayList<>(newModules.keySet()),
                newModules.values().stream().map(ModuleRef::getDigest).toList());
        LiveAdapter previous = live(state, id);
        Long withdrawn = state.getWithdrawnVersions().get(id);
        if (previous == null && withdrawn != null && ev.getAdapterVersion() <= withdrawn) {
            // Version numbers of an adapter only go up, also across a withdrawal: a module merger may hold the
            // re-published copy of a withdrawn version's layer when it processes the withdrawal, and the withdrawal
            // drops that layer (same key), so the re-publish would wait for its layer for ever, depending on how
            // the two input topics interleave (a replay would disagree).
            throw new RejectedInput("version " + ev.getAdapterVersion() + " of " + id + " is not above version " + withdrawn
                    + ", which was withdrawn; publish it as version " + (withdrawn + 1) + " or higher", "adapterVersion");
        }
        if (previous != null) {
            if (ev.getAdapterVersion() < previous.getAdapterVersion()) {
                throw new RejectedInput("version " + ev.getAdapterVersion() + " of " + id + " is older than the live version "
                        + previous.getAdapterVersion(), "adapterVersion");
            }
            if (ev.getAdapterVersion() == previous.getAdapterVersion()) {
                throw new RejectedInput(previous.getDigest().equals(digest)
                        ? "duplicate publish of " + id + " version " + ev.getAdapterVersion() + " (already live; no new version)"
                        : "version " + ev.getAdapterVersion() + " of " + id + " is already live with different content; publish a new version",
                        "adapterVersion");
            }
        }
        if (ev.getDtype() != null) {
            try {
                DType.parse(ev.getDtype());
            } catch (IllegalArgumentException e) {
                throw new RejectedInput("dtype '" + ev.getDtype() + "' is not one of F32, F16, BF16, F64", "dtype");
            }
        }
        // All checks passed: from here on the event becomes version `sequence`.
        MergeParameters before = lastModuleParameters(state);
        if (state.getBaseModel() == null) state.setBaseModel(ev.getBaseModel());
        state.setFanInFanOut(fifo);
        for (ModuleRef m : newModules.values()) {
            shapes.putIfAbsent(m.getModule(), new ModuleRef(m.getModule(), 0, m.getDIn(), m.getDOut(), ""));
        }
        state.setModuleShapes(new ArrayList<>(shapes.values()));
        LiveAdapter next = LiveAdapter.newBuilder().setAdapterId(id).setAdapterVersion(ev.getAdapterVersion())
                .setWeight(ev.getWeight()).setTeam(ev.getTeam()).setDigest(digest).setEventId(ev.getEventId())
                .setModules(new ArrayList<>(newModules.values())).setTaskType(ev.getConfig().getTaskType())
                .setDtype(ev.getDtype()).build();
        TreeSet<String> affected = new TreeSet<>(newModules.keySet());
        if (previous != null) previous.getModules().forEach(m -> affected.add(m.getModule()));
        replaceLive(state, id, next);
        state.getWithdrawnVersions().remove(id);
        updateTaskType(state);
        MergeParameters taskParams = resolveModuleParameters(state, params, before, affected);
        long sequence = nextSequence(state, ev);
        emitPlan(state, ev, ev.getAdapterVersion(), sequence, affected, params, timestamp);
        for (String module : affected) {
            ModuleRef m = newModules.get(module);
            // a RETRACT of the triggering adapter from a module it is not in changes nothing there: the module
            // is emitted again as it is (in the version's dtype)
            ModuleTask task = m != null
                    ? task(state.getGroup(), module, sequence, ModuleOp.UPSERT, ev, m.getDigest(), m.getRank(), m.getDIn(), m.getDOut(), taskParams)
                    : task(state.getGroup(), module, sequence, ModuleOp.RETRACT, ev, null, 0, 0, 0, taskParams);
            context.forward(new Record<>(state.getGroup() + "|" + module, taskCodec.encode(task), timestamp), taskSink);
        }
        store.put(state.getGroup(), stateCodec.encode(state));
    }

    private void withdraw(GroupState state, AdapterEvent ev, MergeParameters params, long timestamp) {
        String id = ev.getAdapterId();
        LiveAdapter previous = live(state, id);
        if (previous == null) throw new RejectedInput("withdraw of adapter '" + id + "', which is not live in group " + state.getGroup(), "adapterId");
        if (ev.getAdapterVersion() >= 0 && ev.getAdapterVersion() != previous.getAdapterVersion()) {
            throw new RejectedInput("withdraw of version " + ev.getAdapterVersion() + " of " + id + ", but version "
                    + previous.getAdapterVersion() + " is live", "adapterVersion");
        }
        MergeParameters before = lastModuleParameters(state);
        TreeSet<String> affected = new TreeSet<>();
        previous.getModules().forEach(m -> affected.add(m.getModule()));
        replaceLive(state, id, null);
        state.getWithdrawnVersions().put(id, previous.getAdapterVersion());
        updateTaskType(state);
        MergeParameters taskParams = resolveModuleParameters(state, params, before, affected);
        long sequence = nextSequence(state, ev);
        // the trigger names the version withdrawn, also when the event said "the live one" (-1)
        emitPlan(state, ev, previous.getAdapterVersion(), sequence, affected, params, timestamp);
        for (String module : affected) {
            ModuleTask task = task(state.getGroup(), module, sequence, ModuleOp.RETRACT, ev, null, 0, 0, 0, taskParams);
            context.forward(new Record<>(state.getGroup() + "|" + module, taskCodec.encode(task), timestamp), taskSink);
        }
        store.put(state.getGroup(), stateCodec.encode(state));
    }

    private static long nextSequence(GroupState state, AdapterEvent ev) {
        long sequence = state.getNextSequence();
        state.setNextSequence(sequence + 1);
        List<String> recent = new ArrayList<>(state.getRecentEventIds());
        recent.add(ev.getEventId());
        if (recent.size() > RECENT_EVENT_IDS) recent = new ArrayList<>(recent.subList(recent.size() - RECENT_EVENT_IDS, recent.size()));
        state.setRecentEventIds(recent);
        return sequence;
    }

    private void emitPlan(GroupState state, AdapterEvent ev, long adapterVersion, long sequence, TreeSet<String> affected,
                          MergeParameters params, long timestamp) {
        List<AdapterRef> adapters = new ArrayList<>();
        for (LiveAdapter a : state.getLive()) {
            adapters.add(new AdapterRef(a.getAdapterId(), a.getAdapterVersion(), a.getWeight(), a.getTeam(), a.getDigest()));
        }
        VersionPlan plan = VersionPlan.newBuilder()
                .setGroup(state.getGroup()).setSequence(sequence)
                .setTrigger(new VersionTrigger(ev.getEventId(), ev.getType(), ev.getAdapterId(), adapterVersion))
                .setBaseModel(state.getBaseModel())
                .setFanInFanOut(Boolean.TRUE.equals(state.getFanInFanOut()))
                .setTaskType(state.getTaskType())
                .setAdapters(adapters)
                .setAffectedModules(new ArrayList<>(affected))
                .setParameters(new TreeMap<>(params.toMap()))
                .setEventTimestamp(timestamp)
                .setWithdrawnVersions(new TreeMap<>(state.getWithdrawnVersions()))
                .build();
        context.forward(new Record<>(state.getGroup(), assemblyCodec.encode(new AssemblyInput(plan)), timestamp), assemblySink);
    }

    private static ModuleTask task(String group, String module, long sequence, ModuleOp op, AdapterEvent ev, String digest,
                                   int rank, int dIn, int dOut, MergeParameters params) {
        return ModuleTask.newBuilder().setGroup(group).setModule(module).setSequence(sequence).setOp(op)
                .setAdapterId(ev.getAdapterId()).setAdapterVersion(ev.getAdapterVersion()).setWeight(ev.getWeight())
                .setLayerDigest(digest).setRank(rank).setDIn(dIn).setDOut(dOut)
                .setParameters(new TreeMap<>(params.toMap())).build();
    }

    private GroupState load(String group) {
        byte[] bytes = store.get(group);
        if (bytes != null) {
            GroupState state = stateCodec.decode(bytes);
            state.setWithdrawnVersions(new TreeMap<>(state.getWithdrawnVersions())); // sorted and mutable, whatever decoded it
            return state;
        }
        return GroupState.newBuilder().setGroup(group).setNextSequence(1).setModuleShapes(new ArrayList<>())
                .setLive(new ArrayList<>()).setRecentEventIds(new ArrayList<>()).setWithdrawnVersions(new TreeMap<>()).build();
    }

    /**
     * The merged tensors' dtype for the group's current live set: the configured one, or with {@value
     * MergeParameters#AUTO_DTYPE} the live adapters' most common dtype ({@link MergedAdapterSpec#dtypeOf}, as the
     * offline merge), F32 where that is F64 (the service's tensors are F32 at most) or unknown.
     */
    static String outputDType(GroupState state, MergeParameters params) {
        if (!params.outputDTypeFollowsInputs()) return params.outputDType();
        List<DType> dtypes = new ArrayList<>();
        // a live adapter's dtype was checked at its publish; builds before 0.3.0 did not state it (null)
        for (LiveAdapter a : state.getLive()) dtypes.add(a.getDtype() == null ? null : DType.parse(a.getDtype()));
        DType d = MergedAdapterSpec.dtypeOf(dtypes);
        return d == null || d == DType.F64 ? DType.F32.name() : d.name();
    }

    /**
     * The parameters the modules of the group's last version were merged with (output dtype resolved), or null where
     * the state does not record them: a new group, or a state written by a build before 0.4.0.
     */
    private static MergeParameters lastModuleParameters(GroupState state) {
        return state.getModuleParameters() == null ? null : MergeParameters.fromMap(state.getModuleParameters());
    }

    /**
     * The parameters for this version's module tasks, with the output dtype resolved for the new live set. When they
     * {@linkplain MergeParameters#changeModuleResults change a module's result} against those of the group's last
     * version ({@code before}): because the live set changed the dtype, or because the operator changed the
     * configuration at a restart, every module of a live adapter is emitted again (added to {@code affected}).
     * So every module of a version is merged with the parameters its manifest records, as the offline merge of the
     * same set with them. Where the last version's parameters are not recorded ({@code before} null) every module
     * is emitted again too: a module whose parameters did not change is emitted as it was.
     */
    private static MergeParameters resolveModuleParameters(GroupState state, MergeParameters params, MergeParameters before,
                                                           TreeSet<String> affected) {
        MergeParameters resolved = params.withOutputDType(outputDType(state, params));
        if (before == null || resolved.changeModuleResults(before)) {
            for (LiveAdapter a : state.getLive()) a.getModules().forEach(m -> affected.add(m.getModule()));
        }
        state.setModuleParameters(new TreeMap<>(resolved.toMap()));
        return resolved;
    }

    /**
     * The group's task_type after a change of its live set: {@link MergedAdapterSpec#taskTypeOf} of the live adapters',
     * as the offline merge of the same set. When no live adapter states one (every one withdrawn, or all of them
     * published by a build that did not record it per adapter), the group keeps the one it had.
     */
    private static void updateTaskType(GroupState state) {
        List<String> types = new ArrayList<>();
        for (LiveAdapter a : state.getLive()) types.add(a.getTaskType());
        String taskType = MergedAdapterSpec.taskTypeOf(types);
        if (taskType != null) state.setTaskType(taskType);
    }

    private static LiveAdapter live(GroupState state, String adapterId) {
        for (LiveAdapter a : state.getLive()) if (a.getAdapterId().equals(adapterId)) return a;
        return null;
    }

    private static void replaceLive(GroupState state, String adapterId, LiveAdapter replacement) {
        TreeMap<String, LiveAdapter> byId = new TreeMap<>();
        for (LiveAdapter a : state.getLive()) byId.put(a.getAdapterId(), a);
        if (replacement == null) byId.remove(adapterId);
        else byId.put(adapterId, replacement);
        state.setLive(new ArrayList<>(byId.values()));
    }

    private static Map<String, ModuleRef> byModule(List<ModuleRef> refs) {
        TreeMap<String, ModuleRef> m = new TreeMap<>();
        for (ModuleRef r : refs) m.put(r.getModule(), r);
        return m;
    }

    /** An input the sequencer refuses; its message becomes the dead letter's reason. */
    static final class RejectedInput extends RuntimeException {
        final String field;

        RejectedInput(String message, String field) {
            super(message, null, false, false);
            this.field = field;
        }
    }
}
