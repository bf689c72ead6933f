package dev.loralego.client;

/**
 * The rules a merge group name follows on the client side. The name is part of record keys
 * ({@code group}, {@code group|module}, {@code group@sequence}) and of the directory names {@code watch}
 * writes, so the separators {@code | @} and path characters are refused.
 */
public final class MergeGroups {
    private MergeGroups() {
    }

    /**
     * @return {@code group}
     * @throws IllegalArgumentException naming the problem if it is blank, starts with '.', or holds
     *                                  {@code | @ / \}, whitespace or control characters
     */
    public static String check(String group) {
        if (group == null || group.isBlank()) throw new IllegalArgumentException("merge group name must not be blank");
        if (group.startsWith(".")) throw new IllegalArgumentException("merge group '" + group + "' must not start with '.'");
        for (int i = 0; i < group.length(); i++) {
            char c = group.charAt(i);
            if (c == '|' || c == '@' || c == '/' || c == '\\' || Character.isWhitespace(c) || Character.isISOControl(c)) {
                throw new IllegalArgumentException("merge group '" + group + "' must not contain " + printable(c)
                        + " ('|' and '@' separate key parts, '/' and '\\' path parts; no whitespace or control characters)");
            }
        }
        return group;
    }

    /**
     * @return {@code adapterId}
     * @throws IllegalArgumentException if it is blank or holds '|' (the service refuses such ids)
     */
    public static String checkAdapterId(String adapterId) {
        if (adapterId == null || adapterId.isBlank() || adapterId.contains("|")) {
            throw new IllegalArgumentException("adapter id must be non-blank and contain no '|', got '" + adapterId + "'");
        }
        return adapterId;
    }

    /**
     * The transactional id of the publishes of {@code adapterId} in {@code group}:
     * {@code lora-lego-publish-<group>|<adapterId>}. Neither part may hold {@code |}, so the id names one pair only
     * (with {@code -} as the separator, group {@code llama} with adapter {@code team-math} and group
     * {@code llama-team} with adapter {@code math} shared one id and fenced each other's publishes), and a prefix ACL
     * on {@link #publishTransactionalIdPrefix} covers one group's publishes and no other group's.
     */
    public static String publishTransactionalId(String group, String adapterId) {
        return publishTransactionalIdPrefix(group) + checkAdapterId(adapterId);
    }

    /** {@code lora-lego-publish-<group>|}: the prefix of every transactional id of the group's publishes. */
    public static String publishTransactionalIdPrefix(String group) {
        return "lora-lego-publish-" + check(group) + "|";
    }

    private static String printable(char c) {
        if (c == ' ') return "a space";
        if (c == '\t') return "a tab";
        return Character.isISOControl(c) || Character.isWhitespace(c)
                ? String.format("the character U+%04X", (int) c) : "'" + c + "'";
    }
}
