package dev.loralego.cli;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * One execution of the {@code lora-lego} command line as {@link LoraLegoCommand#main} runs it (same shared
 * settings), with its {@code out} and {@code err} captured instead of printed.
 *
 * @param exit exit code
 * @param out  everything written to the command line's out
 * @param err  everything written to its err
 */
record CommandRun(int exit, String out, String err) {

    static CommandRun of(String... args) {
        CommandLine cl = LoraLegoCommand.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new CommandRun(exit, out.toString(), err.toString());
    }

    @Override
    public String toString() {
        return "exit " + exit + "\n--- out:\n" + out + "--- err:\n" + err;
    }
}
