package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Every Java kernel against the libnd4j op it replaces, on the same inputs: DOUBLE to 1e-10, FLOAT to 1e-5
 * (relative to the output's largest magnitude), including sizes that split over the cores.
 */
class CpuKernelsTest {

    enum Precision {
        DOUBLE(DataType.DOUBLE, 1e-10), FLOAT(DataType.FLOAT, 1e-5);

        final DataType type;
        final double tolerance;

        Precision(DataType type, double tolerance) {
            this.type = type;
            this.tolerance = tolerance;
        }
    }

    private static INDArray random(DataType type, long seed, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, shape).muli(2).castTo(type);
    }

    /** Outputs of the native op and of the Java kernel for the same op, inputs and output shapes. */
    private static void assertKernelMatchesNative(Precision p, DynamicCustomOp op, INDArray[] in, long[]... outShapes) {
        INDArray[] expected = new INDArray[outShapes.length];
        INDArray[] actual = new INDArray[outShapes.length];
        for (int i = 0; i < outShapes.length; i++) {
            expected[i] = Nd4j.zeros(p.type, outShapes[i]);
            actual[i] = Nd4j.zeros(p.type, outShapes[i]).addi(7);
        }
        try (OpContext oc = Nd4j.getExecutioner().buildContext()) {
            oc.setArgs(in, op.iArgs(), op.dArgs(), op.tArgs(), op.bArgs());
            oc.setOutputArrays(expected);
            Nd4j.exec(op, oc);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        Kernel k = CpuKernels.forOp(op, in, actual, Kernels.JAVA_OPS);
        assertNotNull(k, op.opName() + " has a Java kernel for " + CpuKernelsTestShapes.of(in));
        k.run();
        for (int i = 0; i < outShapes.length; i++) {
            double scale = Math.max(1e-3, expected[i].amaxNumber().doubleValue());
            double diff = expected[i].sub(actual[i]).amaxNumber().doubleValue();
            assertTrue(diff <= p.tolerance * scale, op.opName() + " output " + i + " " + p + ": max difference "
                    + diff + " against scale " + scale);
        }
    }

    private static DynamicCustomOp op(String name, long[] iArgs, double[] tArgs, boolean[] bArgs) {
        DynamicCustomOp.DynamicCustomOpsBuilder b = DynamicCustomOp.builder(name);
        if (iArgs != null) {
            for (long v : iArgs) {
                b.addIntegerArguments(v);
            }
        }
        if (tArgs != null) {
            b.addFloatingPointArguments(toObjects(tArgs));
        }
        if (bArgs != null) {
            for (boolean v : bArgs) {
                b.addBooleanArguments(v);
            }
        }
        return b.build();
    }

    private static Double[] toObjects(double[] v) {
        Double[] out = new Double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void logSoftmaxAndItsBackwardMatchLibnd4j(Precision p) {
        // [192, 1024]: the fm group loss's rows (split over the cores); [3, 4, 13]: rank 3, a width off the lanes.
        for (long[] shape : new long[][] {{7, 5}, {3, 4, 13}, {192, 1024}}) {
            INDArray x = random(p.type, 11, shape).muli(4);
            INDArray dy = random(p.type, 12, shape);
            assertKernelMatchesNative(p, op("log_softmax", null, null, null), new INDArray[] {x}, shape);
            assertKernelMatchesNative(p, op("log_softmax", new long[] {shape.length - 1}, null, null),
                    new INDArray[] {x}, shape);
            assertKernelMatchesNative(p, op("log_softmax_bp", new long[] {-1}, null, null), new INDArray[] {x, dy},
                    shape);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void softmaxOverTheLastAxisMatchesLibnd4j(Precision p) {
        for (long[] shape : new long[][] {{7, 5}, {4, 3, 9, 9}, {256, 1000}}) {
            INDArray x = random(p.type, 1, shape);
            assertKernelMatchesNative(p, op("softmax", new long[] {-1}, null, null), new INDArray[] {x}, shape);
            assertKernelMatchesNative(p, op("softmax", new long[] {shape.length - 1}, null, null),
                    new INDArray[] {x}, shape);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void softmaxBackwardMatchesLibnd4j(Precision p) {
        for (long[] shape : new long[][] {{7, 5}, {4, 3, 9, 9}, {256, 1000}}) {
            INDArray x = random(p.type, 2, shape);
            INDArray dy = random(p.type, 3, shape);
            assertKernelMatchesNative(p, op("softmax_bp", new long[] {-1}, null, null), new INDArray[] {x, dy},
                    shape);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void layerNormMatchesLibnd4jWithAndWithoutBias(Precision p) {
        for (long[] shape : new long[][] {{9, 16}, {5, 13}, {1088, 96}}) {
            INDArray x = random(p.type, 4, shape).addi(0.5);
            INDArray gain = random(p.type, 5, shape[1]);
            INDArray bias = random(p.type, 6, shape[1]);
            DynamicCustomOp ln = op("layer_norm", new long[] {1}, null, new boolean[] {false});
            assertKernelMatchesNative(p, ln, new INDArray[] {x, gain, bias}, shape);
            assertKernelMatchesNative(p, ln, new INDArray[] {x, gain}, shape);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void layerNormBackwardMatchesLibnd4j(Precision p) {
        for (long[] shape : new long[][] {{9, 16}, {5, 13}, {1088, 96}}) {
            INDArray x = random(p.type, 7, shape);
            INDArray gain = random(p.type, 8, shape[1]);
            INDArray bias = random(p.type, 9, shape[1]);
            INDArray dy = random(p.type, 10, shape);
            DynamicCustomOp bp = op("layer_norm_bp", new long[] {1}, null, new boolean[] {false});
            assertKernelMatchesNative(p, bp, new INDArray[] {x, gain, bias, dy}, shape, new long[] {shape[1]},
                    new long[] {shape[1]});
            assertKernelMatchesNative(p, bp, new INDArray[] {x, gain, dy}, shape, new long[] {shape[1]});
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void batchedMatmulMatchesLibnd4jForEveryTransposeAndAlpha(Precision p) {
        int[][] cases = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
        for (int[] t : cases) {
            long m = 5;
            long k = 32;
            long n = 7;
            long[] a = t[0] == 0 ? new long[] {16, 3, m, k} : new long[] {16, 3, k, m};
            long[] b = t[1] == 0 ? new long[] {16, 3, k, n} : new long[] {16, 3, n, k};
            INDArray x = random(p.type, 11, a);
            INDArray y = random(p.type, 12, b);
            assertKernelMatchesNative(p, op("matmul", new long[] {t[0], t[1], 0}, new double[] {0.125, 0}, null),
                    new INDArray[] {x, y}, new long[] {16, 3, m, n});
            INDArray dz = random(p.type, 13, 16, 3, m, n);
            assertKernelMatchesNative(p, op("matmul_bp", new long[] {t[0], t[1], 0}, null, null),
                    new INDArray[] {x, y, dz}, a, b);
        }
        INDArray x3 = random(p.type, 14, 640, 9, 9);
        INDArray y3 = random(p.type, 15, 640, 9, 32);
        assertKernelMatchesNative(p, op("matmul", new long[] {0, 0, 0}, new double[] {1, 0}, null),
                new INDArray[] {x3, y3}, new long[] {640, 9, 32});
    }

    @Test
    void largeOrUnbatchedProductsAndOtherAxesStayNative() {
        INDArray a = Nd4j.rand(DataType.FLOAT, 2, 100, 64);
        INDArray b = Nd4j.rand(DataType.FLOAT, 2, 64, 100);
        assertNull(CpuKernels.forOp(op("matmul", new long[] {0, 0, 0}, null, null), new INDArray[] {a, b},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 2, 100, 100)}, Kernels.JAVA_OPS), "100 tokens");
        INDArray c = Nd4j.rand(DataType.FLOAT, 2, 17, 32);
        INDArray e = Nd4j.rand(DataType.FLOAT, 2, 32, 17);
        assertNull(CpuKernels.forOp(op("matmul", new long[] {0, 0, 0}, null, null), new INDArray[] {c, e},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 2, 17, 17)}, Kernels.JAVA_OPS), "17 x 32 x 17 products");
        INDArray m = Nd4j.rand(DataType.FLOAT, 8, 8);
        assertNull(CpuKernels.forOp(op("matmul", new long[] {0, 0, 0}, null, null), new INDArray[] {m, m},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 8, 8)}, Kernels.JAVA_OPS), "rank 2 stays with oneDNN");
        INDArray x = Nd4j.rand(DataType.FLOAT, 4, 6);
        assertNull(CpuKernels.forOp(op("softmax", new long[] {0}, null, null), new INDArray[] {x},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 4, 6)}, Kernels.JAVA_OPS), "softmax over axis 0");
        assertNull(CpuKernels.forOp(op("softmax", new long[] {-1}, null, null), new INDArray[] {x.transpose()},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 6, 4)}, Kernels.JAVA_OPS), "a strided input");
        assertNull(CpuKernels.forOp(op("softmax", new long[] {-1}, null, null), new INDArray[] {x},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 4, 6)}, Set.of("layer_norm")), "switched off");
    }

    @Test
    void theFloatPrecisionExponentialIsWithin1e8OfMathExp() {
        double worst = 0;
        for (int i = 0; i <= 1_000_000; i++) {
            double x = -700.0 * i / 1_000_000;
            double exact = Math.exp(x);
            worst = Math.max(worst, Math.abs(CpuKernels.expNonPositive(x) - exact) / exact);
        }
        assertTrue(worst < 1e-8, "largest relative error " + worst);
        assertEquals(0.0, CpuKernels.expNonPositive(-800));
        assertEquals(1.0, CpuKernels.expNonPositive(0), 1e-15);
    }

    @Test
    void theSettingNamesKernelsOrRefusesWithTheList() {
        assertEquals(Kernels.JAVA_OPS, Kernels.parse("all"));
        assertEquals(Set.of(), Kernels.parse("none"));
        // Surefire starts the JVM with the Vector API, so the default includes the fused GELU, attention, exp and
        // LayerNorm.
        assertEquals(Set.of("matmul", "matmul_bp", "gelu", "attention", "update", "exp", "layernorm", "columns",
                "layer_norm", "layer_norm_bp", "log_softmax", "log_softmax_bp"), Kernels.parse("default"));
        assertEquals(Set.of("softmax", "matmul_bp"), Kernels.parse("softmax, matmul_bp"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Kernels.parse("erfc"));
        assertEquals("mugs.engine.javaKernels: no Java kernel for \"erfc\"; use default, all, none or some of "
                + "[attention, columns, exp, gelu, layer_norm, layer_norm_bp, layernorm, log_softmax, log_softmax_bp, "
                + "matmul, matmul_bp, softmax, "
                + "softmax_bp, update]",
                e.getMessage());
    }

    @Test
    void rowsSplitOverThreadsGiveTheSameResultAsOneThread() {
        int rows = 1000;
        double[] seen = new double[rows];
        Threads.forRows(rows, 1_000_000, (from, to) -> {
            for (int r = from; r < to; r++) {
                seen[r] += r;
            }
        });
        for (int r = 0; r < rows; r++) {
            assertEquals(r, seen[r], "row " + r + " visited exactly once");
        }
    }

    /** Shapes for messages. */
    private static final class CpuKernelsTestShapes {
        static String of(INDArray[] in) {
            StringBuilder sb = new StringBuilder();
            for (INDArray a : in) {
                sb.append(java.util.Arrays.toString(a.shape()));
            }
            return sb.toString();
        }
    }
}
