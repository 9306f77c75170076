package io.mugs.losses;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.ReferenceVit;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class HeadsTest {

    private static final DataType D = DataType.DOUBLE;

    private static void perturb(SameDiff sd, List<String> names, long seed) {
        for (String n : names) {
            INDArray a = sd.getArrForVarName(n);
            a.addi(Plain.randn(seed + n.hashCode(), a.shape()).muli(0.2));
        }
    }

    @Test
    void projectionHeadMatchesPlainJavaWithAndWithoutBatchNorm() {
        for (boolean bn : new boolean[] {false, true}) {
            SameDiff sd = SameDiff.create();
            ProjectionHead head = new ProjectionHead(sd, "instance_head.", new ProjectionHead.Options(6, 10, 4, 12, bn), D, 3);
            if (bn) {
                perturb(sd, List.of("instance_head.projector.1.weight", "instance_head.projector.4.bias"), 1);
                assertEquals(List.of("instance_head.projector.0.weight", "instance_head.projector.1.weight",
                        "instance_head.projector.1.bias", "instance_head.projector.3.weight",
                        "instance_head.projector.4.weight", "instance_head.projector.4.bias",
                        "instance_head.projector.6.weight"), head.projectorParameterNames());
            } else {
                assertEquals(List.of("instance_head.projector.0.weight", "instance_head.projector.2.weight",
                        "instance_head.projector.4.weight"), head.projectorParameterNames());
            }
            SDVariable x = sd.placeHolder("x", D, -1, 6);
            SDVariable target = head.teacherTarget(x);
            SDVariable pred = head.studentPrediction(x);
            INDArray in = Plain.randn(5, 7, 6);
            Map<String, INDArray> out = sd.output(Map.of("x", in), target.name(), pred.name());

            List<String> p = head.projectorParameterNames();
            double[][] h = Plain.matrix(in);
            int w = 0;
            for (int layer = 0; layer < 3; layer++) {
                h = Plain.linear(h, Plain.weight(sd, p.get(w++)), null);
                if (layer < 2) {
                    if (bn) {
                        h = Plain.batchNorm(h, Plain.vector(sd, p.get(w)), Plain.vector(sd, p.get(w + 1)));
                        w += 2;
                    }
                    h = Plain.gelu(h);
                }
            }
            double[][] z = Plain.normalise(h);
            double[][] q = Plain.normalise(Plain.linear(Plain.gelu(Plain.linear(z,
                    Plain.weight(sd, "instance_head.predictor.0.weight"), null)),
                    Plain.weight(sd, "instance_head.predictor.2.weight"), null));
            assertTrue(Plain.maxAbsDiff(z, out.get(target.name())) < 1e-12, "teacher target, bn=" + bn);
            assertTrue(Plain.maxAbsDiff(q, out.get(pred.name())) < 1e-12, "student prediction, bn=" + bn);
        }
    }

    @Test
    void teacherHeadHasNoPredictor() {
        SameDiff sd = SameDiff.create();
        ProjectionHead head = new ProjectionHead(sd, "t.", new ProjectionHead.Options(6, 10, 4, 0, false), D, 3);
        assertTrue(head.predictorParameterNames().isEmpty());
        SDVariable x = sd.placeHolder("x", D, -1, 6);
        var e = assertThrows(IllegalStateException.class, () -> head.studentPrediction(x));
        assertTrue(e.getMessage().contains("no predictor"));
    }

    @Test
    void groupHeadMatchesPlainJava() {
        for (boolean normLastLayer : new boolean[] {true, false}) {
            SameDiff sd = SameDiff.create();
            GroupHead head = new GroupHead(sd, "group_head.", new GroupHead.Options(6, 10, 5, 9, normLastLayer, false), D, 4);
            assertEquals(normLastLayer ? List.of("group_head.last_layer.weight_v")
                    : List.of("group_head.last_layer.weight_v", "group_head.last_layer.weight_g"),
                    head.lastLayerParameterNames());
            perturb(sd, head.parameterNames().stream().filter(n -> n.contains("bias") || n.endsWith("weight_g"))
                    .toList(), 2);
            SDVariable x = sd.placeHolder("x", D, -1, 6);
            SDVariable logits = head.logits(x);
            INDArray in = Plain.randn(6, 3, 6);
            INDArray actual = sd.output(Map.of("x", in), logits.name()).get(logits.name());

            double[][] h = Plain.matrix(in);
            for (int i = 0; i < 3; i++) {
                String pre = "group_head.projector." + (2 * i) + ".";
                h = Plain.linear(h, Plain.weight(sd, pre + "weight"), Plain.vector(sd, pre + "bias"));
                if (i < 2) {
                    h = Plain.gelu(h);
                }
            }
            double[][] z = Plain.normalise(h);
            double[][] v = Plain.normalise(Plain.weight(sd, "group_head.last_layer.weight_v"));
            if (!normLastLayer) {
                double[] g = Plain.vector(sd, "group_head.last_layer.weight_g");
                for (int j = 0; j < v.length; j++) {
                    for (int k = 0; k < v[j].length; k++) {
                        v[j][k] *= g[j];
                    }
                }
            }
            assertTrue(Plain.maxAbsDiff(Plain.linear(z, v, null), actual) < 1e-12, "normLastLayer=" + normLastLayer);
        }
    }

    @Test
    void groupHeadGradientsOfThePrototypesAndGainsMatchCentralDifferences() {
        // The logits are (z v^T) * (g / ||v||)^T, not z (g v / ||v||)^T: check the backward of that form.
        SameDiff sd = SameDiff.create();
        GroupHead head = new GroupHead(sd, "group_head.", new GroupHead.Options(6, 10, 5, 9, false, false), D, 4);
        perturb(sd, head.parameterNames().stream().filter(n -> n.contains("bias") || n.endsWith("weight_g"))
                .toList(), 2);
        SDVariable x = sd.placeHolder("x", D, -1, 6);
        SDVariable weights = sd.constant("r", Plain.randn(8, 3, 9));
        SDVariable loss = head.logits(x).mul(weights).sum();
        loss.markAsLoss();
        INDArray in = Plain.randn(6, 3, 6);
        List<String> checked = List.of("group_head.last_layer.weight_v", "group_head.last_layer.weight_g");
        Map<String, INDArray> grads = sd.calculateGradients(Map.of("x", in), checked);
        double h = 1e-6;
        for (String name : checked) {
            INDArray p = sd.getArrForVarName(name);
            INDArray g = grads.get(name);
            for (long i = 0; i < p.length(); i++) {
                double at = p.getDouble(i);
                p.putScalar(i, at + h);
                double up = sd.output(Map.of("x", in), loss.name()).get(loss.name()).getDouble(0);
                p.putScalar(i, at - h);
                double down = sd.output(Map.of("x", in), loss.name()).get(loss.name()).getDouble(0);
                p.putScalar(i, at);
                assertEquals((up - down) / (2 * h), g.getDouble(i), 1e-7, name + " element " + i);
            }
        }
    }

    @Test
    void aggregatorMatchesPlainJavaAndUsesTheBackboneNorm() {
        VitConfig cfg = VitConfig.builder().imageSize(8).patchSize(4).embedDim(8).depth(1).numHeads(2).build();
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, D, 1);
        LocalGroupAggregator agg = new LocalGroupAggregator(sd, "", vit, 2, D, 2);
        assertTrue(agg.parameterNames().contains("relation_blocks.1.mlp.fc2.bias"));
        perturb(sd, List.of("norm.weight", "norm.bias", "relation_blocks.0.norm1.bias"), 3);
        SDVariable u = sd.placeHolder("u", D, -1, 8);
        SDVariable n = sd.placeHolder("n", D, -1, 3, 8);
        SDVariable y = agg.apply(u, n, 3, vit);
        INDArray uIn = Plain.randn(7, 2, 8);
        INDArray nIn = Plain.randn(8, 2, 3, 8);
        INDArray actual = sd.output(Map.of("u", uIn, "n", nIn), y.name()).get(y.name());

        Map<String, INDArray> w = new java.util.HashMap<>();
        agg.parameterNames().forEach(name -> w.put(name, sd.getArrForVarName(name)));
        for (int b = 0; b < 2; b++) {
            double[][] seq = new double[4][];
            seq[0] = uIn.getRow(b).toDoubleVector();
            for (int j = 0; j < 3; j++) {
                seq[j + 1] = nIn.get(org.nd4j.linalg.indexing.NDArrayIndex.point(b),
                        org.nd4j.linalg.indexing.NDArrayIndex.point(j), org.nd4j.linalg.indexing.NDArrayIndex.all())
                        .toDoubleVector();
            }
            for (int blk = 0; blk < 2; blk++) {
                seq = ReferenceVit.block(w, "relation_blocks." + blk + ".", seq, 2, 1e-6, true,
                        new double[2][4][4]);
            }
            double[][] out = ReferenceVit.layerNorm(new double[][] {seq[0]}, Plain.vector(sd, "norm.weight"),
                    Plain.vector(sd, "norm.bias"), 1e-6);
            for (int k = 0; k < 8; k++) {
                assertEquals(out[0][k], actual.getDouble(b, k), 1e-10);
            }
        }
        // Neighbour order does not matter (no positional embedding).
        INDArray swapped = nIn.dup();
        swapped.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(0),
                org.nd4j.linalg.indexing.NDArrayIndex.all()).assign(nIn.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.point(2), org.nd4j.linalg.indexing.NDArrayIndex.all()));
        swapped.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(2),
                org.nd4j.linalg.indexing.NDArrayIndex.all()).assign(nIn.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.point(0), org.nd4j.linalg.indexing.NDArrayIndex.all()));
        INDArray permuted = sd.output(Map.of("u", uIn, "n", swapped), y.name()).get(y.name());
        assertTrue(permuted.equalsWithEps(actual, 1e-10));
        assertFalse(swapped.equalsWithEps(nIn, 1e-3));
    }
}
