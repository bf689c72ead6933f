package dev.loralego.cli;

import dev.loralego.kafka.EmbeddedKafkaBroker;
import dev.loralego.kafka.TopicNames;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code run} on the embedded broker when the service cannot start (here: the layers topic has another partition
 * count than {@code --partitions}): the command fails with the reason, and the broker it started is stopped, not left
 * running (holding its port and data directory) behind a failed command.
 */
class RunCommandStartFailureTest {

    /**
     * A second {@code run} on the data directory of a running one (started twice by mistake, or restarted while the old
     * process is still stopping) must fail before Kafka touches the directory: Kafka's own start fails only at the log
     * directory lock, after its controller has opened the same metadata log, and the running broker could no longer
     * create a topic afterwards (TimeoutException).
     */
    @Test
    void aSecondRunOnADataDirectoryInUseFailsAndLeavesTheRunningBrokerWorking(@TempDir Path tmp) throws Exception {
        try (EmbeddedKafkaBroker running = EmbeddedKafkaBroker.start(tmp.resolve("kafka"), 0);
             Admin admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, running.bootstrapServers()))) {
            String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Path log = tmp.resolve("second-run.log");
            Process second = new ProcessBuilder(javaBin, "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                    LoraLegoCommand.class.getName(), "run", "--data-dir", tmp.toString(), "--embedded-port", "0", "--http-port", "0")
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            boolean done = second.waitFor(120, java.util.concurrent.TimeUnit.SECONDS);
            if (!done) second.destroyForcibly().waitFor();
            String out = java.nio.file.Files.readString(log);
            assertTrue(done, () -> "the second run did not stop:\n" + out);
            assertEquals(1, second.exitValue(), out);
            assertTrue(out.contains("error: data directory " + tmp.resolve("kafka").toAbsolutePath() + " is in use by another Kafka broker"), out);
            admin.createTopics(List.of(new NewTopic("created-after", 1, (short) 1))).all().get(30, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void aTakenHttpPortIsRefusedBeforeAnythingStarts(@TempDir Path tmp) throws Exception {
        try (ServerSocket taken = new ServerSocket(0)) {
            int port = taken.getLocalPort();
            CommandRun run = CommandRun.of("run", "--embedded-port", "0", "--data-dir", tmp.toString(),
                    "--http-port", Integer.toString(port), "--quiet");
            assertEquals(1, run.exit(), run::toString);
            assertTrue(run.err().contains("could not serve HTTP on port " + port + ": "), run::toString);
            assertTrue(run.err().contains("(--http-port PORT, or 0 for none)"), run::toString);
            assertTrue(!java.nio.file.Files.exists(tmp.resolve("kafka")), "no broker was started: " + run);
        }
    }

    @Test
    void aServiceThatCannotStartStopsTheEmbeddedBrokerItStarted(@TempDir Path tmp) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("localhost"))) {
            port = s.getLocalPort();
        }
        try (EmbeddedKafkaBroker earlier = EmbeddedKafkaBroker.start(tmp.resolve("kafka"), port);
             Admin admin = Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, earlier.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic(TopicNames.defaults().adapterLayers(), 1, (short) 1))).all().get();
        }
        CommandRun run = CommandRun.of("run", "--embedded-port", Integer.toString(port), "--data-dir", tmp.toString(),
                "--partitions", "2", "--http-port", "0", "--quiet");
        assertEquals(1, run.exit(), run::toString);
        assertTrue(run.err().contains("topic lora.adapter.layers has 1 partitions but must have 2"), run::toString);
        // the broker is gone: its port is free again, and its data directory can be opened by the next start
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName("localhost"), port), 1);
        } catch (java.net.BindException e) {
            throw new AssertionError("the embedded broker still listens on " + port + " after the failed run: " + run, e);
        }
        try (EmbeddedKafkaBroker again = EmbeddedKafkaBroker.start(tmp.resolve("kafka"), port)) {
            assertEquals("localhost:" + port, again.bootstrapServers());
        }
    }
}
