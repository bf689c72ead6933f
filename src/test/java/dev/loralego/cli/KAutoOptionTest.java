package dev.loralego.cli;

import dev.loralego.lego.LegoOptions;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --k auto} on the command line: parsing, the merge command's default, and baselines refusing it. */
class KAutoOptionTest {

    private static LegoOptionsMixin parse(String... args) {
        CommandLine cl = LoraLegoCommand.commandLine();
        CommandLine.ParseResult pr = cl.parseArgs(args);
        return ((MergeCommand) pr.subcommand().commandSpec().userObject()).lego;
    }

    @Test
    void mergeDefaultsToAutoAndAcceptsNumbers() {
        LegoOptions dflt = parse("merge", "--out", "o", "a").toOptions(LegoOptions.K_AUTO);
        assertEquals(LegoOptions.K_AUTO, dflt.k());
        assertEquals(0.9, dflt.autoEnergyShare(), 0.0);
        assertEquals(0, parse("merge", "--out", "o", "a").toOptions().k(), "the streaming form keeps 0 as its default");
        assertEquals(LegoOptions.K_AUTO, parse("merge", "--k", "AUTO", "--out", "o", "a").toOptions(0).k());
        assertEquals(16, parse("merge", "--k", "16", "--out", "o", "a").toOptions(LegoOptions.K_AUTO).k());
        assertEquals(0.8, parse("merge", "--k-auto-share", "0.8", "--out", "o", "a").toOptions(LegoOptions.K_AUTO)
                .autoEnergyShare(), 0.0);
        assertEquals(0, parse("merge", "--out", "o", "a").baselineK());
    }

    @Test
    void badValuesAndAutoForBaselinesGiveClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("merge", "--k", "sixteen", "--out", "o", "a").toOptions());
        assertTrue(e.getMessage().contains("sixteen"), e.getMessage());
        StringWriter err = new StringWriter();
        CommandLine cl = LoraLegoCommand.commandLine();
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("merge", "--method", "ties", "--k", "auto", "--out", "target/tmp/never", "missing-dir");
        assertEquals(1, code);
        assertTrue(err.toString().contains("--k auto is defined for --method lego only"), err.toString());
    }
}
