package dev.loralego.cli;

import picocli.CommandLine;

/** Prints the project version from the jar manifest (or "dev" when run from classes). */
public final class VersionProvider implements CommandLine.IVersionProvider {
    /** The version string recorded in manifests and merged-version provenance. */
    public static String version() {
        String v = VersionProvider.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    @Override
    public String[] getVersion() {
        return new String[]{"lora-lego " + version(), "Java " + System.getProperty("java.version")};
    }
}
