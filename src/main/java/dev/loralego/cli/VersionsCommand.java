package dev.loralego.cli;

import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.client.ClientConnection;
import dev.loralego.client.ManifestJson;
import dev.loralego.client.MergedVersionReader;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.SortedMap;
import java.util.concurrent.Callable;

/**
 * {@code versions}: what the service has published, read from the versions topic. Without {@code --group}, one line
 * per merge group with its latest version; with it, one line per version of that group still on the topic, oldest
 * first. Each line: sequence, the triggering event's time (UTC), the trigger, how many adapters and modules the
 * version has, and the start of its digest. {@code --json}: one manifest per line, in {@code manifest.json}'s form
 * ({@link ManifestJson}), for tools. "No versions" goes to stdout in text mode and to stderr with {@code --json}.
 */
@Command(name = "versions", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Lists merged versions: every group's latest, or one group's history.",
                "Reads topic.merged.versions from --config (default lora.merged.versions).",
                "Example: versions --group llama-team"})
public final class VersionsCommand implements Callable<Integer> {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'", Locale.ROOT)
            .withZone(ZoneOffset.UTC);

    @Option(names = "--group", description = "this merge group's versions, oldest first (default: every group's latest)")
    String group;

    @Option(names = "--json", description = "one manifest per line, as manifest.json holds it")
    boolean json;

    @Mixin
    ClientOptionsMixin client;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter notes = json ? spec.commandLine().getErr() : out;
        ClientConnection connection = client.connect();
        MergedVersionReader reader = new MergedVersionReader(connection);
        String topic = connection.topics().mergedVersions();
        if (group != null) {
            SortedMap<Long, MergedVersionManifest> history = reader.history(group);
            if (history.isEmpty()) return none(notes, "no merged versions of group " + group + " on " + topic);
            if (!json) out.println(header("version").stripTrailing());
            for (MergedVersionManifest m : history.values()) {
                out.println(json ? ManifestJson.toJsonLine(m) : line(Long.toString(m.getSequence()), m));
            }
        } else {
            SortedMap<String, MergedVersionReader.GroupSummary> groups = reader.groups();
            if (groups.isEmpty()) return none(notes, "no merged versions on " + topic);
            if (!json) out.println(header("group") + "  versions");
            for (MergedVersionReader.GroupSummary g : groups.values()) {
                MergedVersionManifest latest = g.latest();
                out.println(json ? ManifestJson.toJsonLine(latest)
                        : line(latest.getGroup() + " v" + latest.getSequence(), latest) + "  " + g.versions());
            }
        }
        out.flush();
        return 0;
    }

    private static int none(PrintWriter notes, String message) {
        notes.println(message);
        notes.flush();
        return 0;
    }

    private static String header(String first) {
        return String.format(Locale.ROOT, "%-24s  %-20s  %-32s  %8s  %7s  %-12s", first, "time (UTC)", "trigger", "adapters",
                "modules", "digest");
    }

    /** One version: {@code first}, event time, trigger, adapter and module counts, digest prefix. */
    private static String line(String first, MergedVersionManifest m) {
        String trigger = m.getTrigger().getType().name().toLowerCase(Locale.ROOT) + " " + m.getTrigger().getAdapterId()
                + (m.getTrigger().getAdapterVersion() >= 0 ? " v" + m.getTrigger().getAdapterVersion() : "");
        return String.format(Locale.ROOT, "%-24s  %-20s  %-32s  %8d  %7d  %-12s", first,
                TIME.format(Instant.ofEpochMilli(m.getEventTimestamp())), trigger, m.getAdapters().size(), m.getModules().size(),
                m.getDigest().substring(0, Math.min(12, m.getDigest().length())));
    }
}
