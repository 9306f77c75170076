package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Batch means over replicas in DOUBLE: a training-mode batch norm on two executors of 3 rows each, joined by a
 * two-thread hook, against the same graph on all 6 rows (the loss, and the averaged gradients), against central
 * differences of its own forward (the backward rule), and without a hook against an unmarked graph (nothing changes).
 */
class ReplicaMeanTest {

    private static final int ROWS = 6;
    private static final int D = 4;
    private static final INDArray X = random(1, ROWS, D).muli(1.5).addi(0.3);
    private static final INDArray W = random(2, ROWS, D);
    private static final INDArray GAIN = random(3, 1, D).addi(1);
    private static final INDArray BIAS = random(4, 1, D);
    private static final ExecutorService THREADS = Executors.newFixedThreadPool(2);

    @AfterAll
    static void stop() {
        THREADS.shutdownNow();
    }

    private static INDArray random(long seed, int rows, int cols) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, rows, cols);
    }

    /**
     * {@code L = mean(w ⊙ tanh(BN(x)))} over rows {@code [from, to)}: a training-mode batch norm (biased variance,
     * eps 1e-5) whose two batch means are marked, or plain means.
     */
    private static SameDiff graph(int from, int to, boolean marked) {
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.var("x", X.get(rowRange(from, to)).dup());
        SDVariable gain = sd.var("gain", GAIN.dup());
        SDVariable bias = sd.var("bias", BIAS.dup());
        SDVariable w = sd.constant("w", W.get(rowRange(from, to)).dup());
        SDVariable centred = x.sub(marked ? ReplicaMean.rows(sd, x) : x.mean(true, 0));
        SDVariable squares = centred.mul(centred);
        SDVariable variance = marked ? ReplicaMean.rows(sd, squares) : squares.mean(true, 0);
        SDVariable y = centred.mul(sd.math.rsqrt(variance.add(1e-5))).mul(gain).add(bias);
        sd.math.tanh(y).mul(w).mean("loss");
        return sd;
    }

    private static org.nd4j.linalg.indexing.INDArrayIndex[] rowRange(int from, int to) {
        return new org.nd4j.linalg.indexing.INDArrayIndex[] {
                org.nd4j.linalg.indexing.NDArrayIndex.interval(from, to), org.nd4j.linalg.indexing.NDArrayIndex.all()};
    }

    private static GraphExecutor executor(SameDiff sd) {
        return GraphExecutor.gradients(sd, List.of("loss"), List.of("x", "gain", "bias"));
    }

    /** Two replicas meeting through shared slots: each call averages its array with the other replica's, in place. */
    private static final class Pair {
        final CyclicBarrier barrier = new CyclicBarrier(2);
        final INDArray[] slots = new INDArray[2];
        final List<Long> rows = new ArrayList<>();
        int backward;

        ReplicaMean.Hook hook(int rank) {
            return new ReplicaMean.Hook() {
                @Override
                public void forward(INDArray mean, long n) {
                    if (rank == 0) {
                        rows.add(n);
                    }
                    average(rank, mean);
                }

                @Override
                public void backward(INDArray gradient) {
                    if (rank == 0) {
                        backward++;
                    }
                    average(rank, gradient);
                }
            };
        }

        void average(int rank, INDArray a) {
            slots[rank] = a;
            await();
            INDArray other = slots[1 - rank].dup();
            await();
            a.addi(other).divi(2);
        }

        void await() {
            try {
                barrier.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** Runs both replicas at once; copies of their losses and gradients, replica 0 first. */
    private static List<Map<String, INDArray>> runBoth(List<GraphExecutor> replicas) throws Exception {
        List<Future<Map<String, INDArray>>> futures = new ArrayList<>();
        for (GraphExecutor e : replicas) {
            futures.add(THREADS.submit(() -> copies(e.run(Map.of()))));
        }
        List<Map<String, INDArray>> out = new ArrayList<>();
        for (Future<Map<String, INDArray>> f : futures) {
            out.add(f.get(60, TimeUnit.SECONDS));
        }
        return out;
    }

    private static Map<String, INDArray> copies(GraphExecutor.Result r) {
        Map<String, INDArray> out = new java.util.LinkedHashMap<>();
        out.put("loss", r.outputs().get("loss").dup());
        r.gradients().forEach((k, v) -> out.put(k, v.dup()));
        return out;
    }

    private static List<GraphExecutor> twoReplicas(Pair pair) {
        return List.of(executor(graph(0, ROWS / 2, true)).replicaMean(pair.hook(0)),
                executor(graph(ROWS / 2, ROWS, true)).replicaMean(pair.hook(1)));
    }

    private static void assertClose(INDArray expected, INDArray actual, double tolerance, String what) {
        double diff = expected.sub(actual).amaxNumber().doubleValue();
        assertTrue(diff <= tolerance * Math.max(1, expected.amaxNumber().doubleValue()), what + " differs by " + diff
                + ": expected " + expected + ", got " + actual);
    }

    @Test
    void twoReplicasOfThreeRowsComputeTheLossAndTheAveragedGradientsOfAllSix() throws Exception {
        Map<String, INDArray> whole = copies(executor(graph(0, ROWS, false)).run(Map.of()));
        Pair pair = new Pair();
        List<GraphExecutor> replicas = twoReplicas(pair);
        for (int step = 0; step < 2; step++) {   // the first run plans, the second runs the plan
            List<Map<String, INDArray>> r = runBoth(replicas);
            // L = mean over six rows = the mean of the replicas' means over three rows.
            double loss = (r.get(0).get("loss").getDouble(0) + r.get(1).get("loss").getDouble(0)) / 2;
            assertEquals(whole.get("loss").getDouble(0), loss, 1e-12);
            for (String p : List.of("gain", "bias")) {
                assertClose(whole.get(p), r.get(0).get(p).add(r.get(1).get(p)).divi(2), 1e-10, p + " gradient");
            }
            // Replica r's own rows: R times their share of dL/dx, as its gradients are divided by R when averaged.
            assertClose(whole.get("x").get(rowRange(0, ROWS / 2)).mul(2), r.get(0).get("x"), 1e-10, "x rows 0-2");
            assertClose(whole.get("x").get(rowRange(ROWS / 2, ROWS)).mul(2), r.get(1).get("x"), 1e-10, "x rows 3-5");
        }
        assertEquals(List.of(3L, 3L, 3L, 3L), pair.rows, "two marked means per run, of three rows each");
        assertEquals(4, pair.backward, "two gradients of marked means per run");
    }

    @Test
    void theBackwardRuleMatchesCentralDifferencesOfTheTwoReplicaForward() throws Exception {
        Pair pair = new Pair();
        List<SameDiff> graphs = List.of(graph(0, ROWS / 2, true), graph(ROWS / 2, ROWS, true));
        List<GraphExecutor> replicas = List.of(executor(graphs.get(0)).replicaMean(pair.hook(0)),
                executor(graphs.get(1)).replicaMean(pair.hook(1)));
        List<Map<String, INDArray>> g = runBoth(replicas);
        double h = 1e-6;
        // A parameter of both replicas (gain, bias): dL/dθ = the mean of the replicas' gradients.
        for (String p : List.of("gain", "bias")) {
            for (int j = 0; j < D; j++) {
                double numeric = centralDifference(replicas, graphs, List.of(0, 1), p, 0, j, h);
                double analytic = (g.get(0).get(p).getDouble(0, j) + g.get(1).get(p).getDouble(0, j)) / 2;
                assertEquals(numeric, analytic, 1e-8, p + "[" + j + "]");
            }
        }
        // An input row of replica 1 alone: dL/dx = its gradient / R; it moves both replicas' statistics.
        for (int i = 0; i < ROWS / 2; i++) {
            for (int j = 0; j < D; j++) {
                double numeric = centralDifference(replicas, graphs, List.of(1), "x", i, j, h);
                assertEquals(numeric, g.get(1).get("x").getDouble(i, j) / 2, 1e-8, "x[" + (i + 3) + ", " + j + "]");
            }
        }
    }

    /** (L(θ + h) − L(θ − h)) / 2h of L = the mean of the two replicas' losses, θ changed in {@code owners}' graphs. */
    private static double centralDifference(List<GraphExecutor> replicas, List<SameDiff> graphs, List<Integer> owners,
                                            String name, int i, int j, double h) throws Exception {
        double[] loss = new double[2];
        for (int side = 0; side < 2; side++) {
            for (int r : owners) {
                INDArray v = graphs.get(r).getVariable(name).getArr();
                v.putScalar(i, j, v.getDouble(i, j) + (side == 0 ? h : -2 * h));
            }
            List<Map<String, INDArray>> out = runBoth(replicas);
            loss[side] = (out.get(0).get("loss").getDouble(0) + out.get(1).get("loss").getDouble(0)) / 2;
        }
        for (int r : owners) {
            INDArray v = graphs.get(r).getVariable(name).getArr();
            v.putScalar(i, j, v.getDouble(i, j) + h);
        }
        return (loss[0] - loss[1]) / (2 * h);
    }

    @Test
    void withoutAHookAMarkedGraphComputesWhatAnUnmarkedOneDoesWithTheSameOps() {
        GraphExecutor plain = executor(graph(0, ROWS, false));
        GraphExecutor marked = executor(graph(0, ROWS, true));
        Map<String, INDArray> a = copies(plain.run(Map.of()));
        Map<String, INDArray> b = copies(marked.run(Map.of()));
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertEquals(0.0, v.sub(b.get(k)).amaxNumber().doubleValue(), k + ": bit for bit"));
        assertEquals(plain.opsPerRun(), marked.opsPerRun());
    }

    @Test
    void aHookedRunHasTheOpsOfAPlainOne() throws Exception {
        GraphExecutor plain = executor(graph(0, ROWS / 2, true));
        plain.run(Map.of());
        List<GraphExecutor> replicas = twoReplicas(new Pair());
        runBoth(replicas);
        assertEquals(plain.opsPerRun(), replicas.get(0).opsPerRun());
    }

    @Test
    void aGraphWithoutMarksIgnoresTheHookAndTheSameDiffSessionRefusesOne() {
        GraphExecutor plain = executor(graph(0, ROWS, false));
        assertSame(plain, plain.replicaMean(new Pair().hook(0)));
        assertEquals(1, plain.run(Map.of()).outputs().size());   // no collective called: nothing waits

        String before = System.getProperty("mugs.engine");
        System.setProperty("mugs.engine", "samediff");
        try {
            GraphExecutor session = executor(graph(0, ROWS, true));
            var e = assertThrows(IllegalStateException.class, () -> session.replicaMean(new Pair().hook(0)));
            assertEquals("batch means over replicas (batch norm with replicas > 1) run on the planned engine only, "
                    + "not on SameDiff's session: remove -Dmugs.engine=samediff, or turn off useBnInHead, or use one "
                    + "replica", e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("mugs.engine");
            } else {
                System.setProperty("mugs.engine", before);
            }
        }
    }
}
