package dev.loralego.stream;

import dev.loralego.peft.BaseModelShape;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link ModuleMerger#refineDue}: every {@code refineEvery} updates of a module, staggered across modules. */
class RefineScheduleTest {

    private static final List<String> LLAMA = BaseModelShape.byName("llama-7b").modules().stream()
            .map(BaseModelShape.ModuleShape::module).toList();

    @Test
    void everyModuleRefinesOnceInAnyRunOfRefineEveryUpdates() {
        for (int every : new int[]{1, 2, 3, 8, 13}) {
            for (String m : LLAMA) {
                for (long start = 1; start < 40; start++) {
                    int due = 0;
                    for (long u = start; u < start + every; u++) if (ModuleMerger.refineDue(m, u, every)) due++;
                    assertEquals(1, due, m + " every " + every + " from " + start);
                }
            }
        }
        for (long u = 1; u < 50; u++) {
            assertTrue(ModuleMerger.refineDue("any", u, 1), "refineEvery 1: every update");
            assertFalse(ModuleMerger.refineDue("any", u, 0), "refineEvery 0: never");
        }
    }

    @Test
    void theModulesOfAGroupSpreadTheirRefinementsOverVersions() {
        // all 224 llama-7b modules see every version: count how many refine at each of 8 consecutive versions
        int every = 8;
        int[] perVersion = new int[every];
        for (String m : LLAMA) {
            for (int v = 0; v < every; v++) if (ModuleMerger.refineDue(m, 17 + v, every)) perVersion[v]++;
        }
        int total = 0;
        for (int v = 0; v < every; v++) {
            total += perVersion[v];
            // uniform would be 28 each; without staggering one version would carry all 224
            assertTrue(perVersion[v] >= 10 && perVersion[v] <= 50, "version " + v + ": " + perVersion[v] + " refinements");
        }
        assertEquals(LLAMA.size(), total);
    }
}
