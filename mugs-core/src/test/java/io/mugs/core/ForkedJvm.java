package io.mugs.core;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A second JVM on the test class path (the JavaCPP bounds of this one, one OpenMP thread), output merged. */
final class ForkedJvm {

    final Process process;
    final BufferedReader out;
    final StringBuilder seen = new StringBuilder();

    private ForkedJvm(Process process) {
        this.process = process;
        this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }

    static ForkedJvm start(Class<?> main, String... args) throws IOException {
        return start(List.of(), main, args);
    }

    static ForkedJvm start(List<String> jvmOptions, Class<?> main, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx1g");
        cmd.addAll(jvmOptions);
        for (String prop : List.of("org.bytedeco.javacpp.maxbytes", "org.bytedeco.javacpp.maxphysicalbytes")) {
            if (System.getProperty(prop) != null) {
                cmd.add("-D" + prop + "=" + System.getProperty(prop));
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", "1");
        return new ForkedJvm(pb.start());
    }

    /** Reads output until a line starting with {@code prefix}; fails with everything read when the process ends. */
    String waitForLine(String prefix) throws IOException {
        for (String line; (line = out.readLine()) != null; ) {
            seen.append(line).append('\n');
            if (line.startsWith(prefix)) {
                return line;
            }
        }
        throw new AssertionError("the process ended before '" + prefix + "':\n" + seen);
    }

    /** The rest of the output and the exit code, after the process ends. */
    String rest() throws IOException {
        for (String line; (line = out.readLine()) != null; ) {
            seen.append(line).append('\n');
        }
        return seen.toString();
    }

    /**
     * Sends a signal by name ("INT", "TERM") with the system's kill command. Fails at once, saying why, when this
     * process ignores SIGINT (a build started in the background by a non-interactive shell, e.g. {@code nohup mvn
     * ... &}): the forked JVM inherits that, and a SIGINT would not reach it.
     */
    void signal(String name) throws Exception {
        if (name.equals("INT") && ignoresSigint()) {
            throw new AssertionError("this JVM ignores SIGINT (SigIgn in /proc/self/status), and so does the JVM it "
                    + "forked: run the build in the foreground, not in the background of a non-interactive shell");
        }
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        if (kill.waitFor() != 0) {
            throw new AssertionError("kill -" + name + " failed");
        }
    }

    /** Whether SIGINT (signal 2) is in this process's ignored-signal mask; false where /proc is not there. */
    static boolean ignoresSigint() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return false;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("SigIgn:")) {
                return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << 1)) != 0;
            }
        }
        return false;
    }
}
