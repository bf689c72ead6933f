package dev.loralego.cli;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Runs a client loop that goes on until interrupted ({@code watch}, {@code dead-letters --follow}) so that Ctrl-C or
 * SIGTERM stops it cleanly: a shutdown hook asks the loop to stop, then holds the JVM's exit until the loop has
 * returned (at most {@code grace}), so the work in progress (a swap, a batch being printed) completes.
 */
final class GracefulStop {
    private GracefulStop() {
    }

    /**
     * @param hookName name of the shutdown-hook thread
     * @param stop     asks the loop to return; called from the hook, so it must be safe from any thread
     * @param grace    longest time the hook holds the JVM's exit
     * @param body     the loop, and whatever must finish with it
     * @return what {@code body} returned
     */
    static <T> T run(String hookName, Runnable stop, Duration grace, Callable<T> body) throws Exception {
        CountDownLatch finished = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.run();
            try {
                finished.await(grace.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, hookName);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return body.call();
        } finally {
            // Only now may a running hook return and let the JVM halt.
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: the JVM is exiting anyway
            }
        }
    }
}
