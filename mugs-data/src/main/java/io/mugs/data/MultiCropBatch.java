package io.mugs.data;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One step's multi-crop batch, views stacked view-major (rows {@code [v*B, (v+1)*B)} are view v).
 *
 * @param teacherGlobals [2B, C, G, G]: teacher view 0 then view 1
 * @param studentGlobals [2B, C, G, G]: student global view 0 then view 1
 * @param locals         [N*B, C, L, L] (an empty array when N = 0)
 * @param weakFlags      [B]: the student globals of image b are weak
 * @param indices        [B]: dataset indices of the images
 * @param labels         [B]: class labels, -1 when unlabelled
 */
public record MultiCropBatch(INDArray teacherGlobals, INDArray studentGlobals, INDArray locals, boolean[] weakFlags,
                             int[] indices, int[] labels) {

    public int batchSize() {
        return weakFlags.length;
    }

    /** Fraction of images with weak student globals. */
    public double weakFraction() {
        int n = 0;
        for (boolean w : weakFlags) {
            n += w ? 1 : 0;
        }
        return (double) n / weakFlags.length;
    }
}
