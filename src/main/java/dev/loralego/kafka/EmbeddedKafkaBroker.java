package dev.loralego.kafka;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A real single-node Apache Kafka broker running inside this JVM: KRaft combined mode (one process is
 * broker and controller, {@code node.id=1}), PLAINTEXT on localhost, data in one directory.
 *
 * <p>This is the "embedded default" of ARCHITECTURE.md (Processes): with no {@code --bootstrap-servers},
 * {@code run} and {@code demo} start one of these, and the integration tests use the same class. It uses
 * Kafka's internal server API ({@link KafkaRaftServer}, {@link StorageTool} {@code format}), which is not a public,
 * compatible API: this class is the only place that touches it, and the Kafka version is pinned in the
 * pom ({@code kafka.version}).
 *
 * <p>Settings chosen for a single node and for the service's large tensor records:
 * <ul>
 *   <li>all internal topics (consumer offsets, transaction state, share-group state) at replication
 *       factor 1 and min ISR 1, so exactly-once (transactions) works on one node;</li>
 *   <li>{@code message.max.bytes} raised to {@link #DEFAULT_MAX_MESSAGE_BYTES} (overridable);</li>
 *   <li>{@code auto.create.topics.enable=false}: topics are created explicitly with the right config
 *       (see {@link TopicAdmin});</li>
 *   <li>{@code group.initial.rebalance.delay.ms=0}, so consumers and Streams start without a 3 s wait;</li>
 *   <li>a small log-cleaner dedupe buffer (the default 128 MiB would be allocated inside our heap).</li>
 * </ul>
 *
 * <p>The data directory is formatted only when it holds no {@code meta.properties}; starting again on
 * the same directory keeps every topic and record. The controller listens on a second free port that
 * is chosen anew at each start (the quorum is static, so its address is not stored in the log).
 *
 * <p>Caveat of running a broker in-process: a fatal broker fault ends the JVM (Kafka's fault handler
 * halts the process), as it would end a stand-alone broker.
 */
public final class EmbeddedKafkaBroker implements AutoCloseable {

    /** Default broker-wide {@code message.max.bytes}: 64 MiB, room for the largest LoRA module records. */
    public static final int DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

    /** The node id of the single combined broker/controller node. */
    public static final int NODE_ID = 1;

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafkaBroker.class);
    private static final String BROKER_LISTENER = "PLAINTEXT";
    private static final String CONTROLLER_LISTENER = "CONTROLLER";
    private static final String HOST = "localhost";
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);
    /** Attempts to bind when the ports are picked by us (another process may take a port in between). */
    private static final int MAX_BIND_ATTEMPTS = 3;

    private final KafkaRaftServer server;
    private final Path dataDir;
    private final int port;
    private final long startupMillis;
    private boolean closed;

    private EmbeddedKafkaBroker(KafkaRaftServer server, Path dataDir, int port, long startupMillis) {
        this.server = server;
        this.dataDir = dataDir;
        this.port = port;
        this.startupMillis = startupMillis;
    }

    /**
     * Starts a broker with the default settings; see {@link #start(Path, int, Map)}.
     *
     * @param dataDir directory of the broker's logs and metadata (created if missing)
     * @param port    PLAINTEXT port on localhost; {@code 0} picks a free port
     * @return the running broker, already answering requests
     * @throws IOException if the directory cannot be prepared or the broker does not start
     */
    public static EmbeddedKafkaBroker start(Path dataDir, int port) throws IOException {
        return start(dataDir, port, Map.of());
    }

    /**
     * Starts a broker and blocks until it answers an Admin {@code describeCluster} with itself as a node.
     *
     * @param dataDir          directory of the broker's logs and metadata; created if missing, formatted
     *                         only if it holds no {@code meta.properties} (so a restart keeps the data)
     * @param port             PLAINTEXT port on localhost; {@code 0} picks a free port
     *                         ({@link #bootstrapServers()} reports the real one)
     * @param extraBrokerProps broker properties that override the defaults (e.g. {@code message.max.bytes})
     * @return the running broker
     * @throws IOException if the directory cannot be prepared or the broker does not start in time
     */
    public static EmbeddedKafkaBroker start(Path dataDir, int port, Map<String, String> extraBrokerProps)
            throws IOException {
        Objects.requireNonNull(dataDir, "dataDir");
        Objects.requireNonNull(extraBrokerProps, "extraBrokerProps");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("broker port must be 0 (any free port) or 1..65535, got " + port);
        }
        Path dir = dataDir.toAbsolutePath();
        Files.createDirectories(dir);
        requireUnlocked(dir);
        if (port != 0) requireFree(port);
        long t0 = System.nanoTime();
        IOException last = null;
        for (int attempt = 1; attempt <= MAX_BIND_ATTEMPTS; attempt++) {
            int brokerPort = port == 0 ? freePort() : port;
            int controllerPort = freePort();
            while (controllerPort == brokerPort) {
                controllerPort = freePort();
            }
            Map<String, String> props = brokerProps(dir, brokerPort, controllerPort, extraBrokerProps);
            KafkaConfig config = new KafkaConfig(props, false);
            formatIfNeeded(dir, props);
            KafkaRaftServer server = new KafkaRaftServer(config, Time.SYSTEM);
            try {
                server.startup();
                awaitReady(HOST + ":" + brokerPort);
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                LOG.info("Embedded Kafka broker up at {}:{} (data {}) in {} ms", HOST, brokerPort, dir, millis);
                return new EmbeddedKafkaBroker(server, dir, brokerPort, millis);
            } catch (RuntimeException | IOException e) {
                stopQuietly(server);
                boolean retry = isBindFailure(e) && attempt < MAX_BIND_ATTEMPTS
                        && (port == 0 || !isBrokerPortTaken(e, brokerPort));
                if (!retry) {
                    throw new IOException("embedded Kafka broker did not start in " + dir + " on port "
                            + brokerPort + ": " + e.getMessage(), e);
                }
                LOG.warn("Embedded Kafka broker: port taken ({}), retrying with other ports", e.getMessage());
                last = new IOException(e.getMessage(), e);
            }
        }
        throw last;
    }

    /** {@code localhost:PORT}, the value for {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return HOST + ":" + port;
    }

    /** The PLAINTEXT port the broker listens on (the real one when started with port 0). */
    public int port() {
        return port;
    }

    /** The directory holding the broker's logs and metadata. */
    public Path dataDir() {
        return dataDir;
    }

    /** Milliseconds from the call to {@code start} until the broker answered (format included). */
    public long startupMillis() {
        return startupMillis;
    }

    /** Shuts the broker down cleanly and waits until it has stopped; idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        server.shutdown();
        server.awaitShutdown();
        LOG.info("Embedded Kafka broker at {} stopped", bootstrapServers());
    }

    // ---------------------------------------------------------------------------------------------

    private static Map<String, String> brokerProps(Path dir, int brokerPort, int controllerPort,
                                                   Map<String, String> extra) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("process.roles", "broker,controller");
        p.put("node.id", Integer.toString(NODE_ID));
        p.put("controller.quorum.voters", NODE_ID + "@" + HOST + ":" + controllerPort);
        p.put("listeners", BROKER_LISTENER + "://" + HOST + ":" + brokerPort + ","
                + CONTROLLER_LISTENER + "://" + HOST + ":" + controllerPort);
        p.put("advertised.listeners", BROKER_LISTENER + "://" + HOST + ":" + brokerPort);
        p.put("listener.security.protocol.map", BROKER_LISTENER + ":PLAINTEXT," + CONTROLLER_LISTENER + ":PLAINTEXT");
        p.put("inter.broker.listener.name", BROKER_LISTENER);
        p.put("controller.listener.names", CONTROLLER_LISTENER);
        p.put("log.dirs", dir.toString());
        p.put("metadata.log.dir", dir.toString());
        // One node: every internal topic at replication factor 1 and min ISR 1 (EOS v2 needs the
        // transaction state log; share groups need their state topic).
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "5");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "5");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("default.replication.factor", "1");
        p.put("min.insync.replicas", "1");
        // Consumers (and Streams) join without the default 3 s wait.
        p.put("group.initial.rebalance.delay.ms", "0");
        // Tensors travel as large records.
        p.put("message.max.bytes", Integer.toString(DEFAULT_MAX_MESSAGE_BYTES));
        // Topics are created explicitly, with the right configs.
        p.put("auto.create.topics.enable", "false");
        // The cleaner's dedupe buffer is allocated in our heap (default 128 MiB).
        p.put("log.cleaner.dedupe.buffer.size", Integer.toString(8 * 1024 * 1024));
        p.put("log.cleaner.threads", "1");
        // Fewer threads than a production broker: this one shares the JVM with the service.
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "4");
        p.put("background.threads", "2");
        p.put("server.max.startup.time.ms", Long.toString(READY_TIMEOUT.toMillis()));
        p.putAll(extra);
        return p;
    }

    private static void formatIfNeeded(Path dir, Map<String, String> props) throws IOException {
        if (Files.exists(dir.resolve("meta.properties"))) {
            LOG.debug("{} already formatted, keeping its data", dir);
            return;
        }
        // kafka-storage format reads the server config from a file: write the one we start with.
        Path configFile = Files.createTempFile("embedded-kafka-", ".properties");
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        try {
            Properties fileProps = new Properties();
            fileProps.putAll(props);
            try (var w = Files.newBufferedWriter(configFile, StandardCharsets.UTF_8)) {
                fileProps.store(w, "embedded broker, for kafka-storage format");
            }
            String[] args = {"format", "--config", configFile.toString(),
                "--cluster-id", Uuid.randomUuid().toString(), "--ignore-formatted"};
            int rc;
            try (PrintStream out = new PrintStream(sink, true, StandardCharsets.UTF_8)) {
                rc = StorageTool.execute(args, out);
            }
            if (rc != 0) {
                throw new IOException("kafka-storage format of " + dir + " exited with " + rc + ": "
                        + sink.toString(StandardCharsets.UTF_8).trim());
            }
        } catch (RuntimeException e) {
            throw new IOException("formatting the Kafka data directory " + dir + " failed: " + e.getMessage()
                    + " " + sink.toString(StandardCharsets.UTF_8).trim(), e);
        } finally {
            Files.deleteIfExists(configFile);
        }
        LOG.debug("Formatted {}: {}", dir, sink.toString(StandardCharsets.UTF_8).trim());
    }

    private static void awaitReady(String bootstrap) throws IOException {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        ap.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        try (Admin admin = Admin.create(ap)) {
            while (true) {
                try {
                    Collection<Node> nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(5000))
                            .nodes().get(10, TimeUnit.SECONDS);
                    if (nodes.stream().anyMatch(n -> n.id() == NODE_ID)) {
                        return;
                    }
                } catch (ExecutionException | TimeoutException e) {
                    LOG.debug("broker not ready yet: {}", e.toString());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for the embedded broker", e);
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("embedded Kafka broker at " + bootstrap + " did not answer within "
                            + READY_TIMEOUT.toSeconds() + " s");
                }
                try {
                    Thread.sleep(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for the embedded broker", e);
                }
            }
        }
    }

    private static void stopQuietly(KafkaRaftServer server) {
        try {
            server.shutdown();
            server.awaitShutdown();
        } catch (RuntimeException e) {
            LOG.debug("shutdown after failed start: {}", e.toString());
        }
    }

    /**
     * Fails with one clear line when {@code port} is taken, before the broker starts: the broker itself would fail
     * with a generic "fatal error" after logging pages of stack traces.
     */
    private static void requireFree(int port) throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true); // as the broker binds: a port in TIME_WAIT after a restart is free
            s.bind(new java.net.InetSocketAddress(InetAddress.getByName(HOST), port), 1);
        } catch (BindException e) {
            throw new BindException("port " + port + " on " + HOST + " is already in use (another Kafka broker, or a"
                    + " service started earlier?): choose a free port, or connect to the broker that runs there");
        }
    }

    /**
     * Fails with one clear line when another broker holds {@code dir} (Kafka's {@code .lock} file, taken by a broker in
     * this JVM or another process): Kafka's own start fails there with a fatal error that exits the JVM, this one
     * included, with the broker already running in it.
     */
    private static void requireUnlocked(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // held by a broker in this JVM
            }
            if (lock == null) {
                throw new IOException("data directory " + dir + " is in use by another Kafka broker (another run or demo"
                        + " with the same --data-dir?): stop it, or choose another data directory");
            }
            lock.release();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    private static boolean isBindFailure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BindException
                    || (t.getMessage() != null && t.getMessage().contains("Address already in use"))) {
                return true;
            }
        }
        return false;
    }

    private static boolean isBrokerPortTaken(Throwable e, int brokerPort) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && t.getMessage().contains(":" + brokerPort)) {
                return true;
            }
        }
        return false;
    }
}
