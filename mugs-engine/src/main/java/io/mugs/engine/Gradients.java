package io.mugs.engine;

import java.io.PrintStream;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Gradients computed by SameDiff's own session, without its console noise: the reference path of tests and
 * benchmarks. Training runs its graphs on the planned engine instead ({@link GraphExecutor#gradients}), which gives
 * the same values without SameDiff's per-step allocations.
 *
 * <p>SameDiff 1.0.0-M2.1 prints {@code "Added differentiated op ..."} to {@code System.out} once per op when
 * it builds a gradient function, bypassing any logger. {@link #bySameDiff} installs (once per JVM) a
 * {@code System.out} wrapper that drops exactly those lines and passes everything else through unchanged.
 *
 * <pre>{@code
 * Map<String, INDArray> grads = Gradients.bySameDiff(sd, feed, vit.parameterNames());
 * }</pre>
 */
public final class Gradients {

    private static final String NOISE = "Added differentiated op";

    private Gradients() {
    }

    /** {@code sd.calculateGradients(placeholders, variables)} with the op listing filtered out of stdout. */
    public static Map<String, INDArray> bySameDiff(SameDiff sd, Map<String, INDArray> placeholders,
                                                  Collection<String> variables) {
        filterStdout();
        return sd.calculateGradients(placeholders, variables);
    }

    /** As {@link #bySameDiff(SameDiff, Map, Collection)}. */
    public static Map<String, INDArray> bySameDiff(SameDiff sd, Map<String, INDArray> placeholders,
                                                  String... variables) {
        return bySameDiff(sd, placeholders, List.of(variables));
    }

    /** Installs the stdout filter if it is not installed yet. Idempotent and thread-safe. */
    public static synchronized void filterStdout() {
        if (!(System.out instanceof NoiseFilter)) {
            System.setOut(new NoiseFilter(System.out));
        }
    }

    private static final class NoiseFilter extends PrintStream {
        NoiseFilter(PrintStream target) {
            super(target, true);
        }

        @Override
        public void println(String line) {
            if (line == null || !line.startsWith(NOISE)) {
                super.println(line);
            }
        }
    }
}
