package dev.loralego.merge;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A worker that dies of an Error (above all OutOfMemoryError) is reported with its cause, not a bare "failed". */
class MergeFailureMessageTest {
    @Test
    void anOutOfMemoryErrorIsNamedInTheMessage() {
        CompletableFuture<dev.loralego.lego.MergedModule> f = new CompletableFuture<>();
        f.completeExceptionally(new OutOfMemoryError("Java heap space"));
        IOException e = assertThrows(IOException.class, () -> AdapterMerge.get("model.layers.0.mlp.up_proj", f));
        assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj"), e.getMessage());
        assertTrue(e.getMessage().contains("OutOfMemoryError") && e.getMessage().contains("Java heap space"), e.getMessage());
        assertTrue(e.getMessage().contains("-Xmx"), e.getMessage());
    }
}
