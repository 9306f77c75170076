package io.mugs.engine;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

/**
 * What one graph op computes, as a short sequence of calls each with its arrays and arguments bound once: native
 * ND4J ops ({@link Rewrites} builds them for ops whose libnd4j implementation is slow; every op used there exists on
 * the CPU and the CUDA backends), or Java code working on the arrays' memory ({@link CpuKernels}, CPU backend only;
 * see {@link Kernels} for the choice).
 *
 * <p>Inputs of the graph op are used directly (never through views), so when a placeholder or variable array
 * changes, {@link #rebind} swaps it in every call that reads it.
 */
final class Kernel {

    private interface Call {
        void run();

        void rebind(INDArray old, INDArray now);
    }

    private final List<Call> calls = new ArrayList<>();
    private final List<OpContext> contexts = new ArrayList<>();

    /** Adds a custom op (by its libnd4j name) reading {@code in} and writing {@code out}. */
    Kernel op(String name, INDArray[] in, INDArray[] out, long[] iArgs, boolean[] bArgs, double[] tArgs) {
        DynamicCustomOp op = DynamicCustomOp.builder(name).build();
        OpContext oc = Nd4j.getExecutioner().buildContext();
        oc.setInputArrays(in);
        oc.setOutputArrays(out);
        if (iArgs != null) {
            oc.setIArguments(iArgs);
        }
        if (bArgs != null) {
            oc.setBArguments(bArgs);
        }
        if (tArgs != null) {
            oc.setTArguments(tArgs);
        }
        contexts.add(oc);
        INDArray[] bound = in.clone();
        calls.add(new Call() {
            public void run() {
                Nd4j.exec(op, oc);
            }

            public void rebind(INDArray old, INDArray now) {
                for (int i = 0; i < bound.length; i++) {
                    if (bound[i] == old) {
                        oc.setInputArray(i, now);
                        bound[i] = now;
                    }
                }
            }
        });
        return this;
    }

    /** Element-wise (broadcasting) {@code out = a <name> b}, name one of multiply, add, subtract, divide. */
    Kernel pairwise(String name, INDArray a, INDArray b, INDArray out) {
        return op(name, new INDArray[] {a, b}, new INDArray[] {out}, null, null, null);
    }

    /** {@code out = alpha * op(a) op(b)} with optional transposes. */
    Kernel matmul(INDArray a, INDArray b, INDArray out, boolean transposeA, boolean transposeB, double alpha) {
        return op("matmul", new INDArray[] {a, b}, new INDArray[] {out},
                new long[] {transposeA ? 1 : 0, transposeB ? 1 : 0, 0}, null, new double[] {alpha, 0.0});
    }

    /** A legacy op whose x, y and z were set on the op itself (only ever on the kernel's own arrays). */
    Kernel legacy(Op op) {
        calls.add(new Call() {
            public void run() {
                Nd4j.exec(op);
            }

            public void rebind(INDArray old, INDArray now) {
                // bound to scratch arrays only
            }
        });
        return this;
    }

    /** Java code reading {@code in} (swapped by {@link #rebind} like a native op's inputs). */
    interface Body {
        void run(INDArray[] in);
    }

    /** Adds a call of Java code on {@code in}; its outputs are fixed arrays the body holds itself. */
    Kernel java(INDArray[] in, Body body) {
        INDArray[] bound = in.clone();
        calls.add(new Call() {
            public void run() {
                body.run(bound);
            }

            public void rebind(INDArray old, INDArray now) {
                for (int i = 0; i < bound.length; i++) {
                    if (bound[i] == old) {
                        bound[i] = now;
                    }
                }
            }
        });
        return this;
    }

    /** Adds {@code next}'s calls after this kernel's (they run in order, and are rebound together). */
    Kernel then(Kernel next) {
        calls.addAll(next.calls);
        contexts.addAll(next.contexts);
        return this;
    }

    void run() {
        for (Call c : calls) {
            c.run();
        }
    }

    /** Replaces input array {@code old} by {@code now} in every call that reads it. */
    void rebind(INDArray old, INDArray now) {
        for (Call c : calls) {
            c.rebind(old, now);
        }
    }

    void close() {
        for (OpContext oc : contexts) {
            try {
                oc.close();
            } catch (Exception e) {
                // frees native pointers only
            }
        }
    }
}
