package dev.loralego.stream;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The config file shared by every command ({@code --config FILE}, Java properties): Kafka client settings
 * (e.g. {@code security.protocol}, {@code sasl.jaas.config}, {@code ssl.truststore.location}) pass through to
 * every client; {@code topic.*}, {@code lora.*} (e.g. {@code lora.group.<name>.k=32}) and
 * {@code schema.registry.*} entries are ours.
 *
 * <p>Secrets stay out of the file: a value may reference an environment variable as {@code ${env:NAME}},
 * resolved when the file is read. Values are never logged.
 */
public final class ClientSettings {
    private static final Pattern ENV_REF = Pattern.compile("\\$\\{env:([A-Za-z_][A-Za-z0-9_]*)}");

    private ClientSettings() {
    }

    /** Reads {@code file} (null: empty), resolving {@code ${env:NAME}} references. */
    public static Map<String, String> load(Path file) throws IOException {
        return load(file, System.getenv());
    }

    static Map<String, String> load(Path file, Map<String, String> env) throws IOException {
        TreeMap<String, String> out = new TreeMap<>();
        if (file == null) return out;
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        for (String name : p.stringPropertyNames()) out.put(name, resolve(name, p.getProperty(name), env));
        return out;
    }

    static String resolve(String key, String value, Map<String, String> env) {
        Matcher m = ENV_REF.matcher(value);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String v = env.get(m.group(1));
            if (v == null) {
                throw new IllegalArgumentException("config entry '" + key + "' references environment variable "
                        + m.group(1) + ", which is not set");
            }
            m.appendReplacement(sb, Matcher.quoteReplacement(v));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /** The entries meant for Kafka clients: everything but ours ({@code topic.}, {@code lora.}, {@code schema.registry.}, {@code basic.auth.}). */
    public static Map<String, String> kafkaClientEntries(Map<String, String> config) {
        TreeMap<String, String> out = new TreeMap<>();
        config.forEach((k, v) -> {
            if (!k.startsWith("topic.") && !k.startsWith("lora.") && !k.startsWith("schema.registry.")
                    && !k.startsWith("basic.auth.")) {
                out.put(k, v);
            }
        });
        return out;
    }
}
