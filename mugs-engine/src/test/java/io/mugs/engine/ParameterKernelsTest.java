package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.CpuKernelsTest.Precision;
import io.mugs.engine.optim.AdamW;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The one-pass parameter updates: AdamW through {@link ParameterKernels} against AdamW through ND4J's ops (the
 * {@code update} kernel off) and against plain Java in double, over several steps with clipping, weight decay, two
 * learning-rate groups and tensors that span several chunks (DOUBLE 1e-10, FLOAT 1e-5, as every kernel); the EMA
 * against its formula; the finiteness flag.
 */
class ParameterKernelsTest {

    private static final String[] NAMES = {"blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias",
        "patch_embed.proj.weight", "head.last_layer.weight"};
    private static final long[][] SHAPES = {{96, 130}, {3}, {4, 4097}, {5, 2}};

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    /** Three AdamW steps of four tensors (12,480 + 3 + 16,388 + 10 elements) with the given kernels. */
    private static Map<String, INDArray> threeSteps(String kernels, DataType type, List<String> clippedOut) {
        Kernels.select(kernels);
        SplittableRandom rng = new SplittableRandom(7);
        Map<String, INDArray> params = new LinkedHashMap<>();
        for (int i = 0; i < NAMES.length; i++) {
            params.put(NAMES[i], random(rng, SHAPES[i], 1.0).castTo(type));
        }
        AdamW opt = new AdamW(params, n -> n.contains("patch_embed"), 0.2);
        for (int step = 0; step < 3; step++) {
            Map<String, INDArray> grads = new LinkedHashMap<>();
            for (int i = 0; i < NAMES.length; i++) {
                // step 0: the first two tensors' norms far above the limit 3 (clipped), later steps partly below
                grads.put(NAMES[i], random(rng, SHAPES[i], step == 0 ? 0.5 : 0.02).castTo(type));
            }
            clippedOut.addAll(opt.step(grads, 0.01, 0.04, 3.0, n -> false));
        }
        return params;
    }

    private static INDArray random(SplittableRandom rng, long[] shape, double scale) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        double[] v = new double[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = scale * (2 * rng.nextDouble() - 1);
        }
        return Nd4j.createFromArray(v).reshape(shape);
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void adamWInOnePassMatchesNd4jOps(Precision t) {
        List<String> clippedFused = new ArrayList<>();
        List<String> clippedNd4j = new ArrayList<>();
        Map<String, INDArray> fused = threeSteps("update", t.type, clippedFused);
        Map<String, INDArray> nd4j = threeSteps("none", t.type, clippedNd4j);
        assertEquals(clippedNd4j, clippedFused, "the same tensors clipped at the same steps");
        assertTrue(clippedFused.contains(NAMES[0]) && clippedFused.size() < 12, "some clipped, not all: " + clippedFused);
        for (String name : NAMES) {
            double[] a = fused.get(name).castTo(DataType.DOUBLE).data().asDouble();
            double[] b = nd4j.get(name).castTo(DataType.DOUBLE).data().asDouble();
            for (int j = 0; j < a.length; j++) {
                assertEquals(b[j], a[j], t.tolerance * Math.max(1, Math.abs(b[j])), name + "[" + j + "]");
            }
        }
    }

    @Test
    void adamWKernelFollowsPyTorchsFormulaInDouble() {
        Kernels.select("update");
        int n = 9000;   // three chunks
        SplittableRandom rng = new SplittableRandom(3);
        double[] p = new double[n];
        double[] g = new double[n];
        double[] m = new double[n];
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            p[i] = rng.nextDouble() - 0.5;
            g[i] = rng.nextDouble() - 0.5;
            m[i] = 0.1 * (rng.nextDouble() - 0.5);
            v[i] = 0.01 * rng.nextDouble();
        }
        INDArray pa = Nd4j.createFromArray(p);
        INDArray ga = Nd4j.createFromArray(g);
        INDArray ma = Nd4j.createFromArray(m);
        INDArray va = Nd4j.createFromArray(v);
        double sumSq = 0;
        for (double x : g) {
            sumSq += x * x;
        }
        assertEquals(sumSq, ParameterKernels.sumOfSquares(ga), 1e-12 * sumSq);
        ParameterKernels.AdamWStep s = new ParameterKernels.AdamWStep(0.7, 1 - 0.01 * 0.05, 0.9, 0.999,
                0.01 / (1 - Math.pow(0.9, 4)), Math.sqrt(1 - Math.pow(0.999, 4)), 1e-8);
        ParameterKernels.adamW(pa, ga, ma, va, s);
        assertTrue(ParameterKernels.allFinite(pa));
        for (int i = 0; i < n; i++) {
            double gi = g[i] * 0.7;
            double mi = 0.9 * m[i] + 0.1 * gi;
            double vi = 0.999 * v[i] + 0.001 * gi * gi;
            double u = 0.01 / (1 - Math.pow(0.9, 4)) * mi / (Math.sqrt(vi) / Math.sqrt(1 - Math.pow(0.999, 4)) + 1e-8);
            assertEquals(mi, ma.getDouble(i), 1e-15);
            assertEquals(vi, va.getDouble(i), 1e-15);
            assertEquals(u, ga.getDouble(i), 1e-13 * Math.max(1, Math.abs(u)), "g holds the step taken");
            assertEquals(p[i] * (1 - 0.01 * 0.05) - u, pa.getDouble(i), 1e-13);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void aNonFiniteParameterIsReported(Precision t) {
        Kernels.select("update");
        INDArray p = Nd4j.linspace(1, 5000, 5000).castTo(t.type);
        INDArray g = Nd4j.ones(t.type, 5000);
        ParameterKernels.AdamWStep s = new ParameterKernels.AdamWStep(1, 1, 0.9, 0.999, 1e-3, 1, 1e-8);
        ParameterKernels.adamW(p, g, Nd4j.zeros(t.type, 5000), Nd4j.zeros(t.type, 5000), s);
        assertTrue(ParameterKernels.allFinite(p));
        g.putScalar(4321, Double.NaN);
        ParameterKernels.adamW(p, g, Nd4j.zeros(t.type, 5000), Nd4j.zeros(t.type, 5000), s);
        assertFalse(ParameterKernels.allFinite(p), "a NaN gradient in the second chunk makes a NaN parameter");
        assertTrue(Double.isNaN(p.getDouble(4321)));
        p.putScalar(4321, 1.0);
        assertTrue(ParameterKernels.allFinite(p));
        p.putScalar(4999, Double.POSITIVE_INFINITY);
        assertFalse(ParameterKernels.allFinite(p), "an infinity in the last, partial chunk");
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void emaInOnePassFollowsItsFormula(Precision t) {
        Kernels.select("update");
        int n = 10_000;
        INDArray teacher = Nd4j.linspace(-1, 1, n).castTo(t.type);
        INDArray student = Nd4j.linspace(2, -3, n).castTo(t.type);
        double[] t0 = teacher.castTo(DataType.DOUBLE).data().asDouble();
        double[] s0 = student.castTo(DataType.DOUBLE).data().asDouble();
        assertTrue(ParameterKernels.covers(teacher, student));
        ParameterKernels.ema(teacher, student, 0.996);
        for (int i = 0; i < n; i++) {
            assertEquals(0.996 * t0[i] + 0.004 * s0[i], teacher.getDouble(i), t.tolerance * 4, "element " + i);
        }
    }

    @Test
    void coversOnlyWhatItCanAndOnlyWhenSelected() {
        Kernels.select("update");
        INDArray a = Nd4j.zeros(DataType.FLOAT, 4, 3);
        assertTrue(ParameterKernels.covers(a, Nd4j.zeros(DataType.FLOAT, 12)));
        assertFalse(ParameterKernels.covers(a, Nd4j.zeros(DataType.DOUBLE, 12)), "mixed types");
        assertFalse(ParameterKernels.covers(a, Nd4j.zeros(DataType.FLOAT, 13)), "different lengths");
        assertFalse(ParameterKernels.covers(a, Nd4j.zeros(DataType.FLOAT, 3, 4).transpose()), "not c-contiguous");
        Kernels.select("none");
        assertFalse(ParameterKernels.covers(a, a), "the update kernel switched off");
    }
}
