package dev.loralego.cli;

import dev.loralego.avro.AdapterEvent;
import dev.loralego.client.AdapterPublisher;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code withdraw}: takes an adapter out of a merge group (the service emits a version without it). */
@Command(name = "withdraw", versionProvider = VersionProvider.class,
        // written out: --group and --adapter-id are required, but checked in call() (--version takes an optional value)
        customSynopsis = {"lora-lego withdraw --group=<group> --adapter-id=<adapterId>",
                "                          [--version[=V]] [--bootstrap-servers=HOST:PORT[,...]]",
                "                          [--config=FILE]",
                "                          [--max-record-bytes=BYTES] [--timeout=SECONDS] [-hV]"},
        description = {"Withdraws an adapter from a merge group.",
                "Example: withdraw --group gpt2 --adapter-id tigrinya"})
public final class WithdrawCommand implements Callable<Integer> {

    @Mixin
    HelpOptions helpOptions;

    @Option(names = "--group", description = "merge group (required)")
    String group;

    @Option(names = "--adapter-id", description = "adapter id (required)")
    String adapterId;

    @Option(names = "--version", arity = "0..1", fallbackValue = HelpOptions.NO_VALUE, paramLabel = "V",
            description = "the version to withdraw; the service refuses it if another version is live (default: whatever is live);"
                    + " without a value: print the program version")
    String versionArg;

    @Mixin
    ClientOptionsMixin client;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (HelpOptions.printedVersion(versionArg, spec.commandLine())) return 0;
        HelpOptions.require(spec.commandLine(), group, "--group=<group>");
        HelpOptions.require(spec.commandLine(), adapterId, "--adapter-id=<adapterId>");
        Long v = HelpOptions.parseVersion(spec.commandLine(), versionArg, "an adapter version");
        long version = v == null ? -1 : v;
        AdapterEvent e = new AdapterPublisher(client.connect()).withdraw(group, adapterId, version);
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "sent the withdrawal of %s (%s) from group %s, event %s%n", e.getAdapterId(),
                version < 0 ? "the live version" : "version " + version, e.getGroup(), e.getEventId());
        out.println(PublishCommand.rejectionHint(e.getGroup()));
        out.flush();
        return 0;
    }
}
