package dev.loralego.cli;

import dev.loralego.client.AdapterPublisher;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code publish}: sends a PEFT adapter into a merge group, layers and event in one Kafka transaction. */
@Command(name = "publish", versionProvider = VersionProvider.class,
        // written out: --group and ADAPTER_DIR are required, but checked in call() (--version takes an optional value)
        customSynopsis = {"lora-lego publish --group=<group> [--adapter-id=<adapterId>]",
                "                         [--version[=V]] [--weight=<weight>] [--team=<team>]",
                "                         [--bootstrap-servers=HOST:PORT[,...]] [--config=FILE]",
                "                         [--max-record-bytes=BYTES] [--timeout=SECONDS] [-hV]",
                "                         ADAPTER_DIR"},
        description = {"Publishes a PEFT LoRA adapter into a merge group.",
                "Writes one record per module on the layers topic and the publish event, in one Kafka transaction"
                + " (the service sees all of it or nothing).",
                "Example: publish --group gpt2 --team nlp --weight 1.5 adapters/tigrinya"})
public final class PublishCommand implements Callable<Integer> {

    @Mixin
    HelpOptions helpOptions;

    @Option(names = "--group", description = "merge group (required)")
    String group;

    @Option(names = "--adapter-id", description = "adapter id (default: the directory's name)")
    String adapterId;

    @Option(names = "--version", arity = "0..1", fallbackValue = HelpOptions.NO_VALUE, paramLabel = "V",
            description = "adapter version (default: 1 + this adapter's version in the group's latest"
            + " merged version, else 1 + its version last withdrawn from the group, else 1: versions only go up);"
            + " without a value: print the program version")
    String version;

    @Option(names = "--weight", defaultValue = "1", description = "merge weight, > 0 (default: ${DEFAULT-VALUE})")
    double weight;

    @Option(names = "--team", description = "owning team, recorded in the merged versions' provenance")
    String team;

    @Mixin
    ClientOptionsMixin client;

    @Parameters(index = "0", arity = "0..1", paramLabel = "ADAPTER_DIR", description = "PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    Path adapterDir;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (HelpOptions.printedVersion(version, spec.commandLine())) return 0;
        HelpOptions.require(spec.commandLine(), group, "--group=<group>");
        // The version first: `--version DIR` took the directory as its value, and 'missing ADAPTER_DIR' misled.
        Long adapterVersion = HelpOptions.parseVersion(spec.commandLine(), version, "an adapter version");
        HelpOptions.require(spec.commandLine(), adapterDir, "ADAPTER_DIR");
        ProgressBar bar = new ProgressBar(spec.commandLine().getErr(), "publishing");
        AdapterPublisher.Published p = new AdapterPublisher(client.connect())
                .publishWithProgress(new AdapterPublisher.PublishRequest(group, adapterId, adapterVersion, weight, team, adapterDir),
                        (done, total, module) -> bar.update(done, total, module));
        PrintWriter out = spec.commandLine().getOut();
        if (p.unchanged()) {
            out.printf(Locale.ROOT, "%s version %d is already live in group %s with the same content (digest %s), weight and"
                    + " team: nothing published (pass --version to publish it as a new version anyway)%n",
                    p.adapterId(), p.version(), p.group(), p.adapterDigest());
            out.flush();
            return 0;
        }
        out.printf(Locale.ROOT, "published %s version %d to group %s%n", p.adapterId(), p.version(), p.group());
        out.printf(Locale.ROOT, "  modules: %d, adapter digest: %s%n", p.modules().size(), p.adapterDigest());
        out.printf(Locale.ROOT, "  bytes: %d in %d records, base model: %s, event: %s%n", p.bytes(), p.modules().size() + 1,
                p.baseModel(), p.eventId());
        if (!p.leftOut().isEmpty()) {
            out.printf(Locale.ROOT, "  not published (not LoRA factors): %s%n", p.leftOut());
        }
        out.println(rejectionHint(p.group()));
        out.flush();
        return 0;
    }

    /**
     * The line after a successful publish or withdraw: the records are committed, but the service validates
     * them only when it processes them, and a refusal goes to the dead-letter topic, not back to this process.
     */
    static String rejectionHint(String group) {
        return "  the service may still reject it; check with: dead-letters --group " + group;
    }
}
