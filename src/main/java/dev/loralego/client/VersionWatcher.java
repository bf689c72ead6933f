package dev.loralego.client;

import dev.loralego.kafka.TopicScan;

import dev.loralego.avro.MergedLayer;
import dev.loralego.avro.MergedVersionManifest;
import dev.loralego.avro.ModuleRef;
import dev.loralego.peft.AtomicFiles;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The serving-side subscriber ({@code watch}): keeps {@code ROOT/<group>} pointing at the latest merged
 * version of a group as a PEFT adapter directory with {@code manifest.json} beside it, for vLLM, LoRAX or
 * PEFT to hot-load.
 *
 * <p>Layout and swap: each version is written into {@code ROOT/.versions/.tmp-...}, verified
 * ({@link PeftExport}: every module's digest read back from the file), renamed to
 * {@code ROOT/.versions/<group>-<sequence>}, and then {@code ROOT/<group>} — a symbolic link with the
 * relative target {@code .versions/<group>-<sequence>} — is replaced by renaming a new link over it, which
 * is atomic on POSIX file systems (a reader sees the old or the new version, never a mix; a real directory
 * could not be replaced atomically). Afterwards every version directory of the group except the new one and
 * the one the link pointed to before is deleted, so a server still loading the previous version keeps it.
 * A version without any module (every adapter withdrawn) is written as a directory holding only
 * {@code manifest.json} (logged as a warning), so that the link does not keep serving withdrawn adapters and a
 * server hook can unload the adapter ({@code LORA_MODULES=0}).
 *
 * <p>One watcher per root and group: {@link #run} holds a lock on {@code ROOT/.<group>.watch.lock} and refuses
 * to start while another process (or thread) holds it.
 *
 * <p>After each swap an optional command runs through {@code sh -c} with the environment variables
 * {@code LORA_GROUP}, {@code LORA_SEQUENCE}, {@code LORA_DIR} (the version directory, absolute and resolved),
 * {@code LORA_DIGEST} and {@code LORA_MODULES} (the number of modules; 0 for a version without any); its output goes to this process's output; a failing or timed-out command is logged
 * and watching goes on. A watcher stopped between a swap and its command runs the command at its next start.
 *
 * <p>Input: {@code lora.merged.versions} (only key {@code group}, the latest manifest: intermediate versions
 * that arrive together are skipped, the directory always converges to the latest; nothing is installed before the
 * topic has been read to where it ended when watching started, so a watch that starts behind installs only the
 * latest version) and
 * {@code lora.merged.layers} (keys {@code group|module}), both read {@code read_committed} from the
 * beginning without a consumer group. A manifest is applied once each of its modules has a layer with the
 * manifest's digest; until then polling goes on. Only layers that can still be needed are kept in memory:
 * the target manifest's, and those newer than it. A restart resumes where it left off: the sequence of
 * {@code ROOT/<group>/manifest.json}, if present, is the installed one and only higher sequences are applied.
 * A version whose layers contradict its manifest (shape, byte count or digest of the bytes) is never linked:
 * it is logged and skipped until a newer version arrives (with {@code once} it is an error). A record written with a
 * schema this jar does not ship (a newer service) makes the watcher load the schemas topic again.
 */
public final class VersionWatcher {
    private static final Logger LOG = LoggerFactory.getLogger(VersionWatcher.class);
    /** Name of the directory below the root that holds the version directories. */
    public static final String VERSIONS_DIR = ".versions";
    private static final Duration POLL = Duration.ofMillis(300);

    /**
     * What to watch and where to put it.
     *
     * @param group       merge group
     * @param root        the directory that holds {@code <group>} and {@code .versions}
     * @param execCommand command run through {@code sh -c} after each swap, or null
     * @param execTimeout longest time the command may run before it is killed
     */
    public record Settings(String group, Path root, String execCommand, Duration execTimeout) {
        public Settings {
            MergeGroups.check(group);
            Objects.requireNonNull(root, "root");
            if (execCommand != null && execCommand.isBlank()) execCommand = null;
            Objects.requireNonNull(execTimeout, "execTimeout");
            if (execTimeout.isNegative() || execTimeout.isZero()) {
                throw new IllegalArgumentException("execTimeout must be > 0, got " + execTimeout);
            }
        }
    }

    /**
     * One completed swap.
     *
     * @param group      merge group
     * @param sequence   the version now in place
     * @param versionDir its directory (absolute)
     * @param digest     the version's whole digest
     * @param modules    number of modules
     * @param execExit   exit code of the command, or null if none ran (or it could not start / timed out)
     */
    public record Swap(String group, long sequence, Path versionDir, String digest, int modules, Integer execExit) {
    }

    /** Told about every swap, on the watching thread. */
    @FunctionalInterface
    public interface Listener {
        void swapped(Swap swap);
    }

    private final ClientConnection connection;
    private final Settings settings;
    private final Listener listener;
    private final Path root;
    private final Path versionsDir;
    private final Path link;
    private final Pattern versionName;
    private final PublishedSchemas schemas;
    private volatile boolean stopped;
    /** Sequence under the link, -1 if none. */
    private volatile long installed = -1;
    private volatile KafkaConsumer<byte[], byte[]> consumer;

    /** A watcher; nothing happens until {@link #run}. */
    public VersionWatcher(ClientConnection connection, Settings settings, Listener listener) {
        this.connection = Objects.requireNonNull(connection, "connection");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.listener = listener == null ? s -> { } : listener;
        this.root = settings.root().toAbsolutePath().normalize();
        this.versionsDir = root.resolve(VERSIONS_DIR);
        this.link = root.resolve(settings.group());
        this.versionName = Pattern.compile(Pattern.quote(settings.group()) + "-(\\d+)");
        this.schemas = new PublishedSchemas(connection);
    }

    /** The link {@code ROOT/<group>} that servers load from. */
    public Path link() {
        return link;
    }

    /**
     * The sequence installed under {@link #link()} ({@code manifest.json} through the link), or -1 if none.
     *
     * @throws IllegalStateException if {@code ROOT/<group>} exists but is not a symbolic link, or its manifest
     *                               belongs to another group
     */
    public long installedSequence() throws IOException {
        if (Files.exists(link, LinkOption.NOFOLLOW_LINKS) && !Files.isSymbolicLink(link)) {
            throw new IllegalStateException(link + " exists and is not a symbolic link (watch keeps a link there that it"
                    + " swaps atomically); move it away first");
        }
        Path manifest = link.resolve(ManifestJson.FILE_NAME);
        if (!Files.isRegularFile(manifest)) return -1;
        MergedVersionManifest m = ManifestJson.read(manifest);
        if (!m.getGroup().equals(settings.group())) {
            throw new IllegalStateException(manifest + " belongs to merge group '" + m.getGroup() + "', not '"
                    + settings.group() + "'");
        }
        return m.getSequence();
    }

    /** Asks {@link #run} to return; safe from any thread (e.g. a shutdown hook). A swap in progress completes. */
    public void stop() {
        stopped = true;
        KafkaConsumer<byte[], byte[]> c = consumer;
        if (c != null) c.wakeup();
    }

    /**
     * Watches until {@link #stop()} (a wakeup while blocked in Kafka ends it quietly), or with {@code once} until the link holds a version at least as new as
     * the latest one on the versions topic when watching started (waiting for a first version if there is
     * none).
     *
     * @param maxWait with {@code once}: the longest time to wait (null: no limit)
     * @return the sequence installed when it returns (-1: none)
     * @throws IllegalStateException if {@code once} and {@code maxWait} passed first, or the topics do not exist
     */
    public long run(boolean once, Duration maxWait) throws IOException {
        Files.createDirectories(versionsDir);
        // One watcher per DIR and group: a second one would delete the first's version being written (as a stale
        // temporary) and, applying the same version, delete the directory the link serves before replacing it.
        Path lockFile = root.resolve("." + settings.group() + ".watch.lock");
        try (FileChannel lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = tryLock(lockChannel)) {
            if (lock == null) {
                throw new IllegalStateException("another watch of group '" + settings.group() + "' is running on " + root
                        + " (it holds " + lockFile + "); run one watch per directory and group");
            }
            return runLocked(once, maxWait);
        }
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) {
            return null; // held by this JVM
        }
    }

    private long runLocked(boolean once, Duration maxWait) throws IOException {
        removeStaleTemporaries();
        installed = installedSequence();
        if (installed >= 0) LOG.info("group {}: version {} is installed at {}", settings.group(), installed, link);
        runPendingCommand();
        // Schemas this jar does not ship are loaded from the schemas topic when a record needs one (decode), not up
        // front: against a broker that does not answer, that would cost a second timeout.
        String versionsTopic = connection.topics().mergedVersions();
        String layersTopic = connection.topics().mergedLayers();
        String groupKey = settings.group();
        String layerPrefix = groupKey + "|";
        long deadline = maxWait == null ? Long.MAX_VALUE : System.nanoTime() + maxWait.toNanos();

        try (KafkaConsumer<byte[], byte[]> c = connection.newConsumer("lora-lego-watch-" + groupKey)) {
            consumer = c;
            if (stopped) return installed;
            List<TopicPartition> versionParts = TopicScan.partitions(c, versionsTopic, connection.timeout());
            List<TopicPartition> parts = new ArrayList<>(versionParts);
            parts.addAll(TopicScan.partitions(c, layersTopic, connection.timeout()));
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> versionsEnd = c.endOffsets(versionParts, connection.timeout());
            LOG.info("group {}: watching {} and {} from the beginning (installed: {})", groupKey, versionsTopic, layersTopic,
                    installed < 0 ? "none" : installed);
            boolean caughtUp = false;
            long latestAtStart = -1;
            MergedVersionManifest target = null;
            long reportedWaiting = -1;
            long failed = -1;
            // module -> digest -> layer: the layers that may still be needed (see the class comment)
            Map<String, Map<String, MergedLayer>> layers = new TreeMap<>();

            while (!stopped) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) {
                    if (r.key() == null || r.value() == null) continue;
                    String key = new String(r.key(), StandardCharsets.UTF_8);
                    if (r.topic().equals(versionsTopic)) {
                        if (!key.equals(groupKey)) continue;
                        MergedVersionManifest m = decode(r, () -> connection.serdes().mergedVersion().deserializer()
                                .deserialize(versionsTopic, r.value()));
                        if (m != null && (target == null || m.getSequence() > target.getSequence())) {
                            target = m;
                            prune(layers, target);
                        }
                    } else if (key.startsWith(layerPrefix)) {
                        MergedLayer layer = decode(r, () -> connection.serdes().mergedLayer().deserializer()
                                .deserialize(layersTopic, r.value()));
                        if (layer == null || layer.getRank() == 0) continue;
                        if (!key.equals(layer.getGroup() + "|" + layer.getModule())) {
                            LOG.warn("{}-{}@{}: key '{}' does not match the layer's group|module; ignored", r.topic(),
                                    r.partition(), r.offset(), key);
                            continue;
                        }
                        if (mayBeNeeded(layer, target)) {
                            layers.computeIfAbsent(layer.getModule(), k -> new HashMap<>()).put(layer.getDigest(), layer);
                        }
                    }
                }
                if (!caughtUp && reached(c, versionsEnd)) {
                    caughtUp = true;
                    latestAtStart = target == null ? -1 : target.getSequence();
                }
                // Nothing is installed before the versions topic has been read to its end as of the start: a watch that
                // starts behind goes straight to the latest version instead of swapping (and running the command)
                // through every stale one on the way.
                if (caughtUp && target != null && target.getSequence() > installed && target.getSequence() != failed) {
                    SortedMap<String, MergedLayer> chosen = available(target, layers);
                    if (chosen != null) {
                        try {
                            apply(target, chosen);
                        } catch (IllegalStateException e) {
                            // A version whose content contradicts its manifest: never serve it; wait for a newer one.
                            if (once) throw e;
                            failed = target.getSequence();
                            LOG.error("group {}: version {} skipped: {}", groupKey, failed, e.getMessage());
                        }
                    } else if (caughtUp && reportedWaiting != target.getSequence()) {
                        reportedWaiting = target.getSequence();
                        LOG.info("group {}: version {} is waiting for merged layers of {}", groupKey, target.getSequence(),
                                missing(target, layers));
                    }
                }
                if (once && caughtUp && installed >= 0 && installed >= latestAtStart) break;
                if (once && System.nanoTime() > deadline) {
                    throw new IllegalStateException("group '" + groupKey + "': no new version in place within "
                            + maxWait.toSeconds() + " s" + (target == null ? " (no version on " + versionsTopic + ")"
                            : " (latest seen " + target.getSequence() + ", waiting for its layers: " + missing(target, layers) + ")"));
                }
            }
        } catch (WakeupException e) {
            if (!stopped) throw e;
        } finally {
            consumer = null;
        }
        return installed;
    }

    /** A layer can be needed if it is newer than the target, or it is the target's layer of its module. */
    private static boolean mayBeNeeded(MergedLayer layer, MergedVersionManifest target) {
        if (target == null || layer.getSequence() > target.getSequence()) return true;
        for (ModuleRef m : target.getModules()) {
            if (m.getModule().equals(layer.getModule())) return m.getDigest().equals(layer.getDigest());
        }
        return false;
    }

    /**
     * Drops layers no version from {@code target} on can use: a later version's module is either unchanged
     * (the target's layer) or newly merged (a layer with a higher sequence).
     */
    private static void prune(Map<String, Map<String, MergedLayer>> layers, MergedVersionManifest target) {
        for (Map<String, MergedLayer> byDigest : layers.values()) {
            byDigest.values().removeIf(l -> !mayBeNeeded(l, target));
        }
        layers.values().removeIf(Map::isEmpty);
    }

    private static SortedMap<String, MergedLayer> available(MergedVersionManifest target, Map<String, Map<String, MergedLayer>> layers) {
        SortedMap<String, MergedLayer> chosen = new TreeMap<>();
        for (ModuleRef m : target.getModules()) {
            Map<String, MergedLayer> byDigest = layers.get(m.getModule());
            MergedLayer l = byDigest == null ? null : byDigest.get(m.getDigest());
            if (l == null) return null;
            chosen.put(m.getModule(), l);
        }
        return chosen;
    }

    private static List<String> missing(MergedVersionManifest target, Map<String, Map<String, MergedLayer>> layers) {
        List<String> out = new ArrayList<>();
        for (ModuleRef m : target.getModules()) {
            Map<String, MergedLayer> byDigest = layers.get(m.getModule());
            if (byDigest == null || !byDigest.containsKey(m.getDigest())) out.add(m.getModule());
        }
        return out;
    }

    private static boolean reached(KafkaConsumer<byte[], byte[]> c, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (c.position(e.getKey()) < e.getValue()) return false;
        }
        return true;
    }

    private <T> T decode(ConsumerRecord<byte[], byte[]> r, java.util.function.Supplier<T> decoder) {
        try {
            // A schema id this jar does not ship (the service was upgraded while watching): look it up on the
            // schemas topic, where the service publishes its schemas, instead of skipping every new version.
            return schemas.decode(decoder);
        } catch (RuntimeException e) {
            LOG.warn("{}-{}@{}: undecodable record skipped: {}", r.topic(), r.partition(), r.offset(), e.getMessage());
            return null;
        }
    }

    /** Writes, verifies and links version {@code m}, cleans old versions, runs the command. */
    private void apply(MergedVersionManifest m, SortedMap<String, MergedLayer> layers) throws IOException {
        String group = settings.group();
        String name = group + "-" + m.getSequence();
        Path temp = versionsDir.resolve(".tmp-" + name + "-" + UUID.randomUUID());
        Path finalDir = versionsDir.resolve(name);
        try {
            if (m.getModules().isEmpty()) {
                Files.createDirectories(temp);
                ManifestJson.write(temp.resolve(ManifestJson.FILE_NAME), m);
            } else {
                PeftExport.write(temp, m, layers);
            }
            if (Files.exists(finalDir, LinkOption.NOFOLLOW_LINKS)) deleteTree(finalDir); // left by a crash before linking
            Files.move(temp, finalDir, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            if (Files.exists(temp, LinkOption.NOFOLLOW_LINKS)) deleteTree(temp);
        }
        String previous = Files.isSymbolicLink(link) ? Files.readSymbolicLink(link).getFileName().toString() : null;
        // the command is owed from the swap on: a watch stopped before it ran runs it at its next start
        if (settings.execCommand() != null) {
            AtomicFiles.write(pendingFile(), Long.toString(m.getSequence()).getBytes(StandardCharsets.UTF_8));
        }
        Path tempLink = root.resolve("." + group + ".link-" + UUID.randomUUID());
        try {
            Files.createSymbolicLink(tempLink, Path.of(VERSIONS_DIR, name));
            // rename(2) of a link over the old link: readers see the old or the new target, nothing between.
            Files.move(tempLink, link, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tempLink);
        }
        if (m.getModules().isEmpty()) {
            LOG.warn("group {}: version {} has no module (every adapter was withdrawn): {} now holds only {}, no adapter;"
                    + " the --exec command gets LORA_MODULES=0 (unload the adapter there)", group, m.getSequence(), link,
                    ManifestJson.FILE_NAME);
        } else {
            LOG.info("group {}: version {} in place at {} ({} modules, digest {})", group, m.getSequence(), link,
                    m.getModules().size(), m.getDigest());
        }
        installed = m.getSequence();
        removeOldVersions(name, previous);
        Integer exit = null;
        if (settings.execCommand() != null) {
            exit = runCommand(m, finalDir.toRealPath());
            Files.deleteIfExists(pendingFile());
        }
        listener.swapped(new Swap(group, m.getSequence(), finalDir, m.getDigest(), m.getModules().size(), exit));
    }

    /**
     * {@code ROOT/.<group>.exec-pending}: the sequence of a version whose {@code --exec} command is owed, written
     * before its link is swapped in and deleted once the command has run (whatever its exit).
     */
    private Path pendingFile() {
        return root.resolve("." + settings.group() + ".exec-pending");
    }

    /**
     * At start: a watch stopped (killed) between a swap and its command leaves the command owed for the installed
     * version; it runs now, so the server is not left on the version before. A pending mark for another sequence is
     * a swap that never happened (its version is applied again, command included) and is dropped.
     */
    private void runPendingCommand() throws IOException {
        Path pending = pendingFile();
        if (!Files.isRegularFile(pending, LinkOption.NOFOLLOW_LINKS)) return;
        String owed = Files.readString(pending, StandardCharsets.UTF_8).trim();
        if (settings.execCommand() != null && installed >= 0 && owed.equals(Long.toString(installed))) {
            LOG.warn("group {}: the --exec command of version {} did not run (watch stopped after the swap); running it now",
                    settings.group(), installed);
            runCommand(ManifestJson.read(link.resolve(ManifestJson.FILE_NAME)), link.toRealPath());
        }
        Files.deleteIfExists(pending);
    }

    private void removeOldVersions(String current, String previous) throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(versionsDir)) {
            for (Path p : entries) {
                String n = p.getFileName().toString();
                Matcher matcher = versionName.matcher(n);
                if (matcher.matches() && !n.equals(current) && !n.equals(previous)) {
                    deleteTree(p);
                    LOG.debug("removed old version directory {}", p);
                }
            }
        }
    }

    private void removeStaleTemporaries() throws IOException {
        Pattern tempVersion = Pattern.compile("\\.tmp-" + Pattern.quote(settings.group()) + "-\\d+-[0-9a-f-]{36}");
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(versionsDir)) {
            for (Path p : entries) {
                if (tempVersion.matcher(p.getFileName().toString()).matches()) deleteTree(p);
            }
        }
        String tempLink = "." + settings.group() + ".link-";
        String tempPending = "." + pendingFile().getFileName() + "."; // AtomicFiles' temporaries of the pending mark
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path p : entries) {
                String n = p.getFileName().toString();
                if (n.startsWith(tempLink) || (n.startsWith(tempPending) && n.endsWith(".tmp"))) Files.deleteIfExists(p);
            }
        }
    }

    private Integer runCommand(MergedVersionManifest m, Path dir) {
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", settings.execCommand()).inheritIO();
        Map<String, String> env = pb.environment();
        env.put("LORA_GROUP", settings.group());
        env.put("LORA_SEQUENCE", Long.toString(m.getSequence()));
        env.put("LORA_DIR", dir.toString());
        env.put("LORA_DIGEST", m.getDigest());
        env.put("LORA_MODULES", Integer.toString(m.getModules().size()));
        try {
            Process p = pb.start();
            if (!p.waitFor(settings.execTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                LOG.warn("group {}: --exec command did not finish within {} s after version {}; killed", settings.group(),
                        settings.execTimeout().toSeconds(), m.getSequence());
                return null;
            }
            int code = p.exitValue();
            if (code != 0) {
                LOG.warn("group {}: --exec command exited with {} after version {}; watching goes on", settings.group(), code,
                        m.getSequence());
            }
            return code;
        } catch (IOException e) {
            LOG.warn("group {}: --exec command could not start: {}", settings.group(), e.getMessage());
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            LOG.warn("group {}: interrupted while the --exec command ran", settings.group());
            return null;
        }
    }

    /** Deletes a directory tree without following symbolic links. */
    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) throw e;
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
