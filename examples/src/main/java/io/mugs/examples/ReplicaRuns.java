package io.mugs.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@link TrainBenchmark} once per replica count, each in a child JVM with this JVM's options and class path (a
 * process's peak RSS is a high-water mark: two counts in one JVM would share it), then one table.
 *
 * <pre>{@code
 * ReplicaRuns.run(argv, "1,2");   // the child runs get argv with --replicas 1, then --replicas 2
 * }</pre>
 */
final class ReplicaRuns {

    /** The first word of the line a benchmark run ends with, read back by the parent. */
    static final String RESULT = "RESULT";

    private ReplicaRuns() {
    }

    static void run(String[] argv, String counts) {
        Map<Integer, String[]> results = new LinkedHashMap<>();
        for (String count : counts.split(",")) {
            int n = Integer.parseInt(count.trim());
            List<String> command = new ArrayList<>();
            command.add(ProcessHandle.current().info().command().orElse("java"));
            command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(TrainBenchmark.class.getName());
            for (int i = 0; i < argv.length; i++) {
                if (argv[i].equals("--replicas")) {
                    i++;
                } else if (!argv[i].startsWith("--replicas=")) {
                    command.add(argv[i]);
                }
            }
            command.add("--replicas");
            command.add(Integer.toString(n));
            System.out.println("== replicas " + n);
            results.put(n, child(command));
        }
        System.out.println("replicas  images/s  peak RSS (GB)  images/s vs 1 replica");
        String[] one = results.get(1);
        results.forEach((n, r) -> System.out.printf("%8d  %8s  %13s  %s%n", n, r[0], r[1],
                one == null || r[0].equals("-") || one[0].equals("-") ? "-"
                        : String.format("%.2fx", Double.parseDouble(r[0]) / Double.parseDouble(one[0]))));
    }

    /** Runs one benchmark, echoing its output; returns {images/s, peak RSS GB}, "-" for a failed run. */
    private static String[] child(List<String> command) {
        String[] result = {"-", "-"};
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (line.startsWith(RESULT + " ")) {
                        for (String field : line.split(" ")) {
                            if (field.startsWith("images_per_s=")) {
                                result[0] = field.substring(13);
                            } else if (field.startsWith("peak_rss_gb=")) {
                                result[1] = field.substring(12);
                            }
                        }
                    } else {
                        System.out.println(line);
                    }
                }
            }
            int exit = p.waitFor();
            if (exit != 0) {
                System.out.println("(run failed with exit code " + exit + ")");
            }
        } catch (IOException e) {
            System.out.println("(could not start " + command.get(0) + ": " + e.getMessage() + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return result;
    }
}
