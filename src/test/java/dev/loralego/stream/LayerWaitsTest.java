package dev.loralego.stream;

import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.internal.ModuleOp;
import dev.loralego.avro.internal.ModuleTask;
import dev.loralego.lego.LegoOptions;
import dev.loralego.registry.EmbeddedSchemaResolver;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.processor.api.MockProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A module step waits for its layer record by design; {@link LayerWaits} counts the steps that have waited longer than
 * {@link LayerWaits#OVERDUE} (wall clock), for the metric and the warning that tell an operator that a group is held.
 * The module merger runs here on a {@link MockProcessorContext}, so that its stores outlive one processor instance
 * (what a restart looks like to it) and its wall-clock punctuator fires at chosen times.
 */
class LayerWaitsTest {
    private static final String TASKS = "lora-lego.module-tasks", LAYERS = "lora.adapter.layers", GROUP = "g";
    private final TopologySerdes serdes = MergeService.serdes(new EmbeddedSchemaResolver());
    private final KeyValueStore<String, byte[]> buffer = store("buffer"), states = store("states");
    private final List<ModuleMerger> mergers = new ArrayList<>();
    private MockProcessorContext<String, byte[]> context;
    private ModuleMerger merger;

    private static KeyValueStore<String, byte[]> store(String name) {
        KeyValueStore<String, byte[]> s = Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore(name), Serdes.String(),
                Serdes.ByteArray()).withLoggingDisabled().build();
        s.init(new MockProcessorContext<>().getStateStoreContext(), s);
        return s;
    }

    @AfterEach
    void close() {
        mergers.forEach(ModuleMerger::close);
        assertEquals(0, LayerWaits.overdue(), "closed processors report nothing");
    }

    /** A new merger on the same stores, initialised at wall-clock time {@code now}: a start or a restart. */
    private void start(long now) {
        if (merger != null) merger.close();
        context = new MockProcessorContext<>();
        context.setCurrentSystemTimeMs(now);
        context.addStateStore(buffer);
        context.addStateStore(states);
        merger = new ModuleMerger("buffer", "states", LAYERS, serdes.adapterLayer().deserializer(), "lora.merged.layers",
                serdes.mergedLayer().serializer(), "merged-sink", "assembly-sink",
                new DeadLetters("dead-letter-sink", "lora.deadletter", serdes.deadLetter().serializer(), null, true));
        merger.init(context);
        mergers.add(merger);
    }

    /** Fires the merger's wall-clock punctuators at {@code now}. */
    private void at(long now) {
        context.setCurrentSystemTimeMs(now);
        context.scheduledPunctuators().forEach(p -> p.getPunctuator().punctuate(now));
    }

    private void process(String topic, String key, byte[] value) {
        context.setRecordMetadata(topic, 0, 0);
        merger.process(new Record<>(key.getBytes(StandardCharsets.UTF_8), value, 0L));
    }

    /** The sequencer's task for {@code layer}'s publish as version 1 of the group. */
    private static ModuleTask upsert(AdapterLayer layer) {
        return ModuleTask.newBuilder().setGroup(GROUP).setModule(layer.getModule()).setSequence(1).setOp(ModuleOp.UPSERT)
                .setAdapterId(layer.getAdapterId()).setAdapterVersion(layer.getAdapterVersion()).setWeight(1.0)
                .setLayerDigest(layer.getDigest()).setRank(layer.getRank()).setDIn(layer.getDIn()).setDOut(layer.getDOut())
                .setParameters(new TreeMap<>(new MergeParameters(LegoOptions.defaults().withK(2), 8, "lloyd", 1.0, "F32", 16).toMap())).build();
    }

    @Test
    void aStepWaitingForItsLayerIsCountedAfterAMinuteAlsoAfterARestartUntilTheLayerComes() {
        StreamFixtures.Adapter a = StreamFixtures.adapter(GROUP, "a", 1, 2, 7);
        List<String> modules = new ArrayList<>(a.layers().keySet());
        assertEquals(2, modules.size());
        long t0 = 1_000_000;
        start(t0);
        for (String m : modules) {
            process(TASKS, GROUP + "|" + m, new InternalCodec<>(ModuleTask.class).encode(upsert(a.layers().get(m))));
        }
        at(t0 + 30_000);
        assertEquals(0, LayerWaits.overdue(), "30 s is an ordinary wait");
        at(t0 + LayerWaits.OVERDUE.toMillis());
        assertEquals(2, LayerWaits.overdue());

        // a restart: the new processor watches the restored waiting steps from its start
        long t1 = t0 + 3_600_000;
        start(t1);
        assertEquals(0, LayerWaits.overdue(), "the closed processor's count is gone");
        at(t1 + LayerWaits.OVERDUE.toMillis() - 1);
        assertEquals(0, LayerWaits.overdue());
        at(t1 + LayerWaits.OVERDUE.toMillis());
        assertEquals(2, LayerWaits.overdue());

        // the first module's layer comes: its step runs (a merged module goes out) and it is no longer counted
        String first = modules.get(0);
        process(LAYERS, GROUP + "|" + first, serdes.adapterLayer().serializer().serialize(LAYERS, a.layers().get(first)));
        assertFalse(context.forwarded().isEmpty(), "the step ran");
        at(t1 + LayerWaits.OVERDUE.toMillis() + 10_000);
        assertEquals(1, LayerWaits.overdue());
    }
}
