package dev.loralego.bench;

import dev.loralego.lego.AdapterModule;
import dev.loralego.lego.ClusteringResult;
import dev.loralego.lego.LegoOptions;
import dev.loralego.lego.StreamingModuleClusters;
import dev.loralego.lego.StreamingOptions;
import dev.loralego.peft.BaseModelShape;
import dev.loralego.peft.DType;
import dev.loralego.peft.LoraModuleInfo;
import dev.loralego.peft.PeftAdapter;
import dev.loralego.peft.SyntheticAdapters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Plain timing of streaming refinements as the service runs them, on one llama-7b {@code down_proj} module
 * ({@code synth} adapters, r = 16, bf16, k = 16): adapters upserted one by one with their units released after
 * every step (so a refinement re-derives what it needs through the factor source, as in the service), a refinement
 * every {@code R} updates. Prints, per refinement, its time and how many units it moved, then the totals. Uses
 * only API that older builds have too, so a baseline build on the class path first times the old code.
 *
 * <pre>
 * java -cp target/test-classes:target/classes:$(cat target/cp.txt) dev.loralego.bench.RefinementTiming [adapters] [R] [rounds]
 * </pre>
 */
public final class RefinementTiming {

    private RefinementTiming() {
    }

    /**
     * @param args optional adapters (default 20), refinement period {@code R} (default 2) and rounds (default 3;
     *             the first warms the JIT and is not counted)
     */
    public static void main(String[] args) throws Exception {
        int adapters = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        int every = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        String module = "model.layers.5.mlp.down_proj";
        Path dir = Files.createTempDirectory("refinement-timing");
        List<Path> dirs = SyntheticAdapters.generate(dir, adapters, 16, BaseModelShape.byName("llama-7b"), 7, DType.BF16,
                List.of("down_proj"));
        List<AdapterModule> modules = new ArrayList<>();
        for (Path d : dirs) {
            try (PeftAdapter p = PeftAdapter.open(d)) {
                LoraModuleInfo m = p.module(module);
                modules.add(new AdapterModule(d.getFileName().toString(), 1.0, m.scaling(), m.rank(), m.dIn(), m.dOut(),
                        p.readA(module), p.readB(module)));
            }
        }
        for (int round = 0; round < rounds; round++) {
            Map<String, AdapterModule> source = new HashMap<>();
            StreamingModuleClusters s = new StreamingModuleClusters(module, LegoOptions.defaults().withK(16),
                    new StreamingOptions(1.0, 0));
            s.setFactorSource(source::get);
            double totalMs = 0;
            int refinements = 0, moving = 0;
            StringBuilder line = new StringBuilder();
            for (int t = 0; t < modules.size(); t++) {
                AdapterModule m = modules.get(t);
                source.put(m.adapterId(), m);
                s.upsert(m.adapterId(), m);
                s.releaseUnits();
                if ((t + 1) % every != 0 || !s.clustered()) continue;
                int[] before = s.clusteringResult().map(ClusteringResult::assignment).orElseThrow().clone();
                long t0 = System.nanoTime();
                s.refine();
                double ms = (System.nanoTime() - t0) / 1e6;
                s.releaseUnits();
                int[] after = s.clusteringResult().map(ClusteringResult::assignment).orElseThrow();
                int moved = 0;
                for (int i = 0; i < before.length; i++) if (before[i] != after[i]) moved++;
                totalMs += ms;
                refinements++;
                if (moved > 0) moving++;
                line.append(String.format(Locale.ROOT, " %d:%.0fms%s", t + 1, ms, moved > 0 ? "(moved " + moved + ")" : ""));
            }
            System.out.printf(Locale.ROOT, "round %d%s: %d refinements (%d moved units) in %.0f ms;%s%n", round,
                    round == 0 ? " (warm-up)" : "", refinements, moving, totalMs, line);
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
