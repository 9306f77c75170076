package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** What the command line says when the run folder, a setting or the JVM itself fails: one line, the right code. */
class CliReliabilityTest {

    @Test
    void aRunFolderHeldByAnotherProcessIsOneLineAndExitOne(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("run");
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), HoldLock.class.getName(), out.toString());
        Process holder = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            String line = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
            assertTrue(line != null && line.startsWith("locked "), line);
            CliTest.Run r = CliTest.run("pretrain", "--epochs", "1", "--output", out.toString());
            assertEquals(1, r.code(), r.err());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("mugs: run folder '" + out + "' is in use by another process (pid "
                    + holder.pid() + " on "), r.err());
            assertTrue(r.err().endsWith("): wait for it to end, stop it, or choose another --output\n"), r.err());
            try (var files = Files.list(out)) {
                assertEquals(List.of("run.lock"), files.map(f -> f.getFileName().toString()).toList());
            }
        } finally {
            holder.destroyForcibly();
            assertTrue(holder.waitFor(60, TimeUnit.SECONDS));
        }
    }

    @Test
    void anOutputThatIsAFileSaysSo(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("results.txt"), "not a folder");
        assertEquals(new CliTest.Run(1, CliTest.run("pretrain", "--epochs", "1", "--output", file.toString()).out(),
                "mugs: run folder '" + file + "' is a file, not a folder: choose a folder for the run (--output)\n"),
                CliTest.run("pretrain", "--epochs", "1", "--output", file.toString()));
    }

    @Test
    void aQueueOfOneIsAUsageErrorNotAnEngineFailure() {
        CliTest.Run r = CliTest.run("pretrain", "--set", "queueSize=1");
        assertEquals(new CliTest.Run(2, "", "mugs: Cannot apply queueSize=1: Invalid MugsConfig: queueSize must be "
                + "at least 2 (a softmax or normalisation over a single entry has nothing to compare), got 1 (see "
                + "'mugs pretrain --help')\n"), r);
    }

    @Test
    void configurationsTooLargeForTheJvmAreRefusedInsteadOfCrashing(@TempDir Path tmp) throws Exception {
        // crops.globalSize=700 used to end in a SIGSEGV (libnd4j writing through a failed 71.5 GB allocation)
        for (String set : List.of("crops.globalSize=700", "vit.embedDim=12000")) {
            Path out = tmp.resolve(set.replace('=', '-'));
            CliTest.Run r = CliTest.run("pretrain", "--epochs", "1", "--set", set, "--output", out.toString());
            assertEquals(1, r.code(), r.err());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("mugs: this configuration needs about "), r.err());
            assertTrue(r.err().contains(" of native memory: "), r.err());
            try (var files = Files.list(out)) {
                assertEquals(List.of("run.lock"), files.map(f -> f.getFileName().toString()).toList());
            }
        }
    }

    @Test
    void aSpentTimeBudgetOnRerunSaysSoAndTakesNoStep(@TempDir Path tmp) throws Exception {
        Path images = tmp.resolve("images");
        for (String cls : List.of("a", "b")) {
            for (int i = 0; i < 6; i++) {
                java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(28, 28,
                        java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
                img.getRaster().setSample(i, i, 0, 200);
                Files.createDirectories(images.resolve(cls));
                javax.imageio.ImageIO.write(img, "png", images.resolve(cls).resolve(i + ".png").toFile());
            }
        }
        Path run = tmp.resolve("run");
        List<String> cmd = new java.util.ArrayList<>(List.of("pretrain", "--data", images.toString(), "--output",
                run.toString(), "--max-minutes", "0.000001", "--preset", "fashion-mnist-tiny", "--epochs", "2",
                "--batch", "4", "--set", "vit.depth=1", "--set", "vit.embedDim=16", "--set", "vit.numHeads=2",
                "--set", "instanceHidden=32", "--set", "instanceOut=16", "--set", "predictorHidden=32", "--set",
                "groupHidden=32", "--set", "groupBottleneck=16", "--set", "prototypes=32", "--set", "queueSize=64",
                "--set", "memorySize=64", "--set", "workers=1"));
        CliTest.Run first = CliTest.run(cmd.toArray(String[]::new));
        assertEquals(0, first.code(), first.err());
        List<String> rows = Files.readAllLines(run.resolve("metrics.jsonl"));
        assertEquals(1, rows.stream().filter(l -> l.contains("\"loss\"")).count(), "one step, then the budget");
        CliTest.Run again = CliTest.run(cmd.toArray(String[]::new));
        assertEquals(0, again.code(), again.err());
        assertTrue(again.out().contains("The --max-minutes budget of 1.0E-6 is spent ("), again.out());
        assertTrue(again.out().contains(" training minutes so far, iteration 1 of 6): nothing done; pass a larger "
                + "--max-minutes to continue"), again.out());
        assertEquals(rows, Files.readAllLines(run.resolve("metrics.jsonl")), "no step, no row");
    }

    @Command(name = "fail")
    static final class Failing implements Callable<Integer> {
        @CommandLine.Option(names = "--kind")
        String kind;

        @Override
        public Integer call() {
            switch (kind) {
                case "oom" -> throw new OutOfMemoryError("Java heap space");
                case "stack" -> throw new StackOverflowError();
                default -> throw new NoClassDefFoundError("org/example/Missing");
            }
        }
    }

    @Test
    void errorsAreOneLineAndExitOneWithTheTraceOnlyUnderDebug() {
        String heap = String.format(java.util.Locale.ROOT, "%.1f",
                Runtime.getRuntime().maxMemory() / (double) (1L << 30));
        assertEquals("mugs: out of memory (Java heap space; this JVM allows " + heap + " GB of heap): lower --batch, "
                + "the crop sizes or the model size, or give the JVM more memory (JAVA_OPTS=-Xmx...)\n",
                failing("oom").err());
        assertEquals("mugs: stack overflow (a too deeply nested input?); rerun with --debug and report it\n",
                failing("stack").err());
        assertEquals("mugs: NoClassDefFoundError: org/example/Missing (rerun with --debug for the stack trace)\n",
                failing("link").err());
        for (String kind : List.of("oom", "stack", "link")) {
            assertEquals(1, failing(kind).code());
        }
        CliTest.Run debug = failing("oom", "--debug");
        assertTrue(debug.err().contains("java.lang.OutOfMemoryError: Java heap space\n\tat "), debug.err());
    }

    private static CliTest.Run failing(String kind, String... more) {
        CommandLine cl = MugsCommand.commandLine().addSubcommand(new Failing());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        String[] args = new String[2 + more.length + 1];
        args[0] = "fail";
        args[1] = "--kind";
        args[2] = kind;
        System.arraycopy(more, 0, args, 3, more.length);
        int code = MugsCommand.execute(cl, new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new CliTest.Run(code, out.toString(), err.toString());
    }
}
