package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.core.RuntimeSettings;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Exit codes, one-line messages, help and the launcher script: everything that needs no training. */
class CliTest {

    /** Exit code, standard output and standard error of one in-process run. */
    record Run(int code, String out, String err) {
    }

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = MugsCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void helpWithPercentSignsPrintsThemWithoutPicocliWarnings() {
        // picocli formats descriptions and footers with String.format: a lone % made it warn on stderr and print the
        // raw text ("Default: 100%%.").
        java.io.PrintStream stderr = System.err;
        java.io.ByteArrayOutputStream warnings = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(warnings, true));
        try {
            for (String command : new String[] {"linear", "finetune"}) {
                Run r = run(command, "--help");
                assertEquals(0, r.code(), command);
                assertTrue(r.out().contains("1%, 10%"), r.out());
                assertTrue(!r.out().contains("%%") && !r.out().contains("%n"), r.out());
            }
            assertTrue(run("finetune", "--help").out().contains("Default: 100%."));
        } finally {
            System.setErr(stderr);
        }
        assertEquals("", warnings.toString());
    }

    @Test
    void usageErrorsAreOneLineAndExitTwo() {
        Run r = run("knn", "--model", "m.safetensors", "--train", "fmnist-bundled:train", "--test",
                "fmnist-bundled:test", "--bogus");
        assertEquals(new Run(2, "", "mugs: Unknown option: '--bogus' (see 'mugs knn --help')\n"), r);
        assertEquals(new Run(2, "", "mugs: Invalid value for option '--epochs': '1.5' is not an int "
                + "(see 'mugs pretrain --help')\n"), run("pretrain", "--epochs", "1.5"));
        assertEquals(new Run(2, "", "mugs: Missing required options: '--model=MODEL', '--test=DATA' "
                + "(see 'mugs knn --help')\n"), run("knn", "--train", "fmnist-bundled:train"));
        assertEquals(new Run(2, "", "mugs: Invalid value for option '--test': 'fmnist-bundled:val' must end in "
                + ":train or :test (see 'mugs linear --help')\n"), run("linear", "--model", "m.safetensors",
                "--train", "fmnist-bundled:train", "--test", "fmnist-bundled:val"));
        assertEquals(new Run(2, "", "mugs: Invalid value for option '--preset': must be fashion-mnist-tiny, "
                + "fashion-mnist, fashion-mnist-v2, fashion-mnist-v3, fashion-mnist-v4, vit-small, vit-base or "
                + "vit-large, "
                + "got 'vit-huge' (see 'mugs pretrain --help')\n"),
                run("pretrain", "--preset", "vit-huge"));
        assertEquals(new Run(2, "", "mugs: a command is missing (see 'mugs --help')\n"), run());
        assertEquals(2, run("train").code());
    }

    @Test
    void attentionHelpListsOnlyTheOptionsItUses() {
        String attention = run("attention", "--help").out();
        assertFalse(attention.contains("--feature") || attention.contains("--extract-batch"), attention);
        assertTrue(attention.contains("--mean"), attention);
        assertTrue(run("knn", "--help").out().contains("--feature"));
        assertEquals(2, run("attention", "--model", "m.safetensors", "--data", "fmnist-bundled:test", "--out",
                "a.png", "--feature", "cls").code());
    }

    @Test
    void mistypedOptionsAndCommandsGetTheNearestNames() {
        Run r = run("pretrain", "--epoch", "2");
        assertEquals(new Run(2, "", "mugs: Unknown options: '--epoch', '2' (see 'mugs pretrain --help')\n"
                + "did you mean --epochs?\n"), r);
        assertEquals(new Run(2, "", "mugs: unknown command 'pretrian' (see 'mugs --help')\ndid you mean pretrain?\n"),
                run("pretrian", "--epochs", "2"));
    }

    @Test
    void invalidSettingsAreUsageErrorsBeforeAnyTraining() {
        Run r = run("pretrain", "--set", "vit.depthh=2");
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("mugs: 'vit.depthh=2': no field 'depthh'; fields here: "), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertEquals(new Run(2, "", "mugs: give --eval-train and --eval-test together (see 'mugs pretrain --help')\n"),
                run("pretrain", "--eval-train", "fmnist-bundled:train"));
        assertEquals(new Run(2, "", "mugs: --budget-minutes must be a positive number of minutes, got 0.0 (see "
                + "'mugs pretrain --help')\n"), run("pretrain", "--budget-minutes", "0"));
    }

    @Test
    void everyCommandHasHelpWithoutTerminalCodes() {
        for (String command : List.of("pretrain", "knn", "linear", "export", "embed", "attention", "tsne", "curves",
                "compare")) {
            Run r = run(command, "--help");
            assertEquals(0, r.code(), command);
            assertTrue(r.out().startsWith("Usage: mugs " + command + " "), r.out());
            assertFalse(r.out().contains("\u001b["), "ANSI codes in " + command + " --help");
            assertEquals("", r.err());
        }
        Run top = run("--help");
        assertEquals(0, top.code());
        assertTrue(top.out().contains("  pretrain   "), top.out());
        assertTrue(run("--version").out().startsWith("mugs 0.1.0"), run("--version").out());
    }

    @Test
    void aMissingModelIsAFailureOfOneLine(@TempDir Path dir) {
        Path model = dir.resolve("no such dir").resolve("model.safetensors");
        Run r = run("knn", "--model", model.toString(), "--train", "fmnist-bundled:train", "--test",
                "fmnist-bundled:test");
        assertEquals(new Run(1, "", "mugs: " + model + ": no such checkpoint or backbone file\n"), r);
        Run debug = run("knn", "--debug", "--model", model.toString(), "--train", "fmnist-bundled:train", "--test",
                "fmnist-bundled:test");
        assertEquals(1, debug.code());
        assertTrue(debug.err().contains("\tat io.mugs.eval.FrozenBackbone.load"), debug.err());
    }

    @Test
    void dataArguments() {
        DataSpec idx = DataSpec.parse("fmnist:/data/a:b/fm:test");
        assertEquals(new DataSpec(DataSpec.Kind.IDX, Path.of("/data/a:b/fm"), false), idx);
        assertEquals(new DataSpec(DataSpec.Kind.IDX, Path.of("/data/a:b/fm"), true), idx.otherSplit());
        assertEquals(new DataSpec(DataSpec.Kind.FOLDER, Path.of("my images/x"), true), DataSpec.parse("my images/x"));
        assertEquals(new DataSpec(DataSpec.Kind.BUNDLED, null, true), DataSpec.parse("fmnist-bundled:train"));
        assertThrows(IllegalArgumentException.class, () -> DataSpec.parse("fmnist:/data"));
    }

    @Test
    void kValuesAboveTheMemoryAreLeftOut() {
        assertArrayEquals(new int[] {10, 20}, EvaluationCommands.usable(new int[] {10, 20, 100, 200}, 48));
        assertArrayEquals(new int[] {12}, EvaluationCommands.usable(new int[] {20, 200}, 12));
    }

    @Test
    void finalLineSaysHowFarFromRawPixels() {
        assertEquals("k-NN top-1 (k 20, T 0.07) on 1000 test images: untrained teacher 63.00 %, Mugs teacher 69.00 % "
                + "(+6.00 points from pretraining), raw pixels 82.30 % (13.30 points below raw pixels)",
                PretrainCommand.finalLine(1000, 0.63, 0.69, 0.823));
        assertEquals("k-NN top-1 (k 20, T 0.07) on 10 test images: Mugs teacher 90.00 %, raw pixels 80.00 % "
                + "(10.00 points above raw pixels)", PretrainCommand.finalLine(10, Double.NaN, 0.9, 0.8));
    }

    @Test
    void untrainedAccuracyIsTheMonitorsFirstPoint(@TempDir Path tmp) throws Exception {
        Path metrics = tmp.resolve("metrics.jsonl");
        Files.writeString(metrics, "{\"iteration\":-1,\"epoch\":-1,\"train_s\":0.0,\"knn_top1\":0.6982}\n"
                + "{\"iteration\":0,\"loss\":8.1}\n{\"iteration\":124,\"epoch\":0,\"knn_top1\":0.71}\n");
        assertEquals(0.6982, PretrainCommand.untrainedAccuracy(metrics), 0);
        Files.writeString(metrics, "{\"iteration\":124,\"epoch\":0,\"knn_top1\":0.71}\n");
        assertTrue(Double.isNaN(PretrainCommand.untrainedAccuracy(metrics)), "a resumed log without the first point");
        assertTrue(Double.isNaN(PretrainCommand.untrainedAccuracy(tmp.resolve("none.jsonl"))));
    }

    @Test
    void launcherPassesTheRuntimeSettingsAndQuotesArguments() throws Exception {
        // Written by the build (process-resources) from src/main/dist/bin/mugs.
        String script = Files.readString(Path.of("target/mugs/bin/mugs"));
        assertTrue(script.contains("\"$java\" " + String.join(" ", RuntimeSettings.launcherJvmOptions())
                + " $MUGS_JAVA_OPTS -cp \"$app_home/lib/*\" io.mugs.cli.MugsCommand \"$@\""), script);
        assertTrue(script.contains("OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}"), script);
        assertTrue(script.contains("MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072}"), script);
        assertTrue(script.contains("export OMP_NUM_THREADS MALLOC_MMAP_THRESHOLD_"), script);
    }
}
