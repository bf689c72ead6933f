package dev.loralego.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.loralego.client.ClientConnection;
import dev.loralego.client.DeadLetterReader;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code dead-letters}: prints the inputs the service rejected (read from the dead-letter topic), oldest first,
 * optionally of one group only and following new ones. {@code publish} and {@code withdraw} exit 0 once their
 * records are committed, before the service has validated them; this is how a user sees a refusal.
 *
 * <p>Text output, one line per dead letter: {@code TIME GROUP SOURCE_TOPIC/PARTITION@OFFSET: REASON [field F]}
 * (UTC, millisecond precision; {@code -} for an unknown group). {@code --json}: one object per line with the
 * record's fields; the rejected key as base64, the rejected value left out (it can be a whole adapter layer)
 * with its length in {@code valueBytes}, and where the dead letter itself lies ({@code deadLetterPartition},
 * {@code deadLetterOffset}), which keeps the whole rejected record. Lines that are not dead letters ("none",
 * "following") go to stdout in text mode and to stderr with {@code --json}, so stdout stays JSON lines.
 */
@Command(name = "dead-letters", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Prints the inputs the merge service rejected (dead letters), oldest first, with the reason.",
                "publish and withdraw exit 0 before the service has checked their records;"
                + " a refusal shows up here. Reads topic.deadletter (default lora.deadletter).",
                "Example: dead-letters --group gpt2 --follow"})
public final class DeadLettersCommand implements Callable<Integer> {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSX", Locale.ROOT)
            .withZone(ZoneOffset.UTC);
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--group", description = "only this merge group's dead letters (default: every group's)")
    String group;

    @Option(names = "--follow", description = "after the existing ones, keep printing new dead letters until interrupted (Ctrl-C)")
    boolean follow;

    @Option(names = "--json", description = "one JSON object per line: the dead letter's fields, the rejected key as base64,"
            + " the rejected value's length (valueBytes) instead of its bytes")
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
        String topic = connection.topics().deadLetter();
        String scope = group == null ? "on " + topic : "for group " + group;
        DeadLetterReader reader = new DeadLetterReader(connection);
        DeadLetterReader.Listener listener = new DeadLetterReader.Listener() {
            @Override
            public void letter(DeadLetterReader.Entry e) {
                out.println(json ? json(e) : text(e));
                out.flush();
            }

            @Override
            public void caughtUp(int count) {
                if (count == 0) notes.println("no dead letters " + scope);
                if (follow) notes.println("following " + topic + " for new dead letters " + scope + " (Ctrl-C to stop)");
                notes.flush();
            }
        };
        if (!follow) {
            reader.read(group, false, listener);
            return 0;
        }
        // SIGTERM / Ctrl-C: stop polling, let the last batch print, then let the JVM exit.
        GracefulStop.run("lora-lego-dead-letters-shutdown", reader::stop, Duration.ofSeconds(10),
                () -> reader.read(group, true, listener));
        return 0;
    }

    /** {@code TIME GROUP SOURCE_TOPIC/PARTITION@OFFSET: REASON [field F]}. */
    static String text(DeadLetterReader.Entry e) {
        return String.format(Locale.ROOT, "%s %s %s/%d@%d: %s%s", TIME.format(Instant.ofEpochMilli(e.timestamp())),
                e.group() == null ? "-" : e.group(), e.sourceTopic(), e.partition(), e.offset(), e.reason(),
                e.field() == null ? "" : " [field " + e.field() + "]");
    }

    /** The entry as one line of JSON (see the class comment). */
    static String json(DeadLetterReader.Entry e) {
        ObjectNode o = JSON.createObjectNode();
        o.put("time", TIME.format(Instant.ofEpochMilli(e.timestamp())));
        o.put("timestamp", e.timestamp());
        o.put("group", e.group());
        o.put("sourceTopic", e.sourceTopic());
        o.put("partition", e.partition());
        o.put("offset", e.offset());
        o.put("reason", e.reason());
        o.put("field", e.field());
        o.put("key", e.key() == null ? null : Base64.getEncoder().encodeToString(e.key()));
        o.put("valueBytes", e.valueBytes());
        o.put("deadLetterPartition", e.letterPartition());
        o.put("deadLetterOffset", e.letterOffset());
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException ex) {
            throw new UncheckedIOException(ex);
        }
    }
}
