package io.mugs.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMultiplication;
import org.nd4j.linalg.api.ops.impl.transforms.floating.Sqrt;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Faster equivalents, built from other native ops, of graph ops whose libnd4j 1.0.0-M2.1 implementation is slow
 * (measured on [1088, 384] float, one thread):
 * <ul>
 *   <li>{@code multiply_bp} with broadcasting, 7.9 ms: the two products and a reduction, 0.2 ms;</li>
 *   <li>{@code add_bp} / {@code subtract_bp} with broadcasting, 0.4 ms: a copy and a reduction;</li>
 *   <li>{@code layer_norm}, 3.0 ms, and {@code layer_norm_bp}, 21 ms: the textbook formulas, 0.3 / 0.6 ms.</li>
 * </ul>
 * Sums over leading or trailing axes are matrix products with a vector of ones (libnd4j's {@code reduce_sum} over
 * the leading axis of [1088, 384] takes 0.38 ms, the product 0.03 ms). Each rewrite gives the op's values up to
 * float rounding; the executor's tests compare whole graphs against SameDiff's own session.
 */
final class Rewrites {

    /** Arrays a rewrite needs besides the op's inputs and outputs. */
    interface Scratch {
        /** A temporary of the given shape, free for others once the op has run. */
        INDArray temp(DataType type, long... shape);

        /** A constant matrix of ones. */
        INDArray ones(DataType type, long rows, long cols);
    }

    private Rewrites() {
    }

    /**
     * A kernel for {@code op}, or {@code null} when the native op is fine or the case is not covered.
     *
     * @param args    the op's input arrays
     * @param planned which inputs are arrays of the plan (fixed for the plan's life, contiguous)
     */
    static Kernel forOp(DynamicCustomOp op, INDArray[] args, INDArray[] outputs, boolean[] planned, Scratch scratch) {
        String name = op.opName();
        switch (name) {
            case "multiply_bp":
            case "add_bp":
            case "subtract_bp":
                return broadcastBackward(name, args, outputs, planned, scratch);
            case "divide_bp":
                return divideBackward(args, outputs, planned, scratch);
            case "layer_norm":
                return layerNormCase(op, args) ? layerNorm(args, outputs[0], scratch) : null;
            case "layer_norm_bp":
                return layerNormCase(op, args) && planned[args.length - 1]
                        ? layerNormBackward(args, outputs, scratch) : null;
            default:
                return null;
        }
    }

    /** A non-empty c-order array with the default strides of its shape (views of it can take any shape). */
    static boolean contiguous(INDArray a) {
        return a.ordering() == 'c' && !a.isEmpty() && Arrays.equals(a.stride(), Nd4j.getStrides(a.shape(), 'c'));
    }

    /** A c-order view of contiguous {@code a} with another shape of the same length. */
    private static INDArray view(INDArray a, long... shape) {
        return Nd4j.create(a.data(), shape, Nd4j.getStrides(shape, 'c'), a.offset(), 'c', a.dataType());
    }

    private static Kernel broadcastBackward(String name, INDArray[] args, INDArray[] outputs, boolean[] planned,
                                            Scratch scratch) {
        if (args.length != 3 || outputs.length != 2) {
            return null;
        }
        INDArray x = args[0];
        INDArray y = args[1];
        INDArray dz = args[2];
        if (Arrays.equals(x.shape(), y.shape()) || !planned[2] || !contiguous(dz)
                || !contiguous(outputs[0]) || !contiguous(outputs[1]) || x.dataType() != dz.dataType()) {
            return null;
        }
        Kernel k = new Kernel();
        boolean multiply = name.equals("multiply_bp");
        for (int i = 0; i < 2; i++) {
            INDArray target = outputs[i];
            INDArray other = args[1 - i];
            double sign = name.equals("subtract_bp") && i == 1 ? -1 : 1;
            INDArray source = dz;
            if (multiply) {
                if (Arrays.equals(target.shape(), dz.shape())) {
                    k.pairwise("multiply", dz, other, target);
                    continue;
                }
                source = scratch.temp(dz.dataType(), dz.shape());
                k.pairwise("multiply", dz, other, source);
            }
            if (!reduceTo(k, source, target, sign, scratch)) {
                return null;
            }
        }
        return k;
    }

    /**
     * {@code z = x / y}: {@code dx = reduce(dz / y)}, {@code dy = -reduce(dz x / y^2)}, each reduced over the axes
     * its operand was broadcast along (the weight-normalised prototypes, [65536, 256] / [65536, 1]: 0.94 s native).
     */
    private static Kernel divideBackward(INDArray[] args, INDArray[] outputs, boolean[] planned, Scratch scratch) {
        if (args.length != 3 || outputs.length != 2) {
            return null;
        }
        INDArray x = args[0];
        INDArray y = args[1];
        INDArray dz = args[2];
        if (Arrays.equals(x.shape(), y.shape()) || !planned[2] || !contiguous(dz) || !contiguous(outputs[0])
                || !contiguous(outputs[1]) || x.dataType() != dz.dataType()) {
            return null;
        }
        Kernel k = new Kernel();
        DataType type = dz.dataType();
        boolean dxFull = Arrays.equals(outputs[0].shape(), dz.shape());
        INDArray quotient = dxFull ? outputs[0] : scratch.temp(type, dz.shape());
        k.pairwise("divide", dz, y, quotient);
        if (!dxFull && !reduceTo(k, quotient, outputs[0], 1, scratch)) {
            return null;
        }
        INDArray t = scratch.temp(type, dz.shape());
        k.pairwise("multiply", quotient, x, t).pairwise("divide", t, y, t);
        return reduceTo(k, t, outputs[1], -1, scratch) ? k : null;
    }

    /** Adds {@code target = sign * sum of source over the axes target broadcasts along}. */
    private static boolean reduceTo(Kernel k, INDArray source, INDArray target, double sign, Scratch scratch) {
        long[] z = source.shape();
        long[] t = target.shape();
        if (t.length > z.length) {
            return false;
        }
        long[] aligned = new long[z.length];
        Arrays.fill(aligned, 1);
        System.arraycopy(t, 0, aligned, z.length - t.length, t.length);
        List<Integer> axes = new ArrayList<>();
        for (int i = 0; i < z.length; i++) {
            if (aligned[i] == 1 && z[i] != 1) {
                axes.add(i);
            } else if (aligned[i] != z[i]) {
                return false;
            }
        }
        DataType type = source.dataType();
        if (axes.isEmpty()) {
            k.legacy(new ScalarMultiplication(view(source, aligned), null, view(target, aligned), sign));
            return true;
        }
        int first = axes.get(0);
        int last = axes.get(axes.size() - 1);
        boolean block = last - first + 1 == axes.size();
        long inner = 1;
        for (int i = first; i <= last; i++) {
            inner *= z[i];
        }
        long rows = 1;
        for (int i = 0; i < first; i++) {
            rows *= z[i];
        }
        long cols = 1;
        for (int i = last + 1; i < z.length; i++) {
            cols *= z[i];
        }
        if (block && first == 0) {
            // Sum over leading axes: ones[1, inner] x source[inner, cols].
            k.matmul(scratch.ones(type, 1, inner), view(source, inner, cols), view(target, 1, cols), false, false,
                    sign);
        } else if (block && last == z.length - 1) {
            // Sum over trailing axes: source[rows, inner] x ones[inner, 1].
            k.matmul(view(source, rows, inner), scratch.ones(type, inner, 1), view(target, rows, 1), false, false,
                    sign);
        } else {
            long[] dims = axes.stream().mapToLong(Integer::longValue).toArray();
            INDArray out = view(target, aligned);
            k.op("reduce_sum", new INDArray[] {source}, new INDArray[] {out}, dims, new boolean[] {true}, null);
            if (sign != 1) {
                k.legacy(new ScalarMultiplication(out, null, out, sign));
            }
        }
        return true;
    }

    /** Rank-2 input normalised over its last axis, the only form the library's graphs use. */
    private static boolean layerNormCase(DynamicCustomOp op, INDArray[] args) {
        long[] dims = op.iArgs();
        return args[0].rank() == 2 && dims.length == 1 && (dims[0] == 1 || dims[0] == -1) && contiguous(args[0])
                && (op.bArgs().length == 0 || !op.bArgs()[0]);
    }

    /** Row statistics of x [N, D]: centred x, and the population standard deviation [N, 1] (no epsilon). */
    private static INDArray[] centreAndStd(Kernel k, INDArray x, Scratch scratch) {
        DataType type = x.dataType();
        long n = x.size(0);
        long d = x.size(1);
        INDArray onesD = scratch.ones(type, d, 1);
        INDArray mean = scratch.temp(type, n, 1);
        INDArray centred = scratch.temp(type, n, d);
        INDArray square = scratch.temp(type, n, d);
        INDArray std = scratch.temp(type, n, 1);
        k.matmul(x, onesD, mean, false, false, 1.0 / d)
                .pairwise("subtract", x, mean, centred)
                .pairwise("multiply", centred, centred, square)
                .matmul(square, onesD, std, false, false, 1.0 / d)
                .legacy(new Sqrt(std, std));
        return new INDArray[] {centred, std};
    }

    /** libnd4j's layer_norm: {@code (x - mean) / std * gain (+ bias)}, std without epsilon. */
    private static Kernel layerNorm(INDArray[] args, INDArray y, Scratch scratch) {
        if (!contiguous(y)) {
            return null;
        }
        Kernel k = new Kernel();
        INDArray[] cs = centreAndStd(k, args[0], scratch);
        k.pairwise("divide", cs[0], cs[1], y).pairwise("multiply", y, args[1], y);
        if (args.length > 2) {
            k.pairwise("add", y, args[2], y);
        }
        return k;
    }

    /**
     * The gradient of {@link #layerNorm}: with x̂ = (x - mean) / std and h = dy * gain,
     * {@code dx = (h - mean(h) - x̂ mean(h x̂)) / std}, {@code dgain = sum_rows(dy x̂)}, {@code dbias = sum_rows(dy)}.
     */
    private static Kernel layerNormBackward(INDArray[] args, INDArray[] outputs, Scratch scratch) {
        for (INDArray o : outputs) {
            if (!contiguous(o)) {
                return null;
            }
        }
        INDArray x = args[0];
        INDArray gain = args[1];
        INDArray dy = args[args.length - 1];
        DataType type = x.dataType();
        long n = x.size(0);
        long d = x.size(1);
        INDArray onesN = scratch.ones(type, 1, n);
        INDArray onesD = scratch.ones(type, d, 1);
        Kernel k = new Kernel();
        INDArray[] cs = centreAndStd(k, x, scratch);
        INDArray std = cs[1];
        INDArray xhat = scratch.temp(type, n, d);
        INDArray h = scratch.temp(type, n, d);
        INDArray tmp = scratch.temp(type, n, d);
        INDArray meanH = scratch.temp(type, n, 1);
        INDArray meanHx = scratch.temp(type, n, 1);
        INDArray dx = outputs[0];
        k.pairwise("divide", cs[0], std, xhat)
                .pairwise("multiply", dy, xhat, tmp)
                .matmul(onesN, tmp, view(outputs[1], 1, d), false, false, 1.0);
        if (outputs.length > 2) {
            k.matmul(onesN, dy, view(outputs[2], 1, d), false, false, 1.0);
        }
        k.pairwise("multiply", dy, gain, h)
                .matmul(h, onesD, meanH, false, false, 1.0 / d)
                .pairwise("multiply", h, xhat, tmp)
                .matmul(tmp, onesD, meanHx, false, false, 1.0 / d)
                .pairwise("multiply", xhat, meanHx, tmp)
                .pairwise("subtract", h, meanH, dx)
                .pairwise("subtract", dx, tmp, dx)
                .pairwise("divide", dx, std, dx);
        return k;
    }
}
