package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.losses.LossWeights;
import io.mugs.engine.GraphExecutor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The trainer's planned executors against SameDiff's own session on the full Mugs graphs: the teacher's outputs
 * and the student's losses and gradients (three losses, in-graph neighbour top-k, BN heads, drop-path, two crop
 * sizes), step after step while queues, memories and weights change.
 */
class EngineParityTest {

    private static void assertClose(INDArray expected, INDArray actual, double relTol, String what) {
        assertClose(expected, actual, relTol, 0, what);
    }

    /**
     * {@code |expected - actual| <= relTol |expected| + floor}; the floor covers gradients that are zero up to
     * rounding (a linear bias in front of BatchNorm: BN's input gradient sums to zero over the batch).
     */
    private static void assertClose(INDArray expected, INDArray actual, double relTol, double floor, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = expected.norm2Number().doubleValue();
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= relTol * scale + floor, what + ": difference " + diff + " for a norm of " + scale);
    }

    private static void checkSteps(MugsConfig cfg) {
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 40);
            MugsModel model = trainer.model();
            List<String> outputs = model.studentOutputNames();
            for (int step = 0; step < 3; step++) {
                MultiCropBatch batch = loader.batch(0, step % 2);
                List<TeacherOutputs> teacherShards = trainer.teacherForward(batch);
                TeacherOutputs teacher = teacherShards.get(0);
                TeacherOutputs expectedTeacher = model.teacherOutputs(model.teacher().output(
                        trainer.lossState().teacherFeed(batch).placeholders(), model.teacherOutputNames()));
                assertClose(expectedTeacher.patchMean(), teacher.patchMean(), 1e-5, "patch mean");
                assertEquals(cfg.lossWeights().instanceEnabled(), teacher.instanceKeys().isPresent());
                assertEquals(cfg.lossWeights().localGroupEnabled(), teacher.localGroupKeys().isPresent());
                assertEquals(cfg.lossWeights().groupEnabled(), teacher.groupLogits().isPresent());
                teacher.instanceKeys().ifPresent(k -> assertClose(expectedTeacher.instanceKeys().orElseThrow(), k,
                        1e-5, "instance keys"));
                teacher.localGroupKeys().ifPresent(k -> assertClose(expectedTeacher.localGroupKeys().orElseThrow(), k,
                        1e-5, "local-group keys"));
                teacher.groupLogits().ifPresent(k -> assertClose(expectedTeacher.groupLogits().orElseThrow(), k, 1e-5,
                        "group logits"));

                DropPathMasks masks = trainer.dropPathMasks(batch.batchSize());
                double temperature = trainer.teacherTemperature(trainer.epoch());
                Map<String, INDArray> feed = trainer.lossState().studentFeed(batch, teacher, masks.all(), temperature)
                        .placeholders();
                var expected = model.student().calculateGradientsAndOutputs(feed, outputs,
                        model.studentParameters().keySet());
                StudentOutputs student = trainer.studentGradients(batch, teacherShards, masks, temperature).get(0);
                for (String loss : model.lossOutputs()) {
                    double e = expected.getOutputs().get(loss).getDouble(0);
                    assertEquals(e, student.losses().get(loss), 1e-5 * Math.abs(e), "step " + step + " " + loss);
                }
                assertEquals(expected.getGradients().keySet(), student.gradients().keySet());
                double total = 0;
                for (INDArray g : expected.getGradients().values()) {
                    total += Math.pow(g.norm2Number().doubleValue(), 2);
                }
                double floor = 1e-6 * Math.sqrt(total);
                for (String p : expected.getGradients().keySet()) {
                    assertClose(expected.getGradients().get(p), student.gradients().get(p), 1e-5, floor,
                            "step " + step + " d/d" + p);
                }
                trainer.update(student.gradients());
                trainer.teacherEma(0.99);
                trainer.updateState(batch, teacher, student);
                trainer.setIteration(step + 1);
            }
        }
    }

    @Test
    void fullStudentGraphInDouble() {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 40);
            MultiCropBatch batch = loader.batch(0, 0);
            Map<String, INDArray> feed = new HashMap<>();
            trainer.lossState().studentFeed(batch, trainer.teacherForward(batch).get(0),
                    trainer.dropPathMasks(batch.batchSize()).all(), trainer.teacherTemperature(0)).placeholders().forEach((k, v) -> feed.put(k, v.castTo(DataType.DOUBLE)));
            MugsModel model = new MugsModel(cfg, DataType.DOUBLE);
            List<String> outputs = model.studentOutputNames();
            Set<String> params = model.studentParameters().keySet();
            GraphExecutor exec = GraphExecutor.gradients(model.student(), outputs, params);
            var expected = model.student().calculateGradientsAndOutputs(feed, outputs, params);
            double total = 0;
            for (INDArray g : expected.getGradients().values()) {
                total += Math.pow(g.norm2Number().doubleValue(), 2);
            }
            for (int run = 0; run < 2; run++) {
                GraphExecutor.Result ours = exec.run(feed);
                for (String o : outputs) {
                    assertClose(expected.getOutputs().get(o), ours.outputs().get(o), 1e-10, "run " + run + " " + o);
                }
                for (String p : params) {
                    assertClose(expected.getGradients().get(p), ours.gradients().get(p), 1e-10,
                            1e-13 * Math.sqrt(total), "run " + run + " d/d" + p);
                }
            }
        }
    }

    @Test
    void allThreeLossesWithFusedLayerNormAndBatchNormHeads() {
        checkSteps(Tiny.config());
    }

    @Test
    void exactLayerNormWithoutBatchNormAndOneLossOff() {
        MugsConfig base = Tiny.config();
        checkSteps(base.toBuilder().vit(base.vit().toBuilder().layerNormEps(1e-6).build()).useBnInHead(false)
                .lossWeights(new LossWeights(1, 0, 1, LossWeights.Combination.OFFICIAL)).build());
    }

    @Test
    void exactLayerNormFusedByTheEngine() {
        MugsConfig base = Tiny.config();
        io.mugs.engine.Kernels.select("default,layernorm");
        try {
            checkSteps(base.toBuilder().vit(base.vit().toBuilder().layerNormEps(1e-6).build()).build());
        } finally {
            io.mugs.engine.Kernels.select(null);
        }
    }
}
