package dev.loralego.cli;

import picocli.CommandLine;
import picocli.CommandLine.Option;

import java.io.PrintWriter;

/**
 * Help and version options for the commands whose {@code --version} takes a value (an adapter version or a
 * merged version's sequence number, as users of those commands expect): {@code --help}/{@code -h} as usual,
 * {@code -V} and a value-less {@code --version} print the program version. Such commands check their required
 * options themselves, so that {@code --version} alone works.
 */
public final class HelpOptions {
    /** The value picocli gives {@code --version} when it has none. */
    static final String NO_VALUE = "";

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Option(names = "-V", versionHelp = true, description = "Print version information and exit (so does --version without a value).")
    boolean versionHelp;

    /** Prints the program version when {@code --version} came without a value; returns whether it did. */
    static boolean printedVersion(String versionArg, CommandLine commandLine) {
        if (!NO_VALUE.equals(versionArg)) return false;
        PrintWriter out = commandLine.getOut();
        for (String line : new VersionProvider().getVersion()) out.println(line);
        out.flush();
        return true;
    }

    /** A value-or-null for the {@code --version} option's string. */
    static Long parseVersion(CommandLine commandLine, String versionArg, String what) {
        if (versionArg == null) return null;
        try {
            return Long.parseLong(versionArg.trim());
        } catch (NumberFormatException e) {
            throw new CommandLine.ParameterException(commandLine, "--version takes " + what + ", got '" + versionArg + "'");
        }
    }

    /** Throws the usage error picocli would give for a missing required option. */
    static void require(CommandLine commandLine, Object value, String option) {
        if (value == null) throw new CommandLine.ParameterException(commandLine, "Missing required option: '" + option + "'");
    }
}
