package dev.loralego.stream;

import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.internal.AssemblyInput;
import dev.loralego.avro.internal.ModuleOp;
import dev.loralego.avro.internal.ModuleResult;
import dev.loralego.avro.internal.ModuleTask;
import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.MergedModule;
import dev.loralego.lego.StreamingModuleClusters;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Per {@code group|module}: joins each {@link ModuleTask} with its layer record, updates the module's MSU
 * clusters incrementally (ALGORITHM.md §6, {@link StreamingModuleClusters}), and emits the merged module to
 * {@code lora.merged.layers} and its {@link ModuleResult} to the assembler.
 *
 * <p>The two inputs are consumed independently, so a task may arrive before its layer: tasks wait, in
 * sequence order, in the module's pending queue until the layer is buffered. Layers are validated on
 * arrival (shape, byte count, digest, finite values); a bad one is dead-lettered and never buffered.
 */
public final class ModuleMerger implements Processor<byte[], byte[], String, byte[]> {
    private static final Logger LOG = LoggerFactory.getLogger(ModuleMerger.class);
    /** How often the wall-clock punctuator looks for module steps waiting for their layer. */
    private static final Duration WAIT_CHECK_INTERVAL = Duration.ofSeconds(10);
    /** How often a module step still waiting for its layer is warned about again. */
    private static final Duration WAIT_WARNING_REPEAT = Duration.ofMinutes(10);
    private static final String STATE_PREFIX = "S|";
    private static final String PENDING_PREFIX = "P|";
    private static final String UNITS_PREFIX = "U|";
    /**
     * One empty entry per buffered layer, {@code B|<buffer key>}: what {@link #purgeBuffered} scans to find an
     * adapter's buffered layers by key alone. Scanning the buffer itself would read every value, and the values
     * are the layers (hundreds of KB each, in RocksDB blob files).
     */
    private static final String BUFFERED_PREFIX = "B|";
    /** Present once every buffer key of the task's stores has its {@code B|} entry (see {@link #indexBufferOnce}). */
    private static final String BUFFER_INDEXED_MARKER = "B!indexed";
    private static final byte[] EMPTY = new byte[0];
    /** Buffered in place of a rejected layer, so the task that expects it does not wait forever. */
    private static final byte[] REJECTED_MARKER = "REJECTED\n".getBytes(StandardCharsets.UTF_8);

    private final String bufferStoreName;
    private final String stateStoreName;
    private final String layersTopic;
    private final Deserializer<AdapterLayer> layers;
    private final String mergedLayersTopic;
    private final Serializer<MergedLayer> mergedLayers;
    private final String mergedLayersSink;
    private final String assemblySink;
    private final DeadLetters deadLetters;
    private final InternalCodec<ModuleTask> taskCodec = new InternalCodec<>(ModuleTask.class);
    private final InternalCodec<AssemblyInput> assemblyCodec = new InternalCodec<>(AssemblyInput.class);

    private final ModuleClusterCache cache = ModuleClusterCache.SHARED;
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> buffer;
    private KeyValueStore<String, byte[]> states;
    /** Per module whose next step waits for its layer: which layer, since when (wall clock), last warning. */
    private final Map<String, LayerWait> waits = new HashMap<>();

    private record LayerWait(ModuleTask task, long sinceMillis, long warnedMillis) {
    }

    ModuleMerger(String bufferStoreName, String stateStoreName, String layersTopic, Deserializer<AdapterLayer> layers,
                 String mergedLayersTopic, Serializer<MergedLayer> mergedLayers, String mergedLayersSink,
                 String assemblySink, DeadLetters deadLetters) {
        this.bufferStoreName = Objects.requireNonNull(bufferStoreName);
        this.stateStoreName = Objects.requireNonNull(stateStoreName);
        this.layersTopic = Objects.requireNonNull(layersTopic);
        this.layers = Objects.requireNonNull(layers);
        this.mergedLayersTopic = Objects.requireNonNull(mergedLayersTopic);
        this.mergedLayers = Objects.requireNonNull(mergedLayers);
        this.mergedLayersSink = Objects.requireNonNull(mergedLayersSink);
        this.assemblySink = Objects.requireNonNull(assemblySink);
        this.deadLetters = Objects.requireNonNull(deadLetters);
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.buffer = context.getStateStore(bufferStoreName);
        this.states = context.getStateStore(stateStoreName);
        // modules restored with a step still waiting for its layer are watched from now on
        try (KeyValueIterator<String, byte[]> it = states.prefixScan(PENDING_PREFIX, new StringSerializer())) {
            while (it.hasNext()) {
                String key = it.next().key.substring(PENDING_PREFIX.length());
                Deque<ModuleTask> pending = loadPending(key);
                if (!pending.isEmpty()) noteWait(key, pending.peekFirst());
            }
        }
        context.schedule(WAIT_CHECK_INTERVAL, PunctuationType.WALL_CLOCK_TIME, this::checkWaits);
    }

    @Override
    public void close() {
        LayerWaits.report(this, 0);
    }

    private void noteWait(String key, ModuleTask task) {
        LayerWait w = waits.get(key);
        if (w == null || !w.task().equals(task)) waits.put(key, new LayerWait(task, context.currentSystemTimeMs(), 0));
    }

    /**
     * Reports the module steps that have waited for their layer longer than {@link LayerWaits#OVERDUE}: a metric, and a
     * warning when one first becomes overdue and every {@link #WAIT_WARNING_REPEAT} after. Nothing is decided on time.
     */
    private void checkWaits(long now) {
        int overdue = 0;
        for (Map.Entry<String, LayerWait> e : waits.entrySet()) {
            LayerWait w = e.getValue();
            long waited = now - w.sinceMillis();
            if (waited < LayerWaits.OVERDUE.toMillis()) continue;
            overdue++;
            if (w.warnedMillis() == 0 || now - w.warnedMillis() >= WAIT_WARNING_REPEAT.toMillis()) {
                ModuleTask t = w.task();
                LOG.warn("{}: version {} has waited {} s for the layer of {} version {} (digest {}); the group's later versions"
                                + " wait behind it. Its publish event was committed without that layer record, or with one keyed to"
                                + " another module or undecodable (see dead-letters). publish writes both in one transaction; another"
                                + " producer must write the layer record (key {}) for the group to go on",
                        e.getKey(), t.getSequence(), waited / 1000, t.getAdapterId(), t.getAdapterVersion(), t.getLayerDigest(), e.getKey());
                e.setValue(new LayerWait(t, w.sinceMillis(), now));
            }
        }
        LayerWaits.report(this, overdue);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        String topic = context.recordMetadata().map(m -> m.topic()).orElse("");
        if (topic.equals(layersTopic)) {
            onLayer(record);
        } else {
            onTask(record);
        }
    }

    private void onLayer(Record<byte[], byte[]> record) {
        String key = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
        AdapterLayer layer;
        try {
            if (record.value() == null) throw new GroupSequencer.RejectedInput("layer record has no value", "value");
            layer = layers.deserialize(layersTopic, record.value());
        } catch (GroupSequencer.RejectedInput e) {
            deadLetters.reject(context, record, record.key(), e.getMessage(), e.field, groupOf(key));
            return;
        } catch (dev.loralego.registry.SchemaRegistryException e) {
            // the registry is unreachable or refuses us: nothing is known about the record, which must not be
            // dead-lettered (it would be lost); the replaced stream thread retries it from the last commit
            throw e;
        } catch (RuntimeException e) {
            deadLetters.reject(context, record, record.key(), "undecodable adapter layer: " + e.getMessage(), null, groupOf(key));
            return;
        }
        String bufferKey = bufferKey(key, layer.getAdapterId(), layer.getAdapterVersion(), layer.getDigest());
        try {
            LayerValidation.check(layer, key);
        } catch (GroupSequencer.RejectedInput e) {
            deadLetters.reject(context, record, record.key(), e.getMessage(), e.field, groupOf(key));
            if (key != null && key.equals(layer.getGroup() + "|" + layer.getModule()) && !layer.getAdapterId().contains("|")
                    && buffer.get(bufferKey) == null) {
                // The publish event that names this layer must still become a version: mark the layer rejected. Never
                // over a layer already received under the same identity (first record wins, see below).
                byte[] reason = e.getMessage().getBytes(StandardCharsets.UTF_8);
                byte[] marker = new byte[REJECTED_MARKER.length + reason.length];
                System.arraycopy(REJECTED_MARKER, 0, marker, 0, REJECTED_MARKER.length);
                System.arraycopy(reason, 0, marker, REJECTED_MARKER.length, reason.length);
                buffered(bufferKey, marker);
                drain(key, record.timestamp());
            }
            return;
        } catch (RuntimeException e) {
            deadLetters.reject(context, record, record.key(), "undecodable adapter layer: " + e.getMessage(), null, groupOf(key));
            return;
        }
        // The first record under a layer's identity (module, adapter, version, digest) counts; a later one never replaces
        // it. It may be the layer a live adapter's units are re-derived from (a replaced layer would fail the units
        // digest check, a rejection marker would leave no layer at all), and which record a task saw must not depend on
        // how the two input topics interleave (a replay reads all layers first). A key purged since is never used again:
        // an adapter's versions only go up. An exact duplicate (a re-send) is ignored; anything else is dead-lettered.
        byte[] existing = buffer.get(bufferKey);
        if (existing != null) {
            if (!isRejectedMarker(existing) && (Arrays.equals(existing, record.value())
                    || layers.deserialize(layersTopic, existing).equals(layer))) {
                return;
            }
            deadLetters.reject(context, record, record.key(), "another layer of " + layer.getAdapterId() + " version "
                    + layer.getAdapterVersion() + " with digest " + layer.getDigest() + " was already received"
                    + (isRejectedMarker(existing) ? " (and rejected)" : "") + "; the first one counts", "digest", groupOf(key));
            return;
        }
        buffered(bufferKey, record.value());
        drain(key, record.timestamp());
    }

    private void onTask(Record<byte[], byte[]> record) {
        String key = new String(record.key(), StandardCharsets.UTF_8);
        Deque<ModuleTask> pending = loadPending(key);
        pending.addLast(taskCodec.decode(record.value()));
        savePending(key, pending);
        drain(key, record.timestamp());
    }

    /** Applies waiting tasks in order for as long as their layers are present. */
    private void drain(String key, long timestamp) {
        Deque<ModuleTask> pending = loadPending(key);
        if (pending.isEmpty()) {
            waits.remove(key);
            return;
        }
        StreamingModuleClusters clusters = null;
        Set<String> liveBefore = Set.of();
        Set<String> touched = new TreeSet<>();
        boolean changed = false;
        while (!pending.isEmpty()) {
            ModuleTask task = pending.peekFirst();
            MergeParameters params = MergeParameters.fromMap(task.getParameters());
            AdapterLayer layer = null;
            String rejected = null;
            if (task.getOp() == ModuleOp.UPSERT) {
                byte[] raw = buffer.get(bufferKey(key, task.getAdapterId(), task.getAdapterVersion(), task.getLayerDigest()));
                if (raw == null) {
                    noteWait(key, task);
                    break;
                }
                if (isRejectedMarker(raw)) {
                    rejected = "layer rejected: " + new String(raw, REJECTED_MARKER.length, raw.length - REJECTED_MARKER.length,
                            StandardCharsets.UTF_8);
                } else {
                    layer = layers.deserialize(layersTopic, raw);
                }
            }
            if (clusters == null) {
                Loaded loaded = loadClusters(key, task.getModule(), params);
                clusters = loaded.clusters();
                liveBefore = loaded.liveBefore();
                if (loaded.rebuilt()) touched.addAll(clusters.liveAdapters());
            } else {
                // tasks applied together (they waited for a late layer) may belong to versions merged with different
                // parameters (a restart changed them in between): each is applied with its own, as if drained alone
                StreamingModuleClusters reconciled = StreamingState.reconcile(clusters, task.getModule(), params);
                if (reconciled != clusters) {
                    reconciled.setFactorSource(clusters.factorSource());
                    touched.addAll(reconciled.liveAdapters());
                    clusters = reconciled;
                }
            }
            touched.add(task.getAdapterId());
            long updatesBefore = clusters.updates();
            if (task.getOp() == ModuleOp.UPSERT) {
                if (rejected == null) rejected = mismatch(task, layer);
                StreamingModuleClusters.Prepared factors = null;
                double verdictShrink = 1.0;
                if (rejected == null) {
                    AdapterModule incoming = TensorCodec.toAdapterModule(layer, task.getWeight());
                    NormGuard.Verdict v = NormGuard.check(clusters, incoming, clusters.prepare(incoming), params);
                    factors = v.factors();
                    rejected = v.note();
                    verdictShrink = v.shrink();
                }
                if (factors != null) {
                    clusters.upsert(task.getAdapterId(), factors);
                    // the buffered layer stays while the adapter is live: its units are re-derived from it on need
                    states.put(unitsKey(key, task.getAdapterId()), UnitsRef.encode(bufferKey(key, task.getAdapterId(),
                            task.getAdapterVersion(), task.getLayerDigest()), task.getWeight(), verdictShrink));
                    purgeBuffered(key, task.getAdapterId(), task.getAdapterVersion(), task.getLayerDigest());
                } else {
                    // The event and its layer disagree: the adapter does not take part in this module.
                    clusters.retract(task.getAdapterId());
                    purgeBuffered(key, task.getAdapterId(), task.getAdapterVersion(), null);
                }
            } else {
                clusters.retract(task.getAdapterId());
            }
            // a step that changed nothing (a module emitted again in another dtype or with the same parameters, an
            // adapter left out of it) does not refine: its module is emitted as it was
            if (clusters.updates() != updatesBefore && refineDue(task.getModule(), clusters.updates(), params.refineEvery())) {
                if (params.reclusters()) {
                    clusters.recluster();
                } else {
                    // a trivial state (n ≤ k) has nothing to refine and is not counted
                    boolean counted = clusters.clustered();
                    long certifiedBefore = clusters.certifiedRefinements();
                    clusters.refine();
                    if (counted) RefinementStatistics.record(clusters.certifiedRefinements() > certifiedBefore);
                }
            }
            emit(task, params, clusters, rejected, timestamp);
            pending.removeFirst();
            FaultInjection.moduleStepDone();
            changed = true;
        }
        if (pending.isEmpty()) waits.remove(key);
        if (changed) {
            // The state bytes hold no unit data; each live adapter's units entry is a reference to its buffered
            // layer (written at its upsert). An adapter no longer live loses both.
            Set<String> liveNow = new TreeSet<>(clusters.liveAdapters());
            Set<String> gone = new TreeSet<>(liveBefore);
            gone.addAll(touched);
            gone.removeAll(liveNow);
            for (String id : gone) dropUnits(key, id);
            byte[] stateBytes = clusters.toStateBytes();
            states.put(STATE_PREFIX + key, stateBytes);
            clusters.releaseUnits();
            cache.put(key, clusters, stateBytes);
            savePending(key, pending);
        }
    }

    /**
     * Whether a module refines after its {@code updates}-th update: every {@code refineEvery} updates, at a phase
     * that depends on the module's name ({@link String#hashCode()}, stable across JVMs), so that the modules of a
     * group — which all see every version — spread their refinements over {@code refineEvery} versions instead of
     * all refining on the same one. {@code refineEvery} 1 refines at every update, 0 never.
     */
    static boolean refineDue(String module, long updates, int refineEvery) {
        if (refineEvery <= 0) return false;
        return Math.floorMod(updates + Math.floorMod(module.hashCode(), refineEvery), (long) refineEvery) == 0;
    }

    private static String mismatch(ModuleTask task, AdapterLayer layer) {
        if (layer.getRank() != task.getRank() || layer.getDIn() != task.getDIn() || layer.getDOut() != task.getDOut()) {
            return "layer of " + task.getAdapterId() + " v" + task.getAdapterVersion() + " is rank " + layer.getRank() + " "
                    + layer.getDIn() + "->" + layer.getDOut() + " but its publish event says rank " + task.getRank() + " "
                    + task.getDIn() + "->" + task.getDOut();
        }
        return null;
    }

    private void emit(ModuleTask task, MergeParameters params, StreamingModuleClusters clusters, String rejected, long timestamp) {
        TensorDType dtype = TensorDType.valueOf(params.outputDType());
        Optional<MergedModule> merged = clusters.merged();
        MergedLayer.Builder out = MergedLayer.newBuilder().setGroup(task.getGroup()).setModule(task.getModule())
                .setSequence(task.getSequence()).setDtype(dtype).setLiveAdapters(clusters.liveAdapters().size());
        if (merged.isPresent()) {
            MergedModule m = merged.get();
            byte[] a = TensorCodec.encode(m.a(), dtype);
            byte[] b = TensorCodec.encode(m.b(), dtype);
            out.setRank(m.rank()).setDIn(m.dIn()).setDOut(m.dOut()).setA(ByteBuffer.wrap(a)).setB(ByteBuffer.wrap(b))
                    .setDigest(Digests.layer(a, b)).setInertia(Double.isNaN(m.inertia()) ? 0.0 : m.inertia());
        } else {
            byte[] none = new byte[0];
            out.setRank(0).setDIn(task.getDIn()).setDOut(task.getDOut()).setA(ByteBuffer.wrap(none))
                    .setB(ByteBuffer.wrap(none)).setDigest(Digests.layer(none, none)).setInertia(0.0);
        }
        MergedLayer layer = out.build();
        String key = task.getGroup() + "|" + task.getModule();
        context.forward(new Record<>(key, mergedLayers.serialize(mergedLayersTopic, layer), timestamp), mergedLayersSink);
        ModuleResult result = ModuleResult.newBuilder().setGroup(task.getGroup()).setModule(task.getModule())
                .setSequence(task.getSequence()).setRank(layer.getRank()).setDIn(layer.getDIn()).setDOut(layer.getDOut())
                .setDigest(layer.getDigest()).setInertia(layer.getInertia()).setRejected(rejected).build();
        context.forward(new Record<>(task.getGroup(), assemblyCodec.encode(new AssemblyInput(result)), timestamp), assemblySink);
    }

    /** The module's clusters as loaded, the adapters live before this step, and whether they were re-clustered. */
    private record Loaded(StreamingModuleClusters clusters, Set<String> liveBefore, boolean rebuilt) {
    }

    private Loaded loadClusters(String key, String module, MergeParameters params) {
        byte[] stateBytes = states.get(STATE_PREFIX + key);
        Function<String, AdapterModule> source = factorSource(key);
        StreamingModuleClusters stored = null;
        if (stateBytes != null) {
            // taken out of the cache while this step mutates it, and put back (with the new state bytes) only once the
            // step is complete: a step that fails half-way leaves no mutated object cached under the committed bytes,
            // which the retry (same JVM, stores rolled back to the last commit) would otherwise apply its task to again
            stored = cache.take(key, stateBytes);
            if (stored == null) {
                stored = StreamingModuleClusters.restore(stateBytes, source);
            } else {
                stored.setFactorSource(source);
            }
        }
        Set<String> before = stored == null ? Set.of() : new TreeSet<>(stored.liveAdapters());
        StreamingModuleClusters clusters = StreamingState.reconcile(stored, module, params);
        clusters.setFactorSource(source);
        return new Loaded(clusters, before, stored != null && clusters != stored);
    }

    /**
     * The factors each live adapter of the module was upserted with, from its units entry (a reference to the
     * buffered layer, the merge weight and any clip factor): what the clusters re-derive released units from.
     */
    private Function<String, AdapterModule> factorSource(String key) {
        return id -> {
            byte[] ref = states.get(unitsKey(key, id));
            if (ref == null) return null;
            UnitsRef r = UnitsRef.decode(ref);
            byte[] raw = buffer.get(r.bufferKey());
            if (raw == null || isRejectedMarker(raw)) return null;
            return NormGuard.shrink(TensorCodec.toAdapterModule(layers.deserialize(layersTopic, raw), r.weight()), r.shrink());
        };
    }

    /** Deletes an adapter's units entry and the buffered layer it refers to. */
    private void dropUnits(String key, String adapterId) {
        byte[] ref = states.get(unitsKey(key, adapterId));
        if (ref == null) return;
        unbuffered(UnitsRef.decode(ref).bufferKey());
        states.delete(unitsKey(key, adapterId));
    }

    private static String unitsKey(String moduleKey, String adapterId) {
        return UNITS_PREFIX + moduleKey + "|" + adapterId;
    }

    /**
     * Drops the buffered layers of {@code adapterId} older than {@code version}, and those of {@code version} itself
     * except the one with digest {@code keep} (the layer just applied, kept while the adapter is live; null keeps
     * none): older versions and half-published leftovers go, layers of newer versions stay for their tasks.
     */
    private void purgeBuffered(String key, String adapterId, long version, String keep) {
        indexBufferOnce();
        String prefix = key + "|" + adapterId + "|";
        List<String> stale = new ArrayList<>();
        try (KeyValueIterator<String, byte[]> it = states.prefixScan(BUFFERED_PREFIX + prefix, new StringSerializer())) {
            while (it.hasNext()) {
                String k = it.next().key.substring(BUFFERED_PREFIX.length());
                String rest = k.substring(prefix.length());
                int bar = rest.indexOf('|');
                long v = Long.parseLong(bar < 0 ? rest : rest.substring(0, bar));
                String digest = bar < 0 ? "" : rest.substring(bar + 1);
                if (v < version || (v == version && !digest.equals(keep))) stale.add(k);
            }
        }
        stale.forEach(this::unbuffered);
    }

    /** Buffers a layer (or a rejection marker) under {@code bufferKey}, with its index entry. */
    private void buffered(String bufferKey, byte[] value) {
        buffer.put(bufferKey, value);
        states.put(BUFFERED_PREFIX + bufferKey, EMPTY);
    }

    /**
     * Deletes a buffered layer and its index entry. A null put, not {@code delete}: {@code delete} returns the old
     * value, so it would read the layer back from its blob file first.
     */
    private void unbuffered(String bufferKey) {
        buffer.put(bufferKey, null);
        states.delete(BUFFERED_PREFIX + bufferKey);
    }

    /**
     * Stores written by builds before the index have buffered layers without index entries: the first purge
     * indexes them (one scan of the buffer, values included), then marks the store as indexed. On a fresh store the
     * scan finds only the few layers buffered before the first upsert, already indexed. The marker is read at every
     * purge (a small key) rather than remembered by the processor, so that the stores alone say whether the index
     * is complete.
     */
    private void indexBufferOnce() {
        if (states.get(BUFFER_INDEXED_MARKER) != null) return;
        try (KeyValueIterator<String, byte[]> it = buffer.all()) {
            while (it.hasNext()) states.put(BUFFERED_PREFIX + it.next().key, EMPTY);
        }
        states.put(BUFFER_INDEXED_MARKER, EMPTY);
    }

    /** A live adapter's units entry: where its layer is buffered, its merge weight, and its clip factor. */
    record UnitsRef(String bufferKey, double weight, double shrink) {
        private static final byte MAGIC = 'R';

        static byte[] encode(String bufferKey, double weight, double shrink) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(32 + bufferKey.length());
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeByte(MAGIC);
                out.writeUTF(bufferKey);
                out.writeDouble(weight);
                out.writeDouble(shrink);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return bytes.toByteArray();
        }

        static UnitsRef decode(byte[] bytes) {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
                if (in.readByte() != MAGIC) throw new IOException("not a units reference");
                return new UnitsRef(in.readUTF(), in.readDouble(), in.readDouble());
            } catch (IOException e) {
                throw new UncheckedIOException("corrupt units entry", e);
            }
        }
    }

    private Deque<ModuleTask> loadPending(String key) {
        byte[] bytes = states.get(PENDING_PREFIX + key);
        Deque<ModuleTask> tasks = new ArrayDeque<>();
        if (bytes == null) return tasks;
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
            int n = in.readInt();
            for (int i = 0; i < n; i++) {
                byte[] one = new byte[in.readInt()];
                in.readFully(one);
                tasks.addLast(taskCodec.decode(one));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("corrupt pending-task list for " + key, e);
        }
        return tasks;
    }

    private void savePending(String key, Deque<ModuleTask> tasks) {
        if (tasks.isEmpty()) {
            states.delete(PENDING_PREFIX + key);
            return;
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(tasks.size());
            for (ModuleTask t : tasks) {
                byte[] one = taskCodec.encode(t);
                out.writeInt(one.length);
                out.write(one);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        states.put(PENDING_PREFIX + key, bytes.toByteArray());
    }

    private static boolean isRejectedMarker(byte[] raw) {
        if (raw.length < REJECTED_MARKER.length) return false;
        for (int i = 0; i < REJECTED_MARKER.length; i++) if (raw[i] != REJECTED_MARKER[i]) return false;
        return true;
    }

    static String bufferKey(String moduleKey, String adapterId, long version, String digest) {
        return moduleKey + "|" + adapterId + "|" + version + "|" + digest;
    }

    private static String groupOf(String key) {
        if (key == null) return null;
        int bar = key.indexOf('|');
        return bar < 0 ? key : key.substring(0, bar);
    }
}
