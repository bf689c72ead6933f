package dev.loralego.stream;

/** The version of this build, recorded in every manifest. */
public final class ServiceVersion {
    private ServiceVersion() {
    }

    /** From the jar manifest, or {@code dev} when run from classes. */
    public static String get() {
        String v = ServiceVersion.class.getPackage().getImplementationVersion();
        return "lora-lego " + (v == null ? "dev" : v);
    }
}
