package dev.loralego.stream;

import dev.loralego.avro.MergedVersionManifest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Logs one line per emitted version: group, sequence, trigger, adapters, modules, digest, latency. */
public final class VersionLog implements VersionAssembler.VersionListener {
    private static final Logger LOG = LoggerFactory.getLogger(VersionLog.class);

    @Override
    public void versionEmitted(MergedVersionManifest m) {
        // Latency from the triggering event's timestamp to now (wall clock; for the log only, never in content).
        long latencyMs = System.currentTimeMillis() - m.getEventTimestamp();
        LOG.info("version group={} seq={} trigger={}:{}@{} adapters={} modules={} digest={} latency={}ms{}",
                m.getGroup(), m.getSequence(), m.getTrigger().getType(), m.getTrigger().getAdapterId(),
                m.getTrigger().getAdapterVersion(), m.getAdapters().size(), m.getModules().size(),
                m.getDigest().substring(0, 12), latencyMs, m.getWarnings().isEmpty() ? "" : " warnings=" + m.getWarnings());
    }
}
