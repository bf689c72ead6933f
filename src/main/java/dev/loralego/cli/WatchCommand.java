package dev.loralego.cli;

import dev.loralego.client.VersionWatcher;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code watch}: the serving-side subscriber that keeps {@code DIR/<group>} at the latest merged version. */
@Command(name = "watch", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Keeps DIR/<group> at the latest merged version of a group, for a server to load.",
                "DIR/<group> is a symbolic link, swapped atomically, to the version written as a PEFT adapter with"
                + " manifest.json under DIR/.versions/. Resumes after a restart. A version without any module (every"
                + " adapter withdrawn) holds only manifest.json; --exec then gets LORA_MODULES=0.",
                "Example: watch --group gpt2 --out /srv/adapters --exec './reload-lora.sh \"$LORA_DIR\"'"})
public final class WatchCommand implements Callable<Integer> {

    @Option(names = "--group", required = true, description = "merge group")
    String group;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "directory holding <group> and .versions/")
    Path out;

    @Option(names = "--exec", paramLabel = "CMD",
            description = "run through sh -c after each swap, with LORA_GROUP, LORA_SEQUENCE, LORA_DIR, LORA_DIGEST, LORA_MODULES set;"
                    + " a failure is logged and watching goes on")
    String exec;

    @Option(names = "--exec-timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "kill the --exec command after this long (default: ${DEFAULT-VALUE})")
    int execTimeoutSeconds;

    @Option(names = "--once", description = "exit once DIR/<group> holds the latest version the topic had at start"
            + " (waiting for a first version if there is none)")
    boolean once;

    @Option(names = "--max-wait", defaultValue = "0", paramLabel = "SECONDS",
            description = "with --once: fail after this long; 0 = no limit (default: ${DEFAULT-VALUE})")
    int maxWaitSeconds;

    @Mixin
    ClientOptionsMixin client;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (execTimeoutSeconds < 1) {
            // waitFor(0) would kill every command the moment it starts.
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--exec-timeout must be at least 1 second, got " + execTimeoutSeconds);
        }
        PrintWriter out = spec.commandLine().getOut();
        VersionWatcher watcher = new VersionWatcher(client.connect(),
                new VersionWatcher.Settings(group, this.out, exec, Duration.ofSeconds(execTimeoutSeconds)),
                s -> {
                    String exit = s.execExit() == null ? "" : ", --exec exited with " + s.execExit();
                    if (s.modules() == 0) {
                        out.printf(Locale.ROOT, "group %s: version %d has no module (every adapter was withdrawn): %s holds"
                                + " only manifest.json, no adapter to serve%s%n", s.group(), s.sequence(), s.versionDir(), exit);
                    } else {
                        out.printf(Locale.ROOT, "group %s: version %d in place at %s (%d modules, digest %s)%s%n", s.group(),
                                s.sequence(), s.versionDir(), s.modules(), s.digest(), exit);
                    }
                    out.flush();
                });
        // SIGTERM / Ctrl-C: stop polling, let a swap in progress complete, then let the JVM exit.
        GracefulStop.run("lora-lego-watch-shutdown", watcher::stop, Duration.ofSeconds(30), () -> {
            long installed = watcher.run(once, maxWaitSeconds > 0 ? Duration.ofSeconds(maxWaitSeconds) : null);
            out.printf(Locale.ROOT, "group %s: %s%n", group, installed < 0 ? "no version installed"
                    : "version " + installed + " installed at " + watcher.link());
            out.flush();
            return installed;
        });
        return 0;
    }
}
