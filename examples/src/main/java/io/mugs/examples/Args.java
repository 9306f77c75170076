package io.mugs.examples;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Minimal {@code --key value} / {@code --flag} command-line parsing for the example mains. */
final class Args {

    private final Map<String, String> values = new HashMap<>();
    private final Map<String, List<String>> repeated = new HashMap<>();

    Args(String[] args, Set<String> known, String usage) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.isBlank()) {
                continue;
            }
            if (a.equals("--help") || a.equals("-h")) {
                System.out.println(usage);
                System.exit(0);
            }
            if (!a.startsWith("--")) {
                fail("unexpected argument '" + a + "'", usage);
            }
            String key = a.substring(2);
            String value = "true";
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                value = args[++i];
            }
            if (!known.contains(key)) {
                fail("unknown option --" + key, usage);
            }
            values.put(key, value);
            repeated.computeIfAbsent(key, k -> new ArrayList<>()).add(value);
        }
    }

    /** The body of an example main. */
    interface Body {
        void run() throws Exception;
    }

    /**
     * Runs {@code body}; a failure it reports (a file that cannot be read, a bad value, an {@link Error} such as
     * {@code OutOfMemoryError}) is one line {@code Error: <message>} and exit code 1, with no stack trace unless
     * {@code -Dmugs.debug=true}.
     */
    static void runOrExit(Body body) {
        try {
            body.run();
        } catch (Exception | Error e) {
            Throwable t = e;
            while (t.getMessage() == null && t.getCause() != null) {
                t = t.getCause();
            }
            String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
            System.err.println("Error: " + m.lines().findFirst().orElse(m)
                    + (e instanceof Error ? " (" + e.getClass().getSimpleName() + ")" : ""));
            if (Boolean.getBoolean("mugs.debug")) {
                e.printStackTrace();
            }
            System.exit(1);
        }
    }

    private static void fail(String message, String usage) {
        System.err.println("Error: " + message + " (--help lists the options)");
        System.exit(2);
    }

    String get(String key, String def) {
        return values.getOrDefault(key, def);
    }

    /** Every value of an option that may be given several times, in order. */
    List<String> getAll(String key) {
        return repeated.getOrDefault(key, List.of());
    }

    /** The integer option {@code key}; anything else (1.5, "ten") is a usage error, exit code 2. */
    int getInt(String key, int def) {
        String v = get(key, Integer.toString(def));
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            System.err.println("Error: --" + key + " wants an integer, got '" + v + "' (--help lists the options)");
            System.exit(2);
            return def;
        }
    }

    /** The finite number option {@code key}; anything else is a usage error, exit code 2. */
    double getDouble(String key, double def) {
        String v = get(key, Double.toString(def));
        try {
            double d = Double.parseDouble(v);
            if (Double.isFinite(d)) {
                return d;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        System.err.println("Error: --" + key + " wants a finite number, got '" + v + "' (--help lists the options)");
        System.exit(2);
        return def;
    }
}
