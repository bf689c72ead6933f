package dev.loralego.peft;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The rules that pick a merge's task_type and dtype from its inputs' (shared by the offline merge and the service). */
class MergedAdapterSpecTest {

    @Test
    void theDTypeIsTheMostCommonTiesToTheFirstInDTypeOrderAndNullsDoNotCount() {
        assertEquals(DType.BF16, MergedAdapterSpec.dtypeOf(List.of(DType.BF16, DType.F32, DType.BF16)));
        assertEquals(DType.F32, MergedAdapterSpec.dtypeOf(List.of(DType.BF16, DType.F32)), "a tie goes to F32, first in order");
        assertEquals(DType.F32, MergedAdapterSpec.dtypeOf(List.of(DType.F32, DType.BF16)), "whatever the input order");
        assertEquals(DType.F16, MergedAdapterSpec.dtypeOf(List.of(DType.BF16, DType.F16)));
        assertEquals(DType.BF16, MergedAdapterSpec.dtypeOf(Arrays.asList(null, DType.BF16, null)));
        assertNull(MergedAdapterSpec.dtypeOf(Arrays.asList((DType) null)));
        assertNull(MergedAdapterSpec.dtypeOf(List.of()));
    }

    @Test
    void theTaskTypeIsTheMostCommonTiesToTheFirstInStringOrder() {
        assertEquals("SEQ_CLS", MergedAdapterSpec.taskTypeOf(List.of("SEQ_CLS", "CAUSAL_LM", "SEQ_CLS")));
        assertEquals("CAUSAL_LM", MergedAdapterSpec.taskTypeOf(List.of("SEQ_CLS", "CAUSAL_LM")));
        assertNull(MergedAdapterSpec.taskTypeOf(Arrays.asList((String) null)));
    }
}
