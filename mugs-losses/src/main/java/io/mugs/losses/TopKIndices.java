package io.mugs.losses;

import java.util.Collections;
import java.util.List;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.common.base.Preconditions;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * libnd4j's {@code top_k} with the arguments in the order the native op reads them.
 *
 * <p>ND4J 1.0.0-M2.1's {@code sd.nn.topK(x, k, sorted)} sends {@code [sorted, k]} while libnd4j reads k from
 * the first integer argument, so it always returns the top 1. This op sends {@code [k, sorted]}. Its outputs
 * are the top-k values and INT indices along the last dimension, largest first; the indices carry no gradient,
 * which is what a neighbour lookup needs.
 *
 * <pre>{@code
 * SDVariable idx = TopKIndices.indices(sd, similarities, 8);   // [B, 8] INT
 * INDArray idx = TopKIndices.indices(similarityArray, 8);       // eager
 * }</pre>
 */
public final class TopKIndices extends DynamicCustomOp {

    /** Required by ND4J's op registry; use the static helpers. */
    public TopKIndices() {
    }

    private TopKIndices(SameDiff sd, SDVariable in, int k) {
        super(null, sd, new SDVariable[] {in}, false);
        addIArgument(k, 1);
    }

    private TopKIndices(INDArray in, int k) {
        super(null, new INDArray[] {in}, null);
        addIArgument(k, 1);
    }

    @Override
    public String opName() {
        return "top_k";
    }

    @Override
    public List<DataType> calculateOutputDataTypes(List<DataType> dataTypes) {
        Preconditions.checkState(dataTypes != null && dataTypes.size() == 1, "Expected one input, got %s", dataTypes);
        return List.of(dataTypes.get(0), DataType.INT);
    }

    @Override
    public List<SDVariable> doDiff(List<SDVariable> grads) {
        return Collections.singletonList(sameDiff.zerosLike(arg()));
    }

    /** Graph op: indices [.., k] of the k largest entries along the last dimension of {@code x}. */
    public static SDVariable indices(SameDiff sd, SDVariable x, int k) {
        return new TopKIndices(sd, x, k).outputVariables()[1];
    }

    /** Eager: indices [.., k] (INT) of the k largest entries along the last dimension, largest first. */
    public static INDArray indices(INDArray x, int k) {
        if (k < 1 || k > x.size(-1)) {
            throw new IllegalArgumentException("k must be in [1, " + x.size(-1) + "], got " + k);
        }
        TopKIndices op = new TopKIndices(x, k);
        return Nd4j.exec(op)[1];
    }
}
