package io.mugs.losses;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class StateTest {

    private static final DataType D = DataType.DOUBLE;

    /** Rows whose first entry is an id, so positions can be traced. */
    private static INDArray tagged(int from, int n, int dim) {
        INDArray a = Plain.randn(from, n, dim);
        for (int i = 0; i < n; i++) {
            a.putScalar(i, 0, from + i);
        }
        return a;
    }

    @Test
    void queueIsAFifoWithWrapAroundOverManySteps() {
        FeatureQueue queue = new FeatureQueue(10, 3, D, 1);
        for (int i = 0; i < 10; i++) {
            assertEquals(1.0, queue.contents().getRow(i).norm2Number().doubleValue(), 1e-12, "unit-norm init");
        }
        List<Double> model = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            model.add(Double.NaN);
        }
        int pointer = 0;
        int id = 100;
        int[] sizes = {4, 4, 4, 3, 7, 2, 4};
        for (int n : sizes) {
            queue.enqueue(tagged(id, n, 3));
            for (int i = 0; i < n; i++) {
                model.set((pointer + i) % 10, (double) id + i);
            }
            pointer = (pointer + n) % 10;
            id += n;
            assertEquals(pointer, queue.pointer());
            for (int i = 0; i < 10; i++) {
                if (!model.get(i).isNaN()) {
                    assertEquals(model.get(i), queue.contents().getDouble(i, 0), 0.0, "slot " + i);
                }
            }
        }
        queue.enqueue(tagged(500, 13, 3));   // more rows than the queue: the last 10 remain
        assertEquals(503.0, queue.contents().getDouble(0, 0));
        assertEquals(512.0, queue.contents().getDouble(9, 0));
    }

    @Test
    void memoryPointerIsCorrectByDefaultAndReproducesTheOfficialQuirkOnRequest() {
        NeighbourMemory fixed = new NeighbourMemory(16, 2, 3, false, D, 1);
        NeighbourMemory quirk = new NeighbourMemory(16, 2, 3, true, D, 1);
        INDArray init = quirk.contents().dup();
        for (int step = 0; step < 8; step++) {
            fixed.write(tagged(1000 + 4 * step, 4, 2));
            quirk.write(tagged(1000 + 4 * step, 4, 2));
        }
        // Correct ring: after 32 rows the buffer holds rows 16..31 of the stream.
        for (int i = 0; i < 16; i++) {
            assertEquals(1000 + 16 + i, fixed.contents().getDouble(i, 0), 0.0);
        }
        // Official quirk with n = 4 dividing K/2: the pointer jumps by 8, slots 4..7 and 12..15 keep their init.
        for (int i : new int[] {4, 5, 6, 7, 12, 13, 14, 15}) {
            assertEquals(init.getDouble(i, 1), quirk.contents().getDouble(i, 1), 0.0, "slot " + i);
        }
        assertEquals(0, quirk.pointer());
        // Normalised copy follows every write.
        for (int i = 0; i < 16; i++) {
            INDArray row = fixed.contents().getRow(i);
            assertTrue(fixed.normalisedContents().getRow(i).equalsWithEps(row.div(row.norm2Number()), 1e-12));
        }
    }

    @Test
    void topKEqualsABruteForceSort() {
        NeighbourMemory mem = new NeighbourMemory(50, 6, 5, false, D, 3);
        INDArray queries = Plain.randn(4, 7, 6);
        INDArray idx = mem.topK(queries);
        assertArrayEquals(new long[] {7, 5}, idx.shape());
        double[][] rows = Plain.normalise(Plain.matrix(mem.contents()));
        double[][] q = Plain.normalise(Plain.matrix(queries));
        for (int b = 0; b < 7; b++) {
            int row = b;
            int[] expected = IntStream.range(0, 50).boxed()
                    .sorted(Comparator.comparingDouble((Integer i) -> -Plain.dot(q[row], rows[i])))
                    .limit(5).mapToInt(Integer::intValue).toArray();
            assertArrayEquals(expected, idx.getRow(b).toIntVector(), "query " + b);
        }
        INDArray gathered = mem.gather(idx);
        assertTrue(gathered.get(org.nd4j.linalg.indexing.NDArrayIndex.point(2),
                org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex.all())
                .equalsWithEps(mem.contents().getRow(idx.getInt(2, 1)), 0.0));
    }

    @Test
    void inGraphLookupMatchesTheMemoryAndGradientsReachTheQueryThroughTheAggregator() {
        VitConfig cfg = VitConfig.builder().imageSize(8).patchSize(4).embedDim(6).depth(1).numHeads(2).build();
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, D, 1);
        LocalGroupAggregator agg = new LocalGroupAggregator(sd, "", vit, 1, D, 2);
        NeighbourMemory mem = new NeighbourMemory(30, 6, 4, false, D, 5);
        SDVariable u = sd.var("u", Plain.randn(6, 3, 6));
        SDVariable rows = sd.placeHolder("mem", D, -1, 6);
        SDVariable normed = sd.placeHolder("mem_n", D, -1, 6);
        SDVariable nbrs = NeighbourLookup.neighbours(sd, u, normed, rows, 4);
        Map<String, INDArray> feed = new HashMap<>(Map.of("mem", mem.contents(), "mem_n", mem.normalisedContents()));
        INDArray inGraph = sd.output(feed, nbrs.name()).get(nbrs.name());
        assertTrue(inGraph.equalsWithEps(mem.gather(mem.topK(u.getArr())), 0.0));

        SDVariable y = agg.apply(u, nbrs, 4, vit);
        SDVariable loss = y.mul(sd.constant(Plain.randn(9, 3, 6))).sum();
        List<String> vars = new ArrayList<>(agg.parameterNames());
        vars.add("u");
        vars.add("norm.weight");
        LossesTest.checkGradients(sd, loss, feed, vars);
    }
}
