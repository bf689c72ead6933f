package dev.loralego.client;

import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.avro.TensorDType;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.MergedAdapterSpec;
import dev.loralego.peft.ModuleFactors;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.PeftAdapterWriter;
import dev.loralego.stream.Digests;
import dev.loralego.stream.TensorCodec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Writes one merged version as a PEFT adapter directory ({@link PeftAdapterWriter}: {@code adapter_config.json}
 * + {@code adapter_model.safetensors}, each module with scaling 1) plus {@link ManifestJson#FILE_NAME}, and
 * verifies what it wrote: every module's tensors, read back from the file as raw bytes, have the manifest's
 * digest ({@link Digests#layer}), and the module digests give the manifest's whole digest
 * ({@link Digests#ofModules}). A merged version is thereby exported bit for bit as the service emitted it.
 *
 * <p>Tensors are written in the layers' dtype. If the layers of one version have different dtypes (the
 * group's output dtype was changed while some modules kept older layers), every tensor is written as F32,
 * which holds F16 and BF16 values exactly; verification then re-encodes the read values to each layer's
 * dtype before hashing, which gives the original bytes back.
 */
public final class PeftExport {

    /**
     * What was written.
     *
     * @param dir         the adapter directory
     * @param manifest    the version written
     * @param dtype       dtype of the written tensors
     * @param tensorBytes bytes of A and B over all modules, as they travelled on the topic
     */
    public record Result(Path dir, MergedVersionManifest manifest, DType dtype, long tensorBytes) {
    }

    /** Raised when a written directory does not match its manifest; the message names the module. */
    public static final class VerificationException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        VerificationException(String message) {
            super(message);
        }
    }

    private PeftExport() {
    }

    /**
     * Writes and verifies version {@code manifest} into {@code dir} (created if missing; the PEFT files and
     * {@code manifest.json} in it are replaced).
     *
     * @param layers a merged layer per module of the manifest (e.g. {@link MergedVersionReader#layers})
     * @throws IllegalStateException     if the version has no module, or a layer is missing or does not match
     *                                   the manifest (shape, digest, byte count), naming the module
     * @throws VerificationException     if the written files do not give the manifest's digests back
     */
    public static Result write(Path dir, MergedVersionManifest manifest, Map<String, MergedLayer> layers) throws IOException {
        Objects.requireNonNull(dir, "dir");
        String what = "version " + manifest.getSequence() + " of merge group '" + manifest.getGroup() + "'";
        if (manifest.getModules().isEmpty()) {
            throw new IllegalStateException(what + " has no module (every adapter was withdrawn): there is no adapter to write");
        }
        SortedMap<String, TensorDType> layerTypes = new TreeMap<>();
        for (ModuleRef m : manifest.getModules()) {
            MergedLayer layer = layers.get(m.getModule());
            if (layer == null) throw new IllegalStateException(what + ": no merged layer for module " + m.getModule());
            checkLayer(what, m, layer);
            layerTypes.put(m.getModule(), layer.getDtype());
        }
        boolean uniform = layerTypes.values().stream().distinct().count() == 1;
        TensorDType first = layerTypes.values().iterator().next();
        DType dtype = uniform ? DType.valueOf(first.name()) : DType.F32;

        SortedMap<String, ModuleFactors> factors = new TreeMap<>();
        long bytes = 0;
        for (ModuleRef m : manifest.getModules()) {
            MergedLayer layer = layers.get(m.getModule());
            double[] a = TensorCodec.decode(layer.getA(), layer.getDtype(), m.getRank() * m.getDIn());
            double[] b = TensorCodec.decode(layer.getB(), layer.getDtype(), m.getDOut() * m.getRank());
            factors.put(m.getModule(), new ModuleFactors(m.getRank(), m.getDIn(), m.getDOut(), a, b));
            bytes += layer.getA().remaining() + layer.getB().remaining();
        }
        PeftAdapterWriter.write(dir, new MergedAdapterSpec(manifest.getBaseModel(), manifest.getTaskType(),
                manifest.getFanInFanOut(), dtype, factors, null));
        ManifestJson.write(dir.resolve(ManifestJson.FILE_NAME), manifest);
        verify(dir, manifest, layerTypes);
        return new Result(dir, manifest, dtype, bytes);
    }

    /**
     * Checks that {@code dir} holds exactly {@code manifest}'s modules with its shapes and digests, and a
     * {@code manifest.json} equal to it.
     *
     * @param layerTypes the dtype each module's layer had on the topic; {@code null} when the stored dtypes
     *                   are the layers' dtypes (raw bytes are hashed as stored)
     * @throws VerificationException naming the first module that differs
     */
    public static void verify(Path dir, MergedVersionManifest manifest, Map<String, TensorDType> layerTypes) throws IOException {
        String what = dir + " (version " + manifest.getSequence() + " of merge group '" + manifest.getGroup() + "')";
        List<String> names = new ArrayList<>();
        List<String> digests = new ArrayList<>();
        try (PeftAdapter adapter = PeftAdapter.open(dir)) {
            SortedMap<String, LoraModuleInfo> written = adapter.modules();
            TreeMap<String, ModuleRef> expected = new TreeMap<>();
            for (ModuleRef m : manifest.getModules()) expected.put(m.getModule(), m);
            if (!written.keySet().equals(expected.keySet())) {
                throw new VerificationException(what + ": written modules " + written.keySet() + " differ from the manifest's "
                        + expected.keySet());
            }
            for (ModuleRef m : expected.values()) {
                LoraModuleInfo info = written.get(m.getModule());
                if (info.rank() != m.getRank() || info.dIn() != m.getDIn() || info.dOut() != m.getDOut()) {
                    throw new VerificationException(what + ": module " + m.getModule() + " was written as rank " + info.rank() + " "
                            + info.dIn() + "->" + info.dOut() + " but the manifest says rank " + m.getRank() + " "
                            + m.getDIn() + "->" + m.getDOut());
                }
                if (info.scaling() != 1.0) {
                    throw new VerificationException(what + ": module " + m.getModule() + " has scaling " + info.scaling()
                            + " in adapter_config.json; merged layers are written with scaling 1");
                }
                byte[] a = adapter.weights().readRawBytes(info.a().name());
                byte[] b = adapter.weights().readRawBytes(info.b().name());
                TensorDType travelled = layerTypes == null ? null : layerTypes.get(m.getModule());
                if (travelled != null && !travelled.name().equals(info.a().dtype().name())) {
                    a = TensorCodec.encode(adapter.weights().readDoubles(info.a().name()), travelled);
                    b = TensorCodec.encode(adapter.weights().readDoubles(info.b().name()), travelled);
                }
                String digest = Digests.layer(a, b);
                if (!digest.equals(m.getDigest())) {
                    throw new VerificationException(what + ": module " + m.getModule() + " reads back with digest " + digest
                            + " but the manifest says " + m.getDigest());
                }
                names.add(m.getModule());
                digests.add(digest);
            }
        }
        String whole = Digests.ofModules(names, digests);
        if (!whole.equals(manifest.getDigest())) {
            throw new VerificationException(what + ": the modules give the whole digest " + whole + " but the manifest says "
                    + manifest.getDigest());
        }
        MergedVersionManifest json = ManifestJson.read(dir.resolve(ManifestJson.FILE_NAME));
        if (!json.equals(manifest)) {
            throw new VerificationException(what + ": " + ManifestJson.FILE_NAME + " does not read back as the manifest");
        }
    }

    private static void checkLayer(String what, ModuleRef m, MergedLayer layer) {
        String module = m.getModule();
        if (layer.getRank() != m.getRank() || layer.getDIn() != m.getDIn() || layer.getDOut() != m.getDOut()) {
            throw new IllegalStateException(what + ": merged layer of module " + module + " is rank " + layer.getRank() + " "
                    + layer.getDIn() + "->" + layer.getDOut() + " but the manifest says rank " + m.getRank() + " "
                    + m.getDIn() + "->" + m.getDOut());
        }
        if (m.getRank() < 1) throw new IllegalStateException(what + ": module " + module + " has rank " + m.getRank());
        int size = TensorCodec.byteSize(layer.getDtype());
        long aBytes = (long) m.getRank() * m.getDIn() * size;
        long bBytes = (long) m.getDOut() * m.getRank() * size;
        if (layer.getA().remaining() != aBytes || layer.getB().remaining() != bBytes) {
            throw new IllegalStateException(what + ": merged layer of module " + module + " has " + layer.getA().remaining()
                    + " + " + layer.getB().remaining() + " bytes of A and B, " + layer.getDtype() + " rank " + m.getRank()
                    + " " + m.getDIn() + "->" + m.getDOut() + " needs " + aBytes + " + " + bBytes);
        }
        String digest = Digests.layer(bytes(layer.getA()), bytes(layer.getB()));
        if (!digest.equals(m.getDigest())) {
            throw new IllegalStateException(what + ": merged layer of module " + module + " has bytes with digest " + digest
                    + " but the manifest says " + m.getDigest() + " (record says " + layer.getDigest() + ")");
        }
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer d = buffer.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }
}
