package dev.loralego.registry;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.avro.AdapterEventType;
import dev.loralego.avro.AdapterLayer;
import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.DeadLetter;
import dev.loralego.avro.LoraConfigSnapshot;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.avro.VersionTrigger;
import org.apache.avro.Schema;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.util.ClassSecurityValidator;

import java.util.List;

/**
 * The classes generated from {@code schemas/*.avsc} (package {@code dev.loralego.avro}) and their
 * schemas, in a fixed order.
 *
 * <p>Avro 1.12 refuses to load a class named by a schema unless it is trusted
 * ({@link ClassSecurityValidator}); {@link #trust()} adds exactly these classes to the JVM-wide trusted
 * set (with {@link #INTERNAL_CLASSES}), keeping whatever was trusted before. {@link AvroSerde} calls it; code that builds its own
 * {@code SpecificDatumReader} must call it first.
 */
public final class ShippedAvroClasses {

    /** Every generated class: top-level record types first, then nested records, then enums. */
    public static final List<Class<?>> CLASSES = List.of(
            AdapterLayer.class, AdapterEvent.class, MergedLayer.class, MergedVersionManifest.class,
            DeadLetter.class, LoraConfigSnapshot.class, ModuleRef.class, AdapterRef.class, VersionTrigger.class,
            AdapterEventType.class, TensorDType.class);

    /** Records of the topology's internal topics and stores (never registered; trusted all the same). */
    public static final List<Class<?>> INTERNAL_CLASSES = List.of(
            dev.loralego.avro.internal.ModuleTask.class, dev.loralego.avro.internal.ModuleResult.class,
            dev.loralego.avro.internal.VersionPlan.class, dev.loralego.avro.internal.AssemblyInput.class,
            dev.loralego.avro.internal.LiveAdapter.class, dev.loralego.avro.internal.GroupState.class,
            dev.loralego.avro.internal.AssemblyState.class, dev.loralego.avro.internal.ModuleOp.class);

    /** The schemas of {@link #CLASSES}, same order. */
    public static final List<Schema> SCHEMAS = CLASSES.stream().map(c -> SpecificData.get().getSchema(c)).toList();

    private static boolean trusted;

    private ShippedAvroClasses() {
    }

    /** Adds {@link #CLASSES} to Avro's JVM-wide trusted classes; idempotent. */
    public static synchronized void trust() {
        if (trusted) {
            return;
        }
        ClassSecurityValidator.Builder ours = ClassSecurityValidator.builder();
        CLASSES.forEach(ours::add);
        INTERNAL_CLASSES.forEach(ours::add);
        ClassSecurityValidator.setGlobal(ClassSecurityValidator.composite(ClassSecurityValidator.getGlobal(),
                ours.build()));
        trusted = true;
    }
}
