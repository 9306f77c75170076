package io.mugs.engine;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.Op;

/**
 * The mean or sum over the leading axes of an array, {@code [N, D] -> [D]} (kernel {@code columns}; libnd4j's
 * legacy {@code reduce_mean} and {@code reduce_sum} over dimension 0): the batch statistics of the heads' batch norm,
 * {@code [V*B, 512]} per layer, twelve a step in the {@code fm} student and as many in the teacher. libnd4j reduces
 * each column on its own with a stride of {@code D} elements (about 2.5 ns an element at {@code [192, 512]}); this
 * kernel reads the rows in order and adds each into a row of {@code double} sums, then rounds once. One thread: the
 * arrays are small. Checked against libnd4j's op by {@code ColumnReductionTest} (DOUBLE 1e-12, FLOAT 1e-6).
 *
 * <pre>{@code
 * Kernel k = ColumnReduction.forOp(op, args, outputs);   // null where the native op should run
 * }</pre>
 */
final class ColumnReduction {

    private ColumnReduction() {
    }

    /**
     * The kernel for a legacy {@code reduce_mean} or {@code reduce_sum} of {@code x} over its leading axes {@code 0..k-1}
     * ({@code k < rank}), or {@code null}: another reduction, other axes, or arrays the kernels cannot read in place.
     */
    static Kernel forOp(Op op, INDArray[] args, INDArray[] outputs) {
        String name = op.opName();
        boolean mean = name.equals("reduce_mean");
        if (!mean && !name.equals("reduce_sum") || args.length < 1 || outputs.length != 1) {
            return null;
        }
        INDArray x = args[0];
        INDArray y = outputs[0];
        int[] dims = ((org.nd4j.autodiff.functions.DifferentialFunction) op).getDimensions();
        if (dims == null || dims.length == 0 || dims.length >= x.rank() || !NativeRows.supports(x)
                || !NativeRows.supports(y) || x.dataType() != y.dataType()) {
            return null;
        }
        int[] sorted = dims.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; i++) {
            if (sorted[i] != i) {
                return null;
            }
        }
        long rows = 1;
        for (int i = 0; i < sorted.length; i++) {
            rows *= x.size(i);
        }
        int d = (int) (x.length() / Math.max(rows, 1));
        if (rows == 0 || y.length() != d) {
            return null;
        }
        return columnSums(x, y, rows, d, mean);
    }

    /**
     * The gradient of a tile along leading axes, libnd4j's {@code tile_bp} (inputs x, the repeats unless they are integer arguments, dy; output dx of
     * x's shape), where x is [1, ..., 1, trailing...] repeated along the axes of size 1 only: the column sums of dy
     * viewed as [copies, x.length] (the class token's tile over the batch, [B, 1, D] from [1, 1, D]: 0.9 ms a call in
     * libnd4j at B = 128, D = 96). {@code null} for any other tiling or arrays the kernels cannot read in place.
     */
    static Kernel tileBackward(INDArray[] args, INDArray[] outputs) {
        if (args.length < 2 || args.length > 3 || outputs.length != 1) {
            return null;
        }
        INDArray x = args[0];
        INDArray dy = args[args.length - 1];
        INDArray dx = outputs[0];
        if (x.rank() != dy.rank() || dx.length() != x.length() || !NativeRows.supports(dy) || !NativeRows.supports(dx)
                || dy.dataType() != dx.dataType() || x.length() == 0) {
            return null;
        }
        boolean trailing = false;
        for (int i = 0; i < x.rank(); i++) {
            if (dy.size(i) == x.size(i)) {
                trailing |= x.size(i) > 1;
            } else if (x.size(i) != 1 || trailing) {
                return null;   // repeated along an axis of size > 1, or after one: not a block of whole copies
            }
        }
        return columnSums(dy, dx, dy.length() / x.length(), (int) x.length(), false);
    }

    /** {@code y[j] = sum_r x[r, j]} (divided by the rows for a mean) of x viewed as [rows, d], in double. */
    private static Kernel columnSums(INDArray x, INDArray y, long rows, int d, boolean mean) {
        long n = rows;
        double[] row = new double[d];
        double[] sum = new double[d];
        return new Kernel().java(new INDArray[] {x}, in -> {
            NativeRows from = NativeRows.of(in[0]);
            Arrays.fill(sum, 0);
            for (long r = 0; r < n; r++) {
                from.read(r * d, row, d);
                for (int j = 0; j < d; j++) {
                    sum[j] += row[j];
                }
            }
            if (mean) {
                for (int j = 0; j < d; j++) {
                    sum[j] /= n;
                }
            }
            NativeRows.of(y).write(0, sum, d);
        });
    }
}
