package dev.loralego.stream;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Fault injection for the crash-recovery tests: with the system property
 * {@code loralego.fault.haltAfterModuleSteps=N}, the process halts (like SIGKILL: no shutdown hooks, no
 * commit) right after its N-th module step, i.e. in the middle of a version. Off unless the property is set.
 */
final class FaultInjection {
    private static final long HALT_AFTER = Long.getLong("loralego.fault.haltAfterModuleSteps", -1);
    private static final AtomicLong STEPS = new AtomicLong();

    private FaultInjection() {
    }

    /** Called after every module step. */
    static void moduleStepDone() {
        if (HALT_AFTER > 0 && STEPS.incrementAndGet() >= HALT_AFTER) {
            System.err.println("fault injection: halting after module step " + HALT_AFTER);
            System.err.flush();
            Runtime.getRuntime().halt(137);
        }
    }
}
