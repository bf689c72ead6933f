package dev.loralego.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code lora-lego} command line as a whole: help, version and usage errors of every subcommand. */
class CliTest {

    /** Every registered subcommand but picocli's {@code help} (which has no {@code --version}). */
    static List<String> subcommands() {
        return LoraLegoCommand.commandLine().getSubcommands().keySet().stream().filter(n -> !n.equals("help")).toList();
    }

    @Test
    void theOfflineSubcommandsAreRegistered() {
        assertTrue(LoraLegoCommand.commandLine().getSubcommands().keySet().containsAll(Set.of("merge", "synth", "help")));
    }

    @ParameterizedTest
    @MethodSource("subcommands")
    void helpAndVersionOfEverySubcommandExitZero(String name) {
        CommandRun help = CommandRun.of(name, "--help");
        assertEquals(0, help.exit(), help::toString);
        assertTrue(help.out().startsWith("Usage: lora-lego " + name), help::toString);
        assertTrue(help.out().contains("--version") && help.out().contains("--help"), help::toString);
        assertEquals("", help.err());

        CommandRun version = CommandRun.of(name, "--version");
        assertEquals(0, version.exit(), version::toString);
        assertTrue(version.out().startsWith("lora-lego " + VersionProvider.version() + System.lineSeparator()),
                version::toString);
        assertTrue(version.out().contains("Java "), version::toString);
        assertEquals("", version.err());
    }

    /** {@code run} on a taken port: exit 1 and one line naming the port and the two ways out, no stack traces. */
    @Test
    void runOnATakenPortSaysSoInOneLine(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName("localhost"))) {
            int port = taken.getLocalPort();
            CommandRun run = CommandRun.of("run", "--embedded-port", Integer.toString(port), "--data-dir", tmp.toString(),
                    "--http-port", "0");
            assertEquals(1, run.exit(), run::toString);
            assertEquals("error: embedded broker: port " + port + " on localhost is already in use (another Kafka broker,"
                    + " or a service started earlier?): choose a free port, or connect to the broker that runs there"
                    + " (--embedded-port PORT, or --bootstrap-servers localhost:" + port + ")", run.err().strip(), run::toString);
        }
    }

    /** No broker: audit gives up after --timeout with a line naming the servers; the other clients name the option. */
    @Test
    void clientsWithoutABrokerFailWithinTheirTimeoutNamingWhereTheyLooked(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        CommandRun audit = CommandRun.of("audit", "--bootstrap-servers", "localhost:1", "--group", "g", "--timeout", "2");
        assertEquals(1, audit.exit(), audit::toString);
        assertTrue(audit.err().contains("Kafka at localhost:1 did not answer within 2 s reading lora.merged.versions"),
                audit::toString);

        CommandRun export = CommandRun.of("export", "--bootstrap-servers", "localhost:1", "--group", "g", "--timeout", "2",
                "--out", tmp.resolve("x").toString());
        assertEquals(1, export.exit(), export::toString);
        assertTrue(export.err().startsWith("error: Kafka did not answer in time (") && export.err().contains("--bootstrap-servers"),
                export::toString);
    }

    /** A bad algorithm option of {@code run} is refused before the embedded broker starts (no broker data written). */
    @Test
    void runRefusesABadOptionBeforeStartingTheBroker(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        CommandRun run = CommandRun.of("run", "--k", "auto", "--embedded-port", "0", "--data-dir", tmp.toString(), "--http-port", "0");
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().startsWith("error: ") && run.err().strip().lines().count() == 1, run::toString);
        assertTrue(!java.nio.file.Files.exists(tmp.resolve("kafka")), "no broker was started: " + run);
    }

    /** File-system errors name the path and what is wrong with it, not the bare path. */
    @Test
    void fileSystemErrorsSayWhatIsWrong() {
        assertEquals("out/x: already exists",
                LoraLegoCommand.messageOf(new java.nio.file.FileAlreadyExistsException("out/x")));
        assertEquals("in/y: no such file or directory", LoraLegoCommand.messageOf(new java.nio.file.NoSuchFileException("in/y")));
        assertEquals("a -> b: permission denied", LoraLegoCommand.messageOf(new java.nio.file.AccessDeniedException("a", "b", null)));
        assertEquals("c: disk full", LoraLegoCommand.messageOf(new java.nio.file.FileSystemException("c", null, "disk full")));
    }

    /** {@code publish --group G --version DIR}: the directory became the version's value; say that, not "missing ADAPTER_DIR". */
    @Test
    void aDirectoryGivenAsTheVersionIsNamedAsSuch() {
        CommandRun run = CommandRun.of("publish", "--group", "g", "--version", "adapters/tigrinya");
        assertEquals(2, run.exit(), run::toString);
        assertTrue(run.err().startsWith("--version takes an adapter version, got 'adapters/tigrinya'"), run::toString);
    }

    /**
     * {@code publish --help} states the default version as {@code AdapterPublisher} picks it: after a withdrawal it is
     * one more than the withdrawn version (the service refuses a re-publish at or below it), not 1.
     */
    @Test
    void publishHelpGivesTheDefaultVersionAfterAWithdrawal() {
        CommandRun help = CommandRun.of("publish", "--help");
        assertEquals(0, help.exit(), help::toString);
        String text = help.out().replaceAll("\\s+", " ");
        assertTrue(text.contains("else 1 + its version last withdrawn from the group, else 1"), help::toString);
        assertTrue(!text.contains("or 1 if it is not in it"), help::toString);
    }

    /** The command list of {@code --help} shows the first description line only: it must be a sentence of its own. */
    @Test
    void everySubcommandSummaryIsACompleteSentence() {
        java.util.ArrayDeque<picocli.CommandLine> todo = new java.util.ArrayDeque<>(List.of(LoraLegoCommand.commandLine()));
        int checked = 0;
        while (!todo.isEmpty()) {
            picocli.CommandLine cl = todo.pop();
            for (picocli.CommandLine sub : cl.getSubcommands().values()) {
                if (sub.getCommandName().equals("help")) continue;
                String[] description = sub.getCommandSpec().usageMessage().description();
                String summary = description.length == 0 ? "" : description[0];
                assertTrue(summary.endsWith("."), sub.getCommandSpec().qualifiedName() + ": summary '" + summary + "'");
                checked++;
                todo.push(sub);
            }
        }
        assertTrue(checked >= 14, "subcommands checked: " + checked);
    }

    /**
     * A written-out synopsis (commands whose required options are checked in code) names every option of the command
     * and shows the required ones without brackets, within 80 columns.
     */
    @Test
    void everyCustomSynopsisNamesEveryOptionAndShowsTheRequiredOnes() {
        Map<String, List<String>> required = Map.of("publish", List.of("--group=<group>", "ADAPTER_DIR"),
                "withdraw", List.of("--group=<group>", "--adapter-id=<adapterId>"));
        int checked = 0;
        for (picocli.CommandLine sub : LoraLegoCommand.commandLine().getSubcommands().values()) {
            String[] custom = sub.getCommandSpec().usageMessage().customSynopsis();
            if (custom.length == 0) continue;
            String name = sub.getCommandName();
            String synopsis = String.join("\n", custom);
            assertTrue(custom[0].startsWith("lora-lego " + name + " "), custom[0]);
            for (int i = 0; i < custom.length; i++) {
                String printed = (i == 0 ? "Usage: " : "") + custom[i]; // picocli prints continuation lines as written
                assertTrue(printed.length() <= 80, name + ": '" + printed + "'");
            }
            assertTrue(synopsis.contains("[-hV]"), name + ": -h/-V missing from\n" + synopsis);
            for (picocli.CommandLine.Model.OptionSpec o : sub.getCommandSpec().options()) {
                if (o.usageHelp() || o.versionHelp()) continue;
                assertTrue(synopsis.contains(o.longestName()), name + ": " + o.longestName() + " missing from\n" + synopsis);
            }
            List<String> mustShow = required.get(name);
            assertTrue(mustShow != null, name + " has a custom synopsis: say here which of its arguments are required");
            for (String r : mustShow) {
                assertTrue(synopsis.contains(" " + r) && !synopsis.contains("[" + r), name + ": " + r + " shown as optional");
            }
            checked++;
        }
        assertEquals(2, checked, "commands with a written-out synopsis");
    }

    @Test
    void topLevelHelpVersionAndBareCallPrintToOut() {
        CommandRun help = CommandRun.of("--help");
        assertEquals(0, help.exit(), help::toString);
        assertTrue(help.out().startsWith("Usage: lora-lego"), help::toString);
        for (String sub : List.of("merge", "synth", "help")) assertTrue(help.out().contains(sub), help::toString);

        CommandRun version = CommandRun.of("--version");
        assertEquals(0, version.exit(), version::toString);
        assertTrue(version.out().startsWith("lora-lego "), version::toString);

        // no subcommand: the usage, on the command line's out (it used to go to System.out directly)
        CommandRun bare = CommandRun.of();
        assertEquals(0, bare.exit(), bare::toString);
        assertEquals(help.out(), bare.out());

        CommandRun helpMerge = CommandRun.of("help", "merge");
        assertEquals(0, helpMerge.exit(), helpMerge::toString);
        assertTrue(helpMerge.out().startsWith("Usage: lora-lego merge"), helpMerge::toString);
    }

    @Test
    void anUnknownSubcommandOrOptionIsAUsageError() {
        CommandRun sub = CommandRun.of("frobnicate");
        assertEquals(2, sub.exit(), sub::toString);
        assertTrue(sub.err().contains("frobnicate"), sub::toString);

        CommandRun opt = CommandRun.of("synth", "--out", "x", "--no-such-option");
        assertEquals(2, opt.exit(), opt::toString);
        assertTrue(opt.err().contains("--no-such-option"), opt::toString);
    }

    @Test
    void versionTakesAValueWhereCommandsNeedOneAndPrintsTheProgramVersionWithoutOne() {
        for (String name : List.of("publish", "withdraw", "export")) {
            CommandRun alone = CommandRun.of(name, "--version");
            assertEquals(0, alone.exit(), alone::toString);
            assertTrue(alone.out().startsWith("lora-lego " + VersionProvider.version()), alone::toString);
        }
        CommandRun bad = CommandRun.of("export", "--group", "g", "--version", "seven", "--out", "x");
        assertEquals(2, bad.exit(), bad::toString);
        assertTrue(bad.err().contains("--version takes a version sequence number, got 'seven'"), bad::toString);
        CommandRun missing = CommandRun.of("publish", "--group", "g");
        assertEquals(2, missing.exit(), missing::toString);
        assertTrue(missing.err().contains("Missing required option: 'ADAPTER_DIR'"), missing::toString);
    }

    @Test
    void auditNamesOtherBuildsOnlyWhenSomeVersionWasRecordedByOne() {
        assertNull(AuditCommand.otherBuildsHint(new java.util.TreeSet<>(java.util.Set.of("lora-lego 0.4.0")), "lora-lego 0.4.0"));
        assertEquals("note: versions compared were recorded by lora-lego 0.2.0, lora-lego 0.3.0, and this is lora-lego 0.4.0;"
                        + " a replay by another build can differ where the builds behave differently (README, Upgrades):"
                        + " audit with the build that recorded them",
                AuditCommand.otherBuildsHint(new java.util.TreeSet<>(java.util.Set.of("lora-lego 0.3.0", "lora-lego 0.4.0",
                        "lora-lego 0.2.0")), "lora-lego 0.4.0"));
    }
}
