package dev.loralego.cli;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The terminal progress bar: silent when disabled, monotonic, one final newline. */
class ProgressBarTest {

    @Test
    void aDisabledBarPrintsNothing() {
        StringWriter sink = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(sink), "merging", false);
        for (int i = 1; i <= 3; i++) bar.update(i, 3, "m" + i);
        assertEquals("", sink.toString());
    }

    /**
     * Worker threads report counts out of order; found by this test: a late smaller count used to redraw the bar
     * after its final line, leaving a stale "2/3" on the terminal.
     */
    @Test
    void countsArrivingOutOfOrderNeverMoveTheBarBackOrPastItsFinalLine() {
        StringWriter sink = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(sink), "merging", true);
        bar.update(1, 3, "transformer.h.0.attn.c_attn");
        bar.update(3, 3, "transformer.h.0.mlp.c_proj");
        bar.update(2, 3, "transformer.h.0.attn.c_proj");
        String s = sink.toString();

        assertEquals(2, s.chars().filter(c -> c == '\r').count(), s);
        assertTrue(s.contains(" 1/3 ") && s.contains(" 3/3 ") && !s.contains(" 2/3 "), s);
        assertTrue(s.endsWith(System.lineSeparator()), "the final line is ended: " + s);
        assertTrue(s.contains("[" + "#".repeat(30) + "]"), s);
    }

    @Test
    void longModuleNamesAreShortenedFromTheLeft() {
        StringWriter sink = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(sink), "merging", true);
        String name = "base_model.model.model.layers.31.self_attn.q_proj.very.long.suffix";
        bar.update(1, 2, name);
        assertTrue(sink.toString().contains("…" + name.substring(name.length() - 39)), sink.toString());
    }
}
