package dev.loralego.client;

import dev.loralego.kafka.TopicScan;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.LoraConfigSnapshot;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.peft.AdapterConfig;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.TensorInfo;
import dev.loralego.stream.Digests;
import dev.loralego.stream.TensorCodec;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.Serializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Publishes a PEFT LoRA adapter into a merge group, and withdraws one (ARCHITECTURE.md, Data flow 1-2).
 *
 * <p>A publish writes one {@link AdapterLayer} per module to {@code lora.adapter.layers} (key
 * {@code group|module}) and then the {@link AdapterEvent} {@code PUBLISH} to {@code lora.adapter.events}
 * (key {@code group}), all in <b>one Kafka transaction</b> (transactional id
 * {@link MergeGroups#publishTransactionalId}: {@code lora-lego-publish-<group>|<adapterId>}). The service reads {@code read_committed}, so a publish
 * interrupted half-way is never seen, and a new publish of the same adapter aborts a stale transaction of a
 * crashed earlier attempt when it initialises.
 *
 * <p>Before anything is written, in a first pass over the adapter: the directory is opened and checked
 * ({@link PeftAdapter#open}), every factor must be finite (NaN/Inf fail naming the module, the tensor and the
 * element), and every record is serialized to check its size against {@link ClientConnection#maxRecordBytes()}
 * (the producer's {@code max.request.size}). A second pass inside the transaction reads the module again and
 * sends it, so memory holds one module at a time; a file changed between the passes aborts the publish.
 *
 * <p>With the embedded schema source, the schemas the records are written with are put on the schemas topic first
 * when it lacks them ({@link PublishedSchemas#ensureOnTopic}): a service older than this publisher then looks them up
 * there instead of dead-lettering the records.
 *
 * <p>Tensors travel as stored when A and B are both F32, F16 or BF16 (raw bytes, no rounding); F64, and a
 * module whose A and B have different dtypes, are sent as F32. Digest of a layer: {@link Digests#layer}; of
 * the adapter: {@link Digests#ofModules} over the modules in name order.
 *
 * <p>Default version: one more than this adapter's version in the group's latest merged version manifest
 * ({@code lora.merged.versions}, key {@code group}), or than its version last withdrawn (the manifest's
 * {@code withdrawnVersions}: versions of an adapter only go up, also across a withdrawal), or 1. The manifest trails the
 * publishes (it appears once the service has merged them), so two publishes of one adapter in quick
 * succession should pass explicit versions.
 */
public final class AdapterPublisher {
    private static final Logger LOG = LoggerFactory.getLogger(AdapterPublisher.class);
    /**
     * Upper bound of what Kafka adds around key and value when it checks {@code max.request.size}: the
     * record batch header (61 bytes) and the record's own framing (attributes, varint lengths, offsets).
     */
    static final int RECORD_OVERHEAD_BYTES = 128;

    private final ClientConnection connection;
    /** Schemas known to be on the schemas topic (or needing no check). */
    private final java.util.Set<org.apache.avro.Schema> schemasOnTopic = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * What to publish.
     *
     * @param group      merge group
     * @param adapterId  adapter id, or null for the directory's name
     * @param version    adapter version, or null for the default (see the class comment)
     * @param weight     merge weight, finite and &gt; 0
     * @param team       owning team, or null
     * @param adapterDir PEFT adapter directory
     */
    public record PublishRequest(String group, String adapterId, Long version, double weight, String team, Path adapterDir) {
        public PublishRequest {
            MergeGroups.check(group);
            Objects.requireNonNull(adapterDir, "adapterDir");
            if (adapterId == null) adapterId = adapterDir.toAbsolutePath().normalize().getFileName().toString();
            MergeGroups.checkAdapterId(adapterId);
            if (version != null && version < 0) throw new IllegalArgumentException("adapter version must be >= 0, got " + version);
            if (!(weight > 0) || !Double.isFinite(weight)) throw new IllegalArgumentException("weight must be finite and > 0, got " + weight);
            if (team != null && team.isBlank()) team = null;
        }
    }

    /**
     * What a publish wrote.
     *
     * @param group         merge group
     * @param adapterId     adapter id
     * @param version       adapter version
     * @param eventId       the publish event's id, or null when nothing was published (see {@link #unchanged()})
     * @param baseModel     {@code base_model_name_or_path} of the adapter, or null
     * @param modules       the event's module list (name order)
     * @param adapterDigest digest over the modules
     * @param bytes         serialized bytes of all records (layers and event)
     * @param leftOut       tensors of the directory that are not LoRA factors and were not published
     */
    public record Published(String group, String adapterId, long version, String eventId, String baseModel,
                            List<ModuleRef> modules, String adapterDigest, long bytes, List<String> leftOut) {
        /**
         * True when nothing was written: no version was asked for, and the group's latest merged version already
         * holds this adapter with the same content, weight and team ({@link #version()} is that live version).
         * A new version would only retract and re-add the same units.
         */
        public boolean unchanged() {
            return eventId == null;
        }
    }

    /** Test hook: told after each layer record is handed to the producer, inside the open transaction. */
    @FunctionalInterface
    interface Probe {
        void layerSent(int index, int total, String module, Producer<byte[], byte[]> producer);
    }

    /** Told after each layer record is handed to the producer (for a progress bar); called on the caller's thread. */
    @FunctionalInterface
    public interface Progress {
        void layerSent(int done, int total, String module);
    }

    /**
     * Publishes {@code request}, reporting each layer sent to {@code progress}.
     *
     * @see #publish(PublishRequest)
     */
    public Published publishWithProgress(PublishRequest request, Progress progress) throws IOException {
        java.util.Objects.requireNonNull(progress, "progress");
        Probe probe = (i, total, module, producer) -> progress.layerSent(i + 1, total, module);
        return publish(request, probe);
    }

    /** A publisher writing through {@code connection}. */
    public AdapterPublisher(ClientConnection connection) {
        this.connection = Objects.requireNonNull(connection, "connection");
    }

    /**
     * Publishes {@code request} (see the class comment).
     *
     * @throws IllegalArgumentException for a bad directory, a non-finite factor or an oversized record, naming it
     * @throws IllegalStateException    if Kafka refuses the transaction (nothing becomes visible), or the schemas
     *                                  topic cannot take this client's schemas ({@link PublishedSchemas#ensureOnTopic};
     *                                  nothing is written)
     */
    public Published publish(PublishRequest request) throws IOException {
        return publish(request, (i, n, m, p) -> { });
    }

    Published publish(PublishRequest request, Probe probe) throws IOException {
        String group = request.group();
        String id = request.adapterId();
        String layersTopic = connection.topics().adapterLayers();
        String eventsTopic = connection.topics().adapterEvents();
        Serializer<AdapterLayer> layerSerializer = connection.serdes().adapterLayer().serializer();
        Serializer<AdapterEvent> eventSerializer = connection.serdes().adapterEvent().serializer();
        Path dir = request.adapterDir();

        try (PeftAdapter adapter = PeftAdapter.open(dir)) {
            List<String> leftOut = new ArrayList<>(adapter.extraTensors().keySet());
            if (!leftOut.isEmpty()) {
                LOG.warn("{}: {} tensor(s) that are not LoRA factors are not published (a merged adapter carries LoRA"
                        + " modules only): {}", dir, leftOut.size(), leftOut);
            }
            long version = request.version() != null ? request.version() : -1;

            // Pass 1: validate every module and measure its record; nothing is written yet.
            List<ModuleRef> refs = new ArrayList<>();
            for (LoraModuleInfo m : adapter.modules().values()) {
                // The largest version varint stands in for the version, which may not be known yet.
                AdapterLayer layer = layerRecord(adapter, m, group, id, Long.MAX_VALUE);
                byte[] value = layerSerializer.serialize(layersTopic, layer);
                checkSize(layerKey(group, m.module()), value, "layer record of module " + m.module()
                        + " (A [" + m.rank() + ", " + m.dIn() + "] + B [" + m.dOut() + ", " + m.rank() + "] " + layer.getDtype() + ")");
                refs.add(new ModuleRef(m.module(), m.rank(), m.dIn(), m.dOut(), layer.getDigest()));
            }
            String adapterDigest = Digests.ofModules(refs.stream().map(ModuleRef::getModule).toList(),
                    refs.stream().map(ModuleRef::getDigest).toList());

            checkTopicsExist(layersTopic, eventsTopic);
            if (version < 0) {
                Optional<MergedVersionManifest> latest = new MergedVersionReader(connection).latest(group);
                Optional<AdapterRef> live = sameAsLive(latest, id, adapterDigest, request.weight(), request.team());
                if (live.isPresent()) {
                    LOG.info("{} version {} is live in group {} with the same content, weight and team: nothing published",
                            id, live.get().getAdapterVersion(), group);
                    return new Published(group, id, live.get().getAdapterVersion(), null, adapter.config().baseModel(),
                            List.copyOf(refs), adapterDigest, 0, List.copyOf(leftOut));
                }
                version = nextVersion(latest, id);
            }

            AdapterEvent event = AdapterEvent.newBuilder()
                    .setType(AdapterEventType.PUBLISH)
                    .setEventId(UUID.randomUUID().toString())
                    .setGroup(group)
                    .setAdapterId(id)
                    .setAdapterVersion(version)
                    .setTeam(request.team())
                    .setBaseModel(adapter.config().baseModel())
                    .setWeight(request.weight())
                    .setConfig(snapshot(adapter.config()))
                    .setModules(refs)
                    .setAdapterDigest(adapterDigest)
                    .setDtype(adapter.dominantDType().name())
                    .build();
            byte[] eventValue = eventSerializer.serialize(eventsTopic, event);
            byte[] eventKey = group.getBytes(StandardCharsets.UTF_8);
            checkSize(eventKey, eventValue, "publish event");
            long bytes = eventKey.length + eventValue.length;

            ensureSchemasOnTopic(List.of(AdapterLayer.getClassSchema(), AdapterEvent.getClassSchema()));
            // Pass 2: the transaction.
            String txId = MergeGroups.publishTransactionalId(group, id);
            try (KafkaProducer<byte[], byte[]> producer = connection.newProducer("lora-lego-publish", txId)) {
                producer.initTransactions();
                producer.beginTransaction();
                try {
                    int i = 0;
                    for (LoraModuleInfo m : adapter.modules().values()) {
                        AdapterLayer layer = layerRecord(adapter, m, group, id, version);
                        if (!layer.getDigest().equals(refs.get(i).getDigest())) {
                            throw new IllegalStateException(dir + ": module " + m.module() + " changed while it was being published");
                        }
                        byte[] key = layerKey(group, m.module());
                        byte[] value = layerSerializer.serialize(layersTopic, layer);
                        checkSize(key, value, "layer record of module " + m.module());
                        producer.send(new ProducerRecord<>(layersTopic, key, value));
                        bytes += key.length + value.length;
                        probe.layerSent(i, adapter.modules().size(), m.module(), producer);
                        i++;
                    }
                    producer.send(new ProducerRecord<>(eventsTopic, eventKey, eventValue));
                    producer.commitTransaction();
                } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
                    // The producer cannot abort any more; closing it leaves the transaction to be aborted by the
                    // broker (timeout) or by the next producer with this transactional id.
                    throw new IllegalStateException("publish of " + id + " to group " + group + " failed, nothing was committed: "
                            + e.getMessage(), e);
                } catch (RuntimeException e) {
                    abortQuietly(producer, e);
                    if (e instanceof KafkaException) {
                        throw new IllegalStateException("publish of " + id + " to group " + group
                                + " failed, the transaction was aborted: " + e.getMessage(), e);
                    }
                    throw e;
                }
            }
            LOG.info("published {} v{} to group {}: {} modules, digest {}", id, version, group, refs.size(), adapterDigest);
            return new Published(group, id, version, event.getEventId(), event.getBaseModel(), List.copyOf(refs),
                    adapterDigest, bytes, List.copyOf(leftOut));
        }
    }

    /**
     * Writes a {@code WITHDRAW} event for {@code adapterId} ({@code version} or -1 for whatever is live).
     *
     * @return the event written
     */
    public AdapterEvent withdraw(String group, String adapterId, long version) {
        MergeGroups.check(group);
        MergeGroups.checkAdapterId(adapterId);
        if (version < -1) throw new IllegalArgumentException("version must be >= 0, or -1 for the live one; got " + version);
        String eventsTopic = connection.topics().adapterEvents();
        checkTopicsExist(eventsTopic);
        AdapterEvent event = AdapterEvent.newBuilder()
                .setType(AdapterEventType.WITHDRAW)
                .setEventId(UUID.randomUUID().toString())
                .setGroup(group)
                .setAdapterId(adapterId)
                .setAdapterVersion(version)
                .setModules(new ArrayList<>())
                .build();
        byte[] value = connection.serdes().adapterEvent().serializer().serialize(eventsTopic, event);
        ensureSchemasOnTopic(List.of(AdapterEvent.getClassSchema()));
        try (KafkaProducer<byte[], byte[]> producer = connection.newProducer("lora-lego-withdraw", null)) {
            producer.send(new ProducerRecord<>(eventsTopic, group.getBytes(StandardCharsets.UTF_8), value))
                    .get(connection.timeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException("withdraw of " + adapterId + " from group " + group + " failed: "
                    + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            // the producer's close may still deliver it: say so, a retry of a withdrawal that went through is refused
            throw new IllegalStateException("withdraw of " + adapterId + " from group " + group + " not acknowledged within "
                    + connection.timeout().toSeconds() + " s; it may still reach the service: check `versions --group "
                    + group + "` before withdrawing again", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while withdrawing " + adapterId, e);
        }
        return event;
    }

    /** {@code adapterId}'s entry in {@code latest} when it has this digest, weight and team, else empty. */
    static Optional<AdapterRef> sameAsLive(Optional<MergedVersionManifest> latest, String adapterId, String digest,
                                           double weight, String team) {
        if (latest.isEmpty()) return Optional.empty();
        for (AdapterRef a : latest.get().getAdapters()) {
            if (a.getAdapterId().equals(adapterId) && digest.equals(a.getDigest()) && a.getWeight() == weight
                    && java.util.Objects.equals(a.getTeam(), team)) {
                return Optional.of(a);
            }
        }
        return Optional.empty();
    }

    /**
     * The default version: one more than {@code adapterId}'s live version in {@code latest}, or than the version last
     * withdrawn ({@code withdrawnVersions}: the service refuses a re-publish at or below it), or 1 if neither.
     */
    public static long nextVersion(Optional<MergedVersionManifest> latest, String adapterId) {
        if (latest.isEmpty()) return 1;
        for (AdapterRef a : latest.get().getAdapters()) {
            if (a.getAdapterId().equals(adapterId)) return a.getAdapterVersion() + 1;
        }
        Long withdrawn = latest.get().getWithdrawnVersions().get(adapterId);
        return withdrawn == null ? 1 : withdrawn + 1;
    }

    /** The config fields that decide how the factors are read and scaled. */
    static LoraConfigSnapshot snapshot(AdapterConfig c) {
        List<String> targets = c.targetModules() != null ? new ArrayList<>(c.targetModules())
                : c.targetModulesRegex() != null ? List.of(c.targetModulesRegex()) : List.of();
        // Pattern order matters (PEFT takes the first matching key), so the file order is kept.
        return LoraConfigSnapshot.newBuilder()
                .setR(c.r())
                .setLoraAlpha(c.loraAlpha())
                .setUseRslora(c.useRslora())
                .setFanInFanOut(c.fanInFanOut())
                .setRankPattern(new LinkedHashMap<>(c.rankPattern()))
                .setAlphaPattern(new LinkedHashMap<>(c.alphaPattern()))
                .setTargetModules(new ArrayList<>(targets))
                .setTaskType(c.taskType())
                .build();
    }

    /**
     * The layer record of module {@code m}: factors as stored (F64, or A and B of different dtypes: as F32),
     * checked finite.
     */
    static AdapterLayer layerRecord(PeftAdapter adapter, LoraModuleInfo m, String group, String adapterId, long version)
            throws IOException {
        TensorInfo ta = m.a();
        TensorInfo tb = m.b();
        TensorDType dtype;
        byte[] a;
        byte[] b;
        if (ta.dtype() == tb.dtype() && ta.dtype() != DType.F64) {
            dtype = TensorDType.valueOf(ta.dtype().name());
            a = adapter.weights().readRawBytes(ta.name());
            b = adapter.weights().readRawBytes(tb.name());
            checkFinite(a, dtype, m.rank() * m.dIn(), m, ta, m.dIn(), "");
            checkFinite(b, dtype, m.dOut() * m.rank(), m, tb, m.rank(), "");
        } else {
            dtype = TensorDType.F32;
            double[] av = adapter.weights().readDoubles(ta.name());
            double[] bv = adapter.weights().readDoubles(tb.name());
            checkFinite(av, m, ta, m.dIn(), "");
            checkFinite(bv, m, tb, m.rank(), "");
            a = TensorCodec.encode(av, dtype);
            b = TensorCodec.encode(bv, dtype);
            checkFinite(a, dtype, av.length, m, ta, m.dIn(), " after conversion to F32 (out of range)");
            checkFinite(b, dtype, bv.length, m, tb, m.rank(), " after conversion to F32 (out of range)");
        }
        return AdapterLayer.newBuilder()
                .setGroup(group).setAdapterId(adapterId).setAdapterVersion(version).setModule(m.module())
                .setDtype(dtype).setRank(m.rank()).setDIn(m.dIn()).setDOut(m.dOut()).setScaling(m.scaling())
                .setA(ByteBuffer.wrap(a)).setB(ByteBuffer.wrap(b)).setDigest(Digests.layer(a, b))
                .build();
    }

    /** {@link #checkFinite(double[], LoraModuleInfo, TensorInfo, int, String)} on raw tensor bytes, without decoding them. */
    private static void checkFinite(byte[] raw, TensorDType dtype, int count, LoraModuleInfo m, TensorInfo t, int columns,
                                    String when) {
        int i = TensorCodec.firstNonFinite(ByteBuffer.wrap(raw), dtype, count);
        if (i >= 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "module %s: tensor %s holds %s at element %d (row %d, column %d)%s; LoRA factors must be finite",
                    m.module(), t.name(), TensorCodec.elementAt(ByteBuffer.wrap(raw), dtype, i), i, i / columns,
                    i % columns, when));
        }
    }

    private static void checkFinite(double[] v, LoraModuleInfo m, TensorInfo t, int columns, String when) {
        for (int i = 0; i < v.length; i++) {
            if (!Double.isFinite(v[i])) {
                throw new IllegalArgumentException(String.format(Locale.ROOT,
                        "module %s: tensor %s holds %s at element %d (row %d, column %d)%s; LoRA factors must be finite",
                        m.module(), t.name(), v[i], i, i / columns, i % columns, when));
            }
        }
    }

    private void checkSize(byte[] key, byte[] value, String what) {
        long size = (long) key.length + value.length + RECORD_OVERHEAD_BYTES;
        if (size > connection.maxRecordBytes()) {
            throw new IllegalArgumentException(what + " is " + size + " bytes, more than the largest record allowed ("
                    + connection.maxRecordBytes() + " bytes, --max-record-bytes); nothing was published. Raise"
                    + " --max-record-bytes together with the service's and the topic's max.message.bytes");
        }
    }

    /**
     * Puts the schemas this publisher writes with on the schemas topic when it lacks them (a publisher newer than every
     * service that ran), so that such a service decodes the records instead of dead-lettering them; checked once per
     * publisher and schema set.
     */
    private void ensureSchemasOnTopic(List<org.apache.avro.Schema> schemas) {
        if (schemasOnTopic.containsAll(schemas)) return;
        PublishedSchemas.ensureOnTopic(connection, schemas);
        schemasOnTopic.addAll(schemas);
    }

    private void checkTopicsExist(String... topics) {
        try (KafkaConsumer<byte[], byte[]> consumer = connection.newConsumer("lora-lego-publish-check")) {
            for (String t : topics) TopicScan.partitions(consumer, t, connection.timeout());
        }
    }

    private static byte[] layerKey(String group, String module) {
        return (group + "|" + module).getBytes(StandardCharsets.UTF_8);
    }

    private static void abortQuietly(KafkaProducer<byte[], byte[]> producer, RuntimeException cause) {
        try {
            producer.abortTransaction();
        } catch (KafkaException e) {
            cause.addSuppressed(e);
        }
    }
}
