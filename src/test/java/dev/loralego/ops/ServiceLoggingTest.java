package dev.loralego.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.Layout;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.apache.logging.log4j.core.impl.Log4jLogEvent;
import org.apache.logging.log4j.message.SimpleMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The log modes: levels of ours and Kafka's loggers, and the JSON layout producing one parseable object per line. */
class ServiceLoggingTest {
    static final ObjectMapper MAPPER = new ObjectMapper();

    @AfterEach
    void restoreTestConfiguration() {
        Configurator.reconfigure();
    }

    static String format(BuiltConfiguration config, LogEvent event) {
        config.initialize();
        Appender appender = config.getAppender(ServiceLogging.APPENDER);
        Layout<?> layout = appender.getLayout();
        return new String(layout.toByteArray(event), StandardCharsets.UTF_8);
    }

    static LogEvent event(String message, Throwable thrown) {
        return Log4jLogEvent.newBuilder().setLoggerName("dev.loralego.stream.VersionLog").setLevel(Level.WARN)
                .setThreadName("stream \"thread\" 1").setMessage(new SimpleMessage(message)).setThrown(thrown)
                .setTimeMillis(1_700_000_000_123L).build();
    }

    @Test
    void jsonModeWritesOneObjectPerLineWithEscapedMessageAndStackTrace() throws Exception {
        String message = "version \"7\" of group\tg\nsecond line \\ done";
        String line = format(ServiceLogging.build(false, true), event(message, new IllegalStateException("boom \"x\"")));
        assertTrue(line.endsWith(System.lineSeparator()), line);
        String body = line.substring(0, line.length() - System.lineSeparator().length());
        assertFalse(body.contains("\n"), "a single line: " + body);
        JsonNode j = MAPPER.readTree(body);
        assertEquals(message, j.get("message").asText());
        assertEquals("WARN", j.get("level").asText());
        assertEquals("dev.loralego.stream.VersionLog", j.get("logger").asText());
        assertEquals("stream \"thread\" 1", j.get("thread").asText());
        assertEquals(1_700_000_000_123L, OffsetDateTime.parse(j.get("time").asText()).toInstant().toEpochMilli());
        assertTrue(j.get("exception").asText().startsWith("java.lang.IllegalStateException: boom \"x\""), j.get("exception").asText());
        assertTrue(j.get("exception").asText().contains("\n\tat "), "stack trace kept, escaped");
    }

    @Test
    void jsonModeOmitsExceptionFieldWithoutOne() throws Exception {
        String line = format(ServiceLogging.build(false, true), event("plain", null));
        JsonNode j = MAPPER.readTree(line.strip());
        assertEquals("plain", j.get("message").asText());
        assertFalse(j.has("exception"), line);
    }

    @Test
    void plainModeIsThePattern() {
        String line = format(ServiceLogging.build(false, false), event("hello", null));
        assertTrue(line.matches("\\d\\d:\\d\\d:\\d\\d\\.\\d{3} WARN  VersionLog - hello\\R"), line);
    }

    /**
     * {@code run --quiet} and {@code --json} show no more of Kafka than {@code run} without them: every logger the
     * shipped {@code log4j2.xml} raises keeps at least that level in every mode ({@code --quiet} printed
     * {@code StreamsConfig}'s start-up warnings that the default hides).
     */
    @Test
    void noModeShowsKafkaLoggersTheDefaultConfigurationSilences() throws Exception {
        org.w3c.dom.Document xml;
        try (java.io.InputStream in = ServiceLogging.class.getResourceAsStream("/log4j2.xml")) {
            xml = javax.xml.parsers.DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(in);
        }
        org.w3c.dom.NodeList loggers = xml.getElementsByTagName("Logger");
        int checked = 0;
        for (int i = 0; i < loggers.getLength(); i++) {
            org.w3c.dom.Element logger = (org.w3c.dom.Element) loggers.item(i);
            String name = logger.getAttribute("name");
            if (name.startsWith("dev.loralego")) continue; // ours: the modes choose
            Level level = Level.valueOf(logger.getAttribute("level"));
            for (boolean[] mode : new boolean[][] {{true, false}, {false, true}, {true, true}}) {
                BuiltConfiguration config = ServiceLogging.build(mode[0], mode[1]);
                config.initialize(); // before it, every name resolves to a default root at ERROR
                Level inMode = config.getLoggerConfig(name).getLevel();
                assertTrue(inMode.isMoreSpecificThan(level), name + " is at " + inMode + " in mode quiet=" + mode[0]
                        + " json=" + mode[1] + ", " + level + " in log4j2.xml");
            }
            checked++;
        }
        assertTrue(checked >= 3, "Kafka loggers in log4j2.xml: " + checked);
    }

    @Test
    void quietKeepsOnlyOurWarningsAndNoModeShowsKafkaInternalsAtInfo() {
        ServiceLogging.configure(true, false);
        assertFalse(LogManager.getLogger("dev.loralego.stream.MergeService").isInfoEnabled());
        assertTrue(LogManager.getLogger("dev.loralego.stream.MergeService").isWarnEnabled());
        assertFalse(LogManager.getLogger("org.apache.kafka.streams.KafkaStreams").isInfoEnabled());
        assertFalse(LogManager.getLogger("org.apache.kafka.controller.QuorumController").isWarnEnabled());

        ServiceLogging.configure(false, true);
        assertTrue(LogManager.getLogger("dev.loralego.stream.MergeService").isInfoEnabled());
        assertFalse(LogManager.getLogger("kafka.server.BrokerServer").isInfoEnabled());
        assertFalse(LogManager.getLogger("org.apache.kafka.clients.NetworkClient").isWarnEnabled());
        assertTrue(LogManager.getLogger("org.apache.kafka.clients.NetworkClient").isErrorEnabled());
    }
}
