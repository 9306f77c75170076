package io.mugs.vit;

import io.mugs.engine.GraphExecutor;
import io.mugs.engine.Kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The planned executor against SameDiff's own session on the ViT alone: same values, same gradients. */
class VitOnEngineTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(16).inChannels(1).patchSize(4).embedDim(32)
            .depth(2).numHeads(2).dropPathRate(0.2).build();

    /** A ViT with a global (16 px) and a local (8 px) tower and a scalar loss mixing its outputs. */
    private record Model(SameDiff sd, VisionTransformer vit, VitOutputs global, VitOutputs local, SDVariable loss) {
    }

    private static Model model(DataType type, double layerNormEps) {
        SameDiff sd = SameDiff.create();
        VitConfig cfg = TINY.toBuilder().layerNormEps(layerNormEps).build();
        VisionTransformer vit = new VisionTransformer(sd, "backbone.", cfg, type, 5);
        SplittableRandom r = new SplittableRandom(9);
        for (String n : vit.parameterNames()) {
            INDArray a = sd.getArrForVarName(n);
            if (n.contains("norm") || n.endsWith("bias")) {
                a.addi(Initializers.normal(r, type, a.shape()).muli(0.3));
            }
        }
        VitOutputs g = vit.apply(sd.placeHolder("global", type, -1, 1, 16, 16), 16, 16,
                VisionTransformer.Mode.TRAINING, "global");
        VitOutputs l = vit.apply(sd.placeHolder("local", type, -1, 1, 8, 8), 8, 8,
                VisionTransformer.Mode.TRAINING, "local");
        SDVariable wc = sd.constant("wc", Initializers.normal(new SplittableRandom(3), type, 1, 32));
        SDVariable loss = g.cls().mul(wc).sum().add(sd.math.square(l.cls()).mean())
                .add(g.patchMean().mul(g.tokenMean()).sum()).add(l.lastAttention().mul(l.lastAttention()).sum());
        loss = sd.identity("loss", loss);
        sd.setLossVariables(loss);
        return new Model(sd, vit, g, l, loss);
    }

    private static Map<String, INDArray> feed(Model m, DataType type, int batch, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, INDArray> feed = new HashMap<>();
        feed.put("global", Initializers.normal(r, type, 2L * batch, 1, 16, 16));
        feed.put("local", Initializers.normal(r, type, 3L * batch, 1, 8, 8));
        feed.putAll(DropPath.sample(m.global().dropPath(), 2 * batch, m.global().tokensPerImage(), r, type));
        feed.putAll(DropPath.sample(m.local().dropPath(), 3 * batch, m.local().tokensPerImage(), r, type));
        return feed;
    }

    private static void assertClose(INDArray expected, INDArray actual, double relTol, String what) {
        assertNotNull(actual, what);
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = Math.max(expected.norm2Number().doubleValue(), 1e-30);
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= relTol * scale, what + ": relative difference " + diff / scale + " > " + relTol);
    }

    private static void checkGradientsMatch(DataType type, double tol, double layerNormEps) {
        Model m = model(type, layerNormEps);
        List<String> params = m.vit().parameterNames();
        GraphExecutor exec = GraphExecutor.gradients(m.sd(), List.of("loss", m.global().cls().name()), params);
        assertTrue(exec.planned());
        // Batch 3 (plans), batch 3 again (reuses the plan, new data), batch 2 (a second plan), batch 3 once more.
        int[] batches = {3, 3, 2, 3};
        for (int i = 0; i < batches.length; i++) {
            Map<String, INDArray> feed = feed(m, type, batches[i], 100 + i);
            GraphExecutor.Result ours = exec.run(feed);
            var theirs = m.sd().calculateGradientsAndOutputs(feed, List.of("loss", m.global().cls().name()), params);
            String run = type + " run " + i + " (batch " + batches[i] + ")";
            assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), tol, run + " loss");
            assertClose(theirs.getOutputs().get(m.global().cls().name()), ours.outputs().get(m.global().cls().name()),
                    tol, run + " cls");
            assertEquals(params.size(), ours.gradients().size(), run + ": one gradient per parameter");
            for (String p : params) {
                assertClose(theirs.getGradients().get(p), ours.gradients().get(p), tol, run + " d/d" + p);
            }
        }
        assertTrue(exec.opsPerRun() > 100, "ops per run " + exec.opsPerRun());
        assertTrue(exec.rewrittenOps() > 10, "rewritten " + exec.rewrittenOps());
        // Released at last use: the live peak is a fraction of what keeping every op output would hold.
        assertTrue(exec.peakLiveBytes() < 0.5 * exec.outputBytes(),
                "live peak " + exec.peakLiveBytes() + " of " + exec.outputBytes() + " bytes of op outputs");
        exec.close();
    }

    @Test
    void gradientsEqualSameDiffInDouble() {
        checkGradientsMatch(DataType.DOUBLE, 1e-10, 1e-6);
    }

    @Test
    void gradientsEqualSameDiffInFloat() {
        checkGradientsMatch(DataType.FLOAT, 1e-5, 1e-6);
        checkGradientsMatch(DataType.FLOAT, 1e-5, 0);   // ND4J's fused layer_norm and its backward
    }

    @Test
    void fusedExactGeluGivesSameDiffsValuesWithTwoOpsPerGelu() {
        Map<String, Integer> ops = opsPerRunMatchingSameDiff("matmul,matmul_bp", "matmul,matmul_bp,gelu");
        // 2 blocks in each of the 2 towers: 4 GELUs, each 4 forward + 11 backward ops fused into 1 + 1.
        assertEquals(ops.get("matmul,matmul_bp") - 4 * 13, ops.get("matmul,matmul_bp,gelu"), ops.toString());
    }

    @Test
    void fusedLayerNormGivesSameDiffsValuesWithTwoOpsPerLayerNorm() {
        Map<String, Integer> ops = opsPerRunMatchingSameDiff("matmul,matmul_bp", "matmul,matmul_bp,layernorm");
        // 11 LayerNorms: per tower 2 blocks of 2 and the final norm of the class token, and in the global tower the
        // final norm of the patch tokens (the loss reads no local patch token). 9 of them normalise a value that is
        // read elsewhere too (the residual stream): 9 forward + 14 backward ops (that gradient added in between)
        // fused into 1 + 1; the other 2: 9 + 13 into 1 + 1.
        assertEquals(ops.get("matmul,matmul_bp") - 9 * 21 - 2 * 20, ops.get("matmul,matmul_bp,layernorm"),
                ops.toString());
    }

    @Test
    void fusedAttentionGivesSameDiffsValuesWithTwoOpsPerAttention() {
        Map<String, Integer> ops = opsPerRunMatchingSameDiff("matmul,matmul_bp,gelu", "matmul,matmul_bp,gelu,attention");
        // 2 blocks in each of the 2 towers, but the loss reads the local tower's last attention, whose gradient
        // then reaches softmax_bp through an add: that block is left alone. The other 3 each run 13 forward and 13
        // backward ops (17, of which 4 shape_of ops are computed once) as 1 + 1.
        assertEquals(ops.get("matmul,matmul_bp,gelu") - 3 * 24, ops.get("matmul,matmul_bp,gelu,attention"),
                ops.toString());
    }

    /**
     * Checks the tiny ViT's gradients against SameDiff's (DOUBLE and FLOAT, epsilon 1e-6) with each Java-kernel
     * selection, and returns the training graph's ops per run under each.
     */
    private static Map<String, Integer> opsPerRunMatchingSameDiff(String... selections) {
        Map<String, Integer> ops = new HashMap<>();
        try {
            for (String kernels : selections) {
                Kernels.select(kernels);
                checkGradientsMatch(DataType.DOUBLE, 1e-10, 1e-6);
                checkGradientsMatch(DataType.FLOAT, 1e-5, 1e-6);
                Model m = model(DataType.FLOAT, 1e-6);
                try (GraphExecutor exec = GraphExecutor.gradients(m.sd(), List.of("loss"), m.vit().parameterNames())) {
                    exec.run(feed(m, DataType.FLOAT, 2, 7));
                    ops.put(kernels, exec.opsPerRun());
                }
            }
        } finally {
            Kernels.select(null);
        }
        return ops;
    }

    @Test
    void broadcastBackwardRewritesMatchSameDiffForEveryAxisPattern() {
        long[][][] pairs = {
                {{4, 6}, {6}}, {{4, 6}, {1, 6}}, {{4, 6}, {4, 1}}, {{2, 3, 5}, {1, 3, 1}}, {{2, 3, 5}, {2, 1, 5}},
                {{2, 3, 5}, {5}}, {{1, 6}, {4, 6}}};
        for (String op : new String[] {"mul", "add", "sub", "div"}) {
            for (long[][] pair : pairs) {
                SameDiff sd = SameDiff.create();
                SplittableRandom r = new SplittableRandom(pair[0].length * 10L + pair[1].length);
                SDVariable x = sd.var("x", Initializers.normal(r, DataType.DOUBLE, pair[0]));
                SDVariable y = sd.var("y", Initializers.normal(r, DataType.DOUBLE, pair[1]));
                SDVariable z = switch (op) {
                    case "mul" -> x.mul(y);
                    case "add" -> x.add(y);
                    case "sub" -> x.sub(y);
                    default -> x.div(sd.math.abs(y).add(1.0));   // keeps the divisor away from zero
                };
                SDVariable w = sd.placeHolder("w", DataType.DOUBLE, z.getShape());
                SDVariable loss = sd.identity("loss", z.mul(z).mul(w).sum());
                sd.setLossVariables(loss);
                long[] zShape = z.eval().shape();
                Map<String, INDArray> feed = Map.of("w", Initializers.normal(r, DataType.DOUBLE, zShape));
                GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("x", "y"));
                var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("x", "y"));
                for (int run = 0; run < 2; run++) {
                    var ours = exec.run(feed);
                    String what = op + " " + java.util.Arrays.toString(pair[0]) + " with "
                            + java.util.Arrays.toString(pair[1]);
                    assertClose(theirs.getGradients().get("x"), ours.gradients().get("x"), 1e-12, what + " dx");
                    assertClose(theirs.getGradients().get("y"), ours.gradients().get("y"), 1e-12, what + " dy");
                }
                assertTrue(exec.rewrittenOps() >= 1, op + " " + java.util.Arrays.toString(pair[0]) + " with "
                        + java.util.Arrays.toString(pair[1]) + ": the broadcast backward op is rewritten");
            }
        }
    }

    @Test
    void inferenceOutputsEqualSameDiffAndResultsAreReusedBuffers() {
        Model m = model(DataType.FLOAT, 1e-6);
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", TINY, DataType.FLOAT, 5);
        vit.loadWeights(m.vit().weights());
        VitOutputs out = vit.apply(sd.placeHolder("x", DataType.FLOAT, -1, 1, 16, 16), 16, 16,
                VisionTransformer.Mode.INFERENCE, "eval");
        List<String> names = List.of(out.cls().name(), out.patchMean().name(), out.lastAttention().name());
        GraphExecutor exec = GraphExecutor.outputs(sd, names);
        INDArray first = null;
        for (int i = 0; i < 3; i++) {
            INDArray x = Initializers.normal(new SplittableRandom(i), DataType.FLOAT, 4, 1, 16, 16);
            Map<String, INDArray> ours = exec.run(Map.of("x", x)).outputs();
            Map<String, INDArray> theirs = sd.output(Map.of("x", x), names);
            for (String n : names) {
                assertClose(theirs.get(n), ours.get(n), 1e-5, "run " + i + " " + n);
            }
            if (first == null) {
                first = ours.get(out.cls().name());
            } else {
                // The plan writes into the same result array every run: the caller copies what must survive.
                assertTrue(first == ours.get(out.cls().name()), "result array reused");
            }
        }
        assertTrue(exec.plannedBytes() > 0);
    }

    @Test
    void missingPlaceholderIsNamed() {
        Model m = model(DataType.FLOAT, 1e-6);
        GraphExecutor exec = GraphExecutor.gradients(m.sd(), List.of("loss"), m.vit().parameterNames());
        Map<String, INDArray> feed = feed(m, DataType.FLOAT, 2, 1);
        feed.remove("local");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> exec.run(feed));
        assertTrue(e.getMessage().contains("\"local\""), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> GraphExecutor.outputs(m.sd(), List.of("no_such_variable")));
    }

    @Test
    void sameDiffSwitchRunsThroughTheSession() {
        Model m = model(DataType.DOUBLE, 1e-6);
        System.setProperty("mugs.engine", "samediff");
        try {
            GraphExecutor exec = GraphExecutor.gradients(m.sd(), List.of("loss"), m.vit().parameterNames());
            assertFalse(exec.planned());
            Map<String, INDArray> feed = feed(m, DataType.DOUBLE, 2, 4);
            double expected = m.sd().calculateGradientsAndOutputs(feed, List.of("loss"), List.of())
                    .getOutputs().get("loss").getDouble(0);
            assertEquals(expected, exec.run(feed).outputs().get("loss").getDouble(0), 1e-12);
        } finally {
            System.clearProperty("mugs.engine");
        }
    }
}
