package io.mugs.cli;

import io.mugs.core.RuntimeSettings;
import io.mugs.core.TrainingInterruptedException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * The {@code mugs} command line: pretraining and the evaluation tools as picocli sub-commands.
 *
 * <p>Exit codes: 0 success; 2 a usage error (unknown option, a value of the wrong type, a missing required option,
 * an invalid setting), printed as one line {@code mugs: <message> (see 'mugs <command> --help')}; 1 a failure
 * while running (a missing file, an unreadable image, a run folder held by another process, an {@link Error} such as
 * {@code OutOfMemoryError}), printed as one line {@code mugs: <message>}; 130 and 143 when SIGINT or SIGTERM stopped
 * {@code pretrain} after a checkpoint. A mistyped option or command gets a second line with picocli's nearest names
 * ({@code did you mean --epochs?}). {@code --debug} adds the stack trace. Help is coloured only when the output is a
 * terminal (picocli's {@code Ansi.AUTO}).
 *
 * <pre>{@code
 * int code = MugsCommand.execute(out, err, "knn", "--model", "runs/fm/teacher.safetensors",
 *         "--train", "fmnist-bundled:train", "--test", "fmnist-bundled:test");
 * }</pre>
 */
@Command(name = "mugs", mixinStandardHelpOptions = true, versionProvider = MugsCommand.Version.class,
        synopsisSubcommandLabel = "COMMAND",
        description = "Mugs self-supervised pretraining of Vision Transformers, and evaluation of the backbones.",
        subcommands = {PretrainCommand.class, EvaluationCommands.Knn.class, EvaluationCommands.Linear.class,
                EvaluationCommands.Export.class, EmbedCommand.class, FinetuneCommand.class,
                PictureCommands.Attention.class, PictureCommands.Tsne.class,
                PictureCommands.Curves.class, PictureCommands.Compare.class},
        footer = {"", "MODEL is a checkpoint-*.safetensors of a training run (its teacher is used), a run's "
                + "teacher.safetensors, a fine-tuning run's checkpoint or backbone.safetensors, or another backbone "
                + ".safetensors.",
                "DATA is fmnist-bundled:train, fmnist-bundled:test, fmnist:DIR:train, fmnist:DIR:test, or a folder "
                + "of images: JPEG, PNG, WebP, BMP, TIFF, GIF (one sub-folder per class for labels).",
                "When a single-valued option is given twice, the last one counts.",
                "Exit codes: 0 done, 1 failed, 2 usage error."})
public final class MugsCommand implements Runnable {

    @Option(names = "--debug", scope = ScopeType.INHERIT, description = "Print stack traces of errors.")
    boolean debug;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "a command is missing");
    }

    /** Starts the command line and exits with its code. */
    public static void main(String[] args) {
        RuntimeSettings.apply();
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        System.exit(execute(out, err, args));
    }

    /** Runs one command line with the given output streams; returns the exit code (0, 1 or 2). */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        return execute(commandLine(), out, err, args);
    }

    /** Runs {@code cl} (the tree of {@link #commandLine()}, perhaps with more commands) as {@link #execute} does. */
    static int execute(CommandLine cl, PrintWriter out, PrintWriter err, String... args) {
        cl.setOut(out);
        cl.setErr(err);
        try {
            return cl.execute(args);
        } catch (Error e) {   // picocli passes Errors through: OutOfMemoryError, StackOverflowError, LinkageError
            err.println("mugs: " + errorLine(e));
            if (debugRequested(args)) {
                e.printStackTrace(err);
            }
            err.flush();
            return 1;
        }
    }

    /** One line for an {@link Error}: what ran out or broke, and what to change. */
    static String errorLine(Error e) {
        if (e instanceof OutOfMemoryError) {
            return String.format(java.util.Locale.ROOT, "out of memory (%s; this JVM allows %.1f GB of heap): lower "
                    + "--batch, the crop sizes or the model size, or give the JVM more memory (JAVA_OPTS=-Xmx...)",
                    message(e), Runtime.getRuntime().maxMemory() / (double) (1L << 30));
        }
        if (e instanceof StackOverflowError) {
            return "stack overflow (a too deeply nested input?); rerun with --debug and report it";
        }
        return e.getClass().getSimpleName() + ": " + message(e) + " (rerun with --debug for the stack trace)";
    }

    /** The configured command tree (strict: unknown options and stray arguments are errors). */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new MugsCommand());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true);   // a repeated single-valued option: the last one counts
        cl.registerConverter(DataSpec.class, new DataSpec.Converter());
        cl.setParameterExceptionHandler(MugsCommand::usageError);
        ModelOptions.withoutFeatureOptions(cl.getSubcommands().get("attention").getCommandSpec());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof ParameterException p) {
                return usageError(p, parsed.originalArgs().toArray(String[]::new));
            }
            PrintWriter err = cmd.getErr();
            if (e instanceof TrainingInterruptedException t) {
                err.println("mugs: " + t.getMessage());
                err.flush();
                return t.exitCode();
            }
            err.println("mugs: " + message(e));
            if (debugRequested(parsed.originalArgs().toArray(String[]::new))) {
                e.printStackTrace(err);
            }
            err.flush();
            return 1;
        });
        return cl;
    }

    private static int usageError(ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        PrintWriter err = cmd.getErr();
        String message = e.getMessage();
        if (e instanceof UnmatchedArgumentException u && cmd.getParent() == null && !u.getUnmatched().isEmpty()
                && !u.getUnmatched().get(0).startsWith("-")) {
            message = "unknown command '" + u.getUnmatched().get(0) + "'";
        }
        err.println("mugs: " + message + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
        if (e instanceof UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
            err.println("did you mean " + u.getSuggestions().get(0) + "?");   // picocli's nearest name first
        }
        if (debugRequested(args)) {
            e.printStackTrace(err);
        }
        err.flush();
        return 2;
    }

    private static boolean debugRequested(String[] args) {
        for (String a : args) {
            if (a.equals("--debug")) {
                return true;
            }
        }
        return false;
    }

    /** One line for an error: its own message, or its cause's for a wrapper, or its type when it has none. */
    static String message(Throwable e) {
        Throwable t = e;
        while ((t instanceof UncheckedIOException || t.getMessage() == null) && t.getCause() != null) {
            t = t.getCause();
        }
        String m = t instanceof FileSystemException f && f.getReason() == null
                ? f.getFile() + ": no such file or not readable" : t.getMessage();
        if (m == null || m.isBlank()) {
            m = t.getClass().getSimpleName();
        }
        return m.lines().findFirst().orElse(m);
    }

    /** The version written into the jar at build time. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            try (InputStream in = MugsCommand.class.getResourceAsStream("version.txt")) {
                String v = in == null ? "unknown" : new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
                return new String[] {"mugs " + v + " (Java " + Runtime.version() + ")"};
            }
        }
    }
}
