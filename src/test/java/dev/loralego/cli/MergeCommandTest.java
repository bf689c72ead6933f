package dev.loralego.cli;

import dev.loralego.lego.MergeMethod;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code synth} and {@code merge} end to end through the command line: three synthetic {@code tiny} adapters
 * (14 modules, rank 4) written by {@code synth}, then merged with every method; the real gpt2 fixtures merged with
 * the defaults; option parsing, the printed summary and the usage errors.
 */
class MergeCommandTest {

    /** Relative Frobenius error between two ΔW rebuilt from f32-stored factors. */
    static final double F32_REL_TOL = 1e-5;
    static final int MODULES = 14;
    static final int RANK = 4;
    static final String NL = System.lineSeparator();

    @TempDir
    static Path shared;
    static List<String> adapters;

    @TempDir
    Path tmp;

    @BeforeAll
    static void synthesize() throws IOException {
        Path dir = shared.resolve("adapters");
        CommandRun run = CommandRun.of("synth", "--shape", "tiny", "--adapters", "3", "--rank", Integer.toString(RANK),
                "--seed", "3", "--out", dir.toString());
        assertEquals(0, run.exit(), run::toString);
        assertTrue(Pattern.matches("wrote 3 tiny adapter\\(s\\) of rank 4 \\(f32\\) to " + Pattern.quote(dir.toString())
                + " in \\d+\\.\\d s" + NL, run.out()), run::toString);
        adapters = new ArrayList<>();
        for (String name : List.of("adapter-00", "adapter-01", "adapter-02")) {
            Path d = dir.resolve(name);
            assertTrue(Files.isRegularFile(d.resolve(PeftAdapter.WEIGHTS_FILE)), name);
            adapters.add(d.toString());
        }
    }

    /**
     * Every method by its command-line name: exit 0, the summary names the method, 14 modules and the merged ranks
     * ({@code Σ r_t = 12} for the exact sums, {@code k = 4} otherwise), and the output is a PEFT adapter with them.
     */
    @ParameterizedTest
    @EnumSource(MergeMethod.class)
    void everyMethodMergesTheSynthesizedAdapters(MergeMethod method) throws IOException {
        Path out = tmp.resolve(method.cliName());
        CommandRun run = merge("--method", method.cliName(), "--k", Integer.toString(RANK), "--threads", "2",
                "--out", out.toString());
        assertEquals(0, run.exit(), run::toString);
        assertEquals("", run.err(), "no console: no progress bar, and nothing to warn about");

        int expectedRank = switch (method) {
            case CAT, LINEAR, TASK_ARITHMETIC -> 3 * RANK;
            default -> RANK;
        };
        List<String> lines = run.out().lines().toList();
        assertEquals("merged 3 adapter(s) with " + method.cliName() + " into " + out, lines.get(0), run::toString);
        assertTrue(lines.get(1).startsWith("  options: {") && lines.get(1).contains("method=" + method.cliName()),
                run::toString);
        assertEquals("  modules: " + MODULES + ", merged ranks: {" + expectedRank + "=" + MODULES + "}", lines.get(2));
        assertEquals(method == MergeMethod.LEGO, run.out().contains("mean k-means inertia:"), run::toString);
        assertTrue(lines.get(lines.size() - 1).matches("  time: \\d+\\.\\d\\d s"), run::toString);

        try (PeftAdapter merged = PeftAdapter.open(out)) {
            assertEquals(MODULES, merged.modules().size());
            for (LoraModuleInfo m : merged.modules().values()) {
                assertEquals(expectedRank, m.rank(), m.module());
                assertEquals(1.0, m.scaling(), 0.0, m.module());
            }
        }
    }

    @Test
    void methodNamesAreCaseInsensitiveAndAcceptDashes() {
        for (String name : List.of("TASK-ARITHMETIC", "Task_Arithmetic", "LEGO")) {
            Path out = tmp.resolve(name);
            CommandRun run = merge("--method", name, "--k", "2", "--out", out.toString());
            assertEquals(0, run.exit(), run::toString);
            String expected = MergeMethod.parse(name).cliName();
            assertTrue(run.out().startsWith("merged 3 adapter(s) with " + expected + " into "), run::toString);
        }
    }

    /** An unknown method is a usage error (exit 2) listing the valid names, before anything is read or written. */
    @Test
    void anUnknownMethodIsAUsageErrorListingTheValidMethods() {
        Path out = tmp.resolve("foo");
        CommandRun run = merge("--method", "foo", "--out", out.toString());
        assertEquals(2, run.exit(), run::toString);
        assertTrue(run.err().contains("Invalid value for option '--method'") && run.err().contains("'foo'"), run::toString);
        for (MergeMethod m : MergeMethod.values()) assertTrue(run.err().contains(m.cliName()), run::toString);
        assertEquals("", run.out());
        assertFalse(Files.exists(out));
    }

    @Test
    void anUnknownDtypeIsAUsageErrorListingTheValidDtypes() {
        Path out = tmp.resolve("f8");
        CommandRun run = merge("--dtype", "f8", "--out", out.toString());
        assertEquals(2, run.exit(), run::toString);
        assertTrue(run.err().contains("Invalid value for option '--dtype'") && run.err().contains("'f8'"), run::toString);
        for (String d : List.of("f32", "f16", "bf16")) assertTrue(run.err().contains(d), run::toString);
        assertFalse(Files.exists(out));
    }

    @Test
    void badInputsExitOneWithTheirMessage() {
        Path out = tmp.resolve("bad");
        CommandRun weights = merge("--weights", "1,2", "--out", out.toString());
        assertEquals(1, weights.exit(), weights::toString);
        assertEquals("error: 2 weights given for 3 adapters", weights.err().strip());

        String missing = tmp.resolve("no-such-adapter").toString();
        CommandRun absent = CommandRun.of("merge", "--out", out.toString(), adapters.get(0), missing);
        assertEquals(1, absent.exit(), absent::toString);
        assertTrue(absent.err().startsWith("error: ") && absent.err().contains(missing), absent::toString);
        assertFalse(Files.exists(out));

        CommandRun noOut = CommandRun.of("merge", adapters.get(0));
        assertEquals(2, noOut.exit(), noOut::toString);
        assertTrue(noOut.err().contains("--out"), noOut::toString);

        CommandRun noAdapter = CommandRun.of("merge", "--out", out.toString());
        assertEquals(2, noAdapter.exit(), noAdapter::toString);
        assertTrue(noAdapter.err().contains("ADAPTER_DIR"), noAdapter::toString);
    }

    /**
     * The LoRA-LEGO options reach the merge: with k = 12 = pool size, canonical none and both reweightings off every
     * unit is its own cluster and the merged ΔW is the plain sum, i.e. what {@code cat} writes.
     */
    @Test
    void legoOptionsFromTheCommandLineReachTheMerge() throws IOException {
        Path lego = tmp.resolve("lego-sum"), cat = tmp.resolve("cat");
        CommandRun run = merge("--k", "12", "--canonical", "NONE", "--reweight", "off", "--no-output-reweight",
                "--seed", "9", "--n-init", "2", "--out", lego.toString());
        assertEquals(0, run.exit(), run::toString);
        String options = run.out().lines().toList().get(1);
        for (String expected : List.of("canonical=none", "parameterReweighting=off", "outputReweighting=false", "k=12",
                "seed=9", "nInit=2", "method=lego")) {
            assertTrue(options.contains(expected), options);
        }
        assertEquals(0, merge("--method", "cat", "--out", cat.toString()).exit());

        try (PeftAdapter l = PeftAdapter.open(lego); PeftAdapter c = PeftAdapter.open(cat)) {
            for (String module : c.modules().keySet()) {
                double[] wl = deltaW(l, module), wc = deltaW(c, module);
                double diff = 0, norm = 0;
                for (int i = 0; i < wc.length; i++) {
                    diff += (wl[i] - wc[i]) * (wl[i] - wc[i]);
                    norm += wc[i] * wc[i];
                }
                assertTrue(Math.sqrt(diff / norm) <= F32_REL_TOL, module);
            }
        }
    }

    /** The real gpt2 fixtures with the defaults plus weights, a per-module k and bf16 output. */
    @Test
    void realAdaptersMergeWithDefaultsAndReportTheLeftOutHeads() throws IOException {
        Path out = tmp.resolve("gpt2");
        List<String> args = new ArrayList<>(List.of("merge", "--weights", "1,2,1", "--k-module",
                "transformer.h.0.attn.c_attn=4", "--dtype", "bf16", "--threads", "2", "--out", out.toString()));
        for (String name : List.of("gpt2-tigrinya-causal", "gpt2-imdb-seqcls-cattn", "gpt2-seqcls-cattn-cproj")) {
            args.add(fixture(name).toString());
        }
        CommandRun run = CommandRun.of(args.toArray(String[]::new));
        assertEquals(0, run.exit(), run::toString);
        // Default k is auto (chosen per module from the pooled units); the per-module override still wins.
        assertTrue(run.out().contains("k=auto (energy share 0.9)"), run::toString);
        assertTrue(run.out().contains(NL + "  modules: 36, merged ranks: {"), run::toString);
        assertTrue(run.out().contains(NL + "  left out 2 non-LoRA tensor(s): [gpt2-imdb-seqcls-cattn:base_model.model"
                + ".score.weight, gpt2-seqcls-cattn-cproj:base_model.model.score.weight]" + NL), run::toString);
        Matcher inertia = Pattern.compile("mean k-means inertia: (\\S+) \\(max Lloyd iterations (\\d+)\\)").matcher(run.out());
        assertTrue(inertia.find(), run::toString);
        assertTrue(Double.parseDouble(inertia.group(1)) > 0 && Integer.parseInt(inertia.group(2)) >= 1, run::toString);

        try (PeftAdapter merged = PeftAdapter.open(out)) {
            assertEquals(36, merged.modules().size());
            assertEquals(4, merged.module("transformer.h.0.attn.c_attn").rank());
            assertEquals(1.0, merged.module("transformer.h.0.attn.c_attn").scaling(), 0.0, "rank_pattern = alpha_pattern");
            assertEquals(DType.BF16, merged.dominantDType());
            assertTrue(merged.extraTensors().isEmpty());
        }
    }

    private static CommandRun merge(String... options) {
        List<String> args = new ArrayList<>();
        args.add("merge");
        args.addAll(Arrays.asList(options));
        args.addAll(adapters);
        return CommandRun.of(args.toArray(String[]::new));
    }

    private static double[] deltaW(PeftAdapter adapter, String module) throws IOException {
        LoraModuleInfo info = adapter.module(module);
        double[] a = adapter.readA(module), b = adapter.readB(module);
        int r = info.rank(), dIn = info.dIn(), dOut = info.dOut();
        double[] w = new double[dOut * dIn];
        for (int o = 0; o < dOut; o++) {
            for (int i = 0; i < dIn; i++) {
                double acc = 0;
                for (int j = 0; j < r; j++) acc += b[o * r + j] * a[j * dIn + i];
                w[o * dIn + i] = info.scaling() * acc;
            }
        }
        return w;
    }

    private static Path fixture(String name) {
        try {
            return Path.of(MergeCommandTest.class.getResource("/real-adapters/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
