package dev.loralego.stream;

/**
 * Algorithm parameters that may differ from one version of a group to the next. The live service has one set per
 * group (its configuration, whatever the version); a replay ({@link ReplayAudit}) gives each version the parameters its
 * recorded manifest names, so a history whose configuration changed along the way (a new {@code k}, another output
 * dtype after an upgrade) replays as it was made. The sequencer asks for the parameters of the version an event
 * would become.
 */
@FunctionalInterface
public interface VersionParameters {

    /** The parameters for the event that would become version {@code sequence} of {@code group}. */
    MergeParameters forVersion(String group, long sequence);
}
