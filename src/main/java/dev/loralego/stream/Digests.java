package dev.loralego.stream;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * SHA-256 digests used in records and manifests. Every digest is over bytes in a fixed order, so the same
 * content always has the same digest (ARCHITECTURE.md: auditors compare digests).
 */
public final class Digests {
    private Digests() {
    }

    /** Digest of a layer: the A bytes then the B bytes, exactly as they travel. */
    public static String layer(byte[] a, byte[] b) {
        MessageDigest md = sha256();
        md.update(a);
        md.update(b);
        return HexFormat.of().formatHex(md.digest());
    }

    /**
     * Digest of a whole adapter or merged version: for each module in the given order,
     * {@code name '\n' digest '\n'}.
     */
    public static String ofModules(List<String> moduleNames, List<String> moduleDigests) {
        if (moduleNames.size() != moduleDigests.size()) throw new IllegalArgumentException("names and digests differ in count");
        MessageDigest md = sha256();
        for (int i = 0; i < moduleNames.size(); i++) {
            md.update(moduleNames.get(i).getBytes(StandardCharsets.UTF_8));
            md.update((byte) '\n');
            md.update(moduleDigests.get(i).getBytes(StandardCharsets.US_ASCII));
            md.update((byte) '\n');
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 missing from this JVM", e);
        }
    }
}
