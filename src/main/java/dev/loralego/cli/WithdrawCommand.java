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
@Command(name = "withdraw", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Withdraws an adapter from a merge group.",
                "Example: withdraw --group gpt2 --adapter-id tigrinya"})
public final class WithdrawCommand implements Callable<Integer> {

    @Option(names = "--group", required = true, description = "merge group")
    String group;

    @Option(names = "--adapter-id", required = true, description = "adapter id")
    String adapterId;

    @Option(names = "--version", defaultValue = "-1",
            description = "the version to withdraw; the service refuses it if another version is live (default: whatever is live)")
    long version;

    @Mixin
    ClientOptionsMixin client;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        AdapterEvent e = new AdapterPublisher(client.connect()).withdraw(group, adapterId, version);
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "withdrew %s (%s) from group %s, event %s%n", e.getAdapterId(),
                version < 0 ? "the live version" : "version " + version, e.getGroup(), e.getEventId());
        out.flush();
        return 0;
    }
}
