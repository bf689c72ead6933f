package dev.loralego.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The one executable of the project: {@code java -jar lora-lego.jar <subcommand>}. Thin: every subcommand
 * parses its options, calls the library and prints the outcome.
 */
@Command(name = "lora-lego",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Merges PEFT LoRA adapters with LoRA-LEGO (arXiv 2409.16167), offline or as a Kafka Streams service.",
        subcommands = {
                MergeCommand.class,
                SynthCommand.class,
                RunCommand.class,
                AuditCommand.class,
                DemoCommand.class,
                PublishCommand.class,
                WithdrawCommand.class,
                DeadLettersCommand.class,
                VersionsCommand.class,
                ExportCommand.class,
                WatchCommand.class,
                BenchCommand.class,
                CommandLine.HelpCommand.class
        })
public final class LoraLegoCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Builds the command line with the project's shared settings (used by {@link #main} and by tests). */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new LoraLegoCommand());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            commandLine.getErr().println(commandLine.getColorScheme().errorText("error: " + messageOf(ex)));
            if (Boolean.getBoolean("loralego.stacktrace")) ex.printStackTrace(commandLine.getErr());
            return 1;
        });
        return cl;
    }

    static String messageOf(Throwable ex) {
        String m = ex.getMessage();
        if (ex instanceof org.apache.kafka.common.errors.TimeoutException) {
            // Kafka's own text ("Timeout expired while fetching topic metadata") does not say where it looked.
            return "Kafka did not answer in time (" + m + "); is a broker running at --bootstrap-servers"
                    + " (default " + dev.loralego.client.ClientConnection.DEFAULT_BOOTSTRAP + ")? Check it, --config and --timeout";
        }
        if (ex instanceof java.nio.file.FileSystemException f) {
            // Java's text is the bare path ("error: afile"): say what is wrong with it.
            String what = f instanceof java.nio.file.FileAlreadyExistsException ? "already exists"
                    : f instanceof java.nio.file.NoSuchFileException ? "no such file or directory"
                    : f instanceof java.nio.file.NotDirectoryException ? "not a directory"
                    : f instanceof java.nio.file.DirectoryNotEmptyException ? "directory not empty"
                    : f instanceof java.nio.file.AccessDeniedException ? "permission denied"
                    : f.getReason() != null ? f.getReason() : f.getClass().getSimpleName();
            return f.getFile() + (f.getOtherFile() == null ? "" : " -> " + f.getOtherFile()) + ": " + what;
        }
        return m == null ? ex.getClass().getSimpleName() : m;
    }

    public static void main(String[] args) {
        dev.loralego.registry.ShippedAvroClasses.trust();
        System.exit(commandLine().execute(args));
    }
}
