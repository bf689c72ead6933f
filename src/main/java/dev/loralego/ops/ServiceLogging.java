package dev.loralego.ops;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.AppenderComponentBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

/**
 * The log modes of {@code run}: the default (our INFO lines, one per event, human-readable), {@code --quiet}
 * (our warnings and errors only) and {@code --json} (one JSON object per line, for log shippers). Applied by
 * replacing the log4j2 configuration programmatically ({@link Configurator#reconfigure}).
 *
 * <p>Every mode keeps Kafka's and the embedded broker's internals at WARN (the controller, the network
 * client and {@code StreamsConfig} at ERROR, whose warnings during start-up and rebalances are routine), as the
 * default configuration ({@code log4j2.xml}) does, so the CLI never dumps broker internals at INFO. Logs go to stderr; stdout stays for the command's own output.
 *
 * <p>JSON lines come from a {@code PatternLayout} whose fields go through its {@code %enc{...}{JSON}}
 * escaping: {@code time} (ISO-8601 with offset), {@code level}, {@code logger}, {@code thread},
 * {@code message}, and {@code exception} (the stack trace) when there is one. A pattern rather than
 * log4j's JsonTemplateLayout: that layout finds its resolvers through a plugin cache file that the shaded
 * jar would have to merge, and one JSON object per line is all a log shipper needs.
 */
public final class ServiceLogging {
    /** Name of the console appender every mode configures. */
    public static final String APPENDER = "stderr";
    /** Plain layout (the CLI's default). */
    public static final String PLAIN_PATTERN = "%d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n";
    /** One JSON object per line. */
    public static final String JSON_PATTERN = "{\"time\":\"%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX}\",\"level\":\"%level\","
            + "\"logger\":\"%enc{%c}{JSON}\",\"thread\":\"%enc{%t}{JSON}\",\"message\":\"%enc{%m}{JSON}\""
            + "%notEmpty{,\"exception\":\"%enc{%ex}{JSON}\"}}%n";

    private ServiceLogging() {
    }

    /**
     * Replaces the current log4j2 configuration.
     *
     * @param quiet only warnings and errors of our own code
     * @param json  one JSON object per line instead of the plain pattern
     * @return the configuration now in force
     */
    public static BuiltConfiguration configure(boolean quiet, boolean json) {
        BuiltConfiguration config = build(quiet, json);
        Configurator.reconfigure(config);
        return config;
    }

    /** The configuration of a mode, not applied. */
    public static BuiltConfiguration build(boolean quiet, boolean json) {
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setConfigurationName("lora-lego-run" + (quiet ? "-quiet" : "") + (json ? "-json" : ""));
        b.setStatusLevel(Level.WARN);
        AppenderComponentBuilder console = b.newAppender(APPENDER, "Console")
                .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
                .add(b.newLayout("PatternLayout")
                        .addAttribute("pattern", json ? JSON_PATTERN : PLAIN_PATTERN)
                        .addAttribute("alwaysWriteExceptions", !json));
        b.add(console);
        b.add(b.newLogger("dev.loralego", quiet ? Level.WARN : Level.INFO).addAttribute("additivity", true));
        b.add(b.newLogger("org.apache.kafka.controller", Level.ERROR));
        b.add(b.newLogger("org.apache.kafka.clients.NetworkClient", Level.ERROR));
        // as log4j2.xml: its warning about the global thread's exception handler comes at every start and asks
        // for nothing this service uses (no global stores)
        b.add(b.newLogger("org.apache.kafka.streams.StreamsConfig", Level.ERROR));
        b.add(b.newRootLogger(Level.WARN).add(b.newAppenderRef(APPENDER)));
        return b.build(false);
    }
}
