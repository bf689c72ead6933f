package dev.loralego.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code merge} options that used to be ignored without a word, and the summary's options line, which must state the
 * options the method actually used.
 */
class MergeCommandOptionsTest {
    @TempDir
    static Path shared;
    static String a0, a1;

    @TempDir
    Path tmp;

    @BeforeAll
    static void synthesize() {
        Path dir = shared.resolve("adapters");
        CommandRun run = CommandRun.of("synth", "--shape", "tiny", "--adapters", "2", "--rank", "4", "--seed", "5",
                "--out", dir.toString());
        assertEquals(0, run.exit(), run::toString);
        a0 = dir.resolve("adapter-00").toString();
        a1 = dir.resolve("adapter-01").toString();
    }

    /** A misspelt module (short name, typo) would silently merge every module with the default k. */
    @Test
    void aKModuleNamingNoTargetedModuleIsRefused() {
        Path out = tmp.resolve("m");
        CommandRun run = CommandRun.of("merge", "--k", "4", "--k-module", "q_proj=2", "--out", out.toString(), a0, a1);
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().startsWith("error: ") && run.err().contains("'q_proj'"), run::toString);
        assertFalse(Files.exists(out));
    }

    @Test
    void aKModuleOfATargetedModuleIsUsed() throws IOException {
        Path out = tmp.resolve("ok");
        CommandRun run = CommandRun.of("merge", "--k", "4", "--k-module", "model.layers.0.self_attn.q_proj=2",
                "--out", out.toString(), a0, a1);
        assertEquals(0, run.exit(), run::toString);
        // tiny: 2 layers × 7 projections = 14 modules, one of them at rank 2
        assertTrue(run.out().contains("merged ranks: {2=1, 4=13}"), run::toString);
    }

    /** The baselines have one k; a --k-module given to them was dropped without a word. */
    @Test
    void kModuleWithABaselineIsRefused() {
        Path out = tmp.resolve("svd");
        CommandRun run = CommandRun.of("merge", "--method", "svd", "--k", "4",
                "--k-module", "model.layers.0.self_attn.q_proj=2", "--out", out.toString(), a0, a1);
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().contains("--k-module"), run::toString);
        assertFalse(Files.exists(out));
    }

    /** ties without --density runs at 0.2 (README), dare at 0.5: the summary said density=0.0. */
    @Test
    void theSummaryStatesTheDensityAndRankTheMethodUsed() {
        CommandRun ties = CommandRun.of("merge", "--method", "ties", "--k", "4", "--out", tmp.resolve("t").toString(), a0, a1);
        assertEquals(0, ties.exit(), ties::toString);
        assertEquals("  options: {density=0.2, k=4, lambda=1.0, method=ties}", line(ties, "  options:"), ties::toString);

        CommandRun dare = CommandRun.of("merge", "--method", "dare", "--k", "4", "--out", tmp.resolve("d").toString(), a0, a1);
        assertEquals(0, dare.exit(), dare::toString);
        assertEquals("  options: {density=0.5, k=4, method=dare, seed=42}", line(dare, "  options:"), dare::toString);

        // linear is exact: it writes rank 4 + 4 = 8 whatever --k says, so the summary must not claim k=4
        CommandRun linear = CommandRun.of("merge", "--method", "linear", "--k", "4", "--out", tmp.resolve("l").toString(), a0, a1);
        assertEquals(0, linear.exit(), linear::toString);
        assertEquals("  options: {method=linear}", line(linear, "  options:"), linear::toString);
        assertEquals("  modules: 14, merged ranks: {8=14}", line(linear, "  modules:"), linear::toString);
    }

    private static String line(CommandRun run, String prefix) {
        List<String> lines = run.out().lines().filter(l -> l.startsWith(prefix)).toList();
        assertEquals(1, lines.size(), run::toString);
        return lines.get(0);
    }
}
