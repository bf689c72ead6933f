package dev.loralego.stream;

import dev.loralego.avro.DeadLetter;

/**
 * Told about every record the service sends to the dead-letter topic (metrics, alerting). It runs on the
 * stream thread inside processing, so it must be quick and must not throw; it never influences content.
 * Under exactly-once a task whose transaction aborts re-processes its records, so a rejection may be
 * reported more than once: counts derived from it are "rejections processed", not "records committed".
 */
@FunctionalInterface
public interface DeadLetterListener {
    /** {@code letter} (reason, source topic/partition/offset, group) was just forwarded to the dead-letter sink. */
    void deadLettered(DeadLetter letter);
}
