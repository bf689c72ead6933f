package dev.loralego.cli;

import dev.loralego.avro.AdapterRef;
import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.client.ClientConnection;
import dev.loralego.client.MergedVersionReader;
import dev.loralego.client.PeftExport;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SortedMap;
import java.util.concurrent.Callable;

/** {@code export}: one merged version of a group as a PEFT adapter directory with manifest.json, verified. */
@Command(name = "export", versionProvider = VersionProvider.class,
        description = {"Writes a merged version of a group as a PEFT adapter directory plus manifest.json.",
                "Every module's digest is read back from the written file and checked against the manifest.",
                "Example: export --group gpt2 --version 7 --out merged-v7/"})
public final class ExportCommand implements Callable<Integer> {

    @Mixin
    HelpOptions helpOptions;

    @Option(names = "--group", description = "merge group (required)")
    String group;

    @Option(names = "--version", arity = "0..1", fallbackValue = HelpOptions.NO_VALUE, paramLabel = "S",
            description = "sequence number of the merged version (default: the latest); without a value: print the program version")
    String version;

    @Option(names = "--out", description = "output directory (required; created; its PEFT files and manifest.json are replaced)")
    Path out;

    @Mixin
    ClientOptionsMixin client;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (HelpOptions.printedVersion(version, spec.commandLine())) return 0;
        HelpOptions.require(spec.commandLine(), group, "--group=<group>");
        // The version first: `--version DIR` took the directory as its value, and 'missing ADAPTER_DIR' misled.
        Long sequence = HelpOptions.parseVersion(spec.commandLine(), version, "a version sequence number");
        HelpOptions.require(spec.commandLine(), out, "--out=<out>");
        ClientConnection connection = client.connect();
        // A newer service's schemas are loaded from the schemas topic when a record needs one (MergedVersionReader),
        // not up front: against a broker that does not answer, that would cost a second --timeout.
        MergedVersionReader reader = new MergedVersionReader(connection);
        MergedVersionManifest manifest = reader.manifest(group, sequence);
        SortedMap<String, MergedLayer> layers = reader.layers(manifest);
        PeftExport.Result r = PeftExport.write(out, manifest, layers);
        PrintWriter w = spec.commandLine().getOut();
        w.printf(Locale.ROOT, "exported version %d of group %s to %s (verified)%n", manifest.getSequence(), group, out);
        w.printf(Locale.ROOT, "  modules: %d, dtype: %s, tensor bytes: %d, digest: %s%n", manifest.getModules().size(),
                r.dtype().safetensorsName(), r.tensorBytes(), manifest.getDigest());
        for (AdapterRef a : manifest.getAdapters()) {
            w.printf(Locale.ROOT, "  adapter %s version %d, weight %s%s%n", a.getAdapterId(), a.getAdapterVersion(),
                    a.getWeight(), a.getTeam() == null ? "" : ", team " + a.getTeam());
        }
        w.flush();
        return 0;
    }
}
