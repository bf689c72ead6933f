package dev.loralego.bench;

/**
 * How the tasks' LoRAs are initialised (PEFT: {@code A} Kaiming-uniform from the torch seed, {@code B = 0}).
 * With a shared seed the adapters start from the same {@code A}, so their rank directions begin aligned; with own
 * seeds nothing lines up but what training puts there.
 */
public enum InitRegime {
    /** Every task's {@code A} starts from the same seed (common in practice: one training script, one seed). */
    SHARED_INIT("shared A init"),
    /** Every task's {@code A} starts from its own seed. */
    OWN_INIT("own A init");

    private final String label;

    InitRegime(String label) {
        this.label = label;
    }

    /** Human-readable name for tables and plots. */
    public String label() {
        return label;
    }

    /** Short name for directories. */
    public String dirName() {
        return this == SHARED_INIT ? "shared-init" : "own-init";
    }
}
