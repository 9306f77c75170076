package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.core.health.TrainingHealth;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.losses.LossWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.eigen.Eigen;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The training health in the step's result and in metrics.jsonl: the values written for a step against a plain-Java
 * recomputation from the same step's arrays, the cadence, and the collapse warning of a collapsing toy run.
 */
class TrainingHealthWiringTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void theHealthWrittenForAStepEqualsAPlainJavaRecomputationFromThatStepsArrays() throws IOException {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MultiCropBatch batch = loader.batch(0, 0);
            // Trainer a takes the step; trainer b, identical, runs the same phases by hand and keeps the arrays.
            MugsTrainer a = new MugsTrainer(cfg, loader.stepsPerEpoch());
            a.setHealthEvery(1);
            Path metrics = dir.resolve("metrics.jsonl");
            StepResult r = a.step(batch);
            MugsListeners.metrics(metrics).onStep(a, r);
            JsonNode row = JSON.readTree(Files.readAllLines(metrics).get(0));

            MugsTrainer b = new MugsTrainer(cfg, loader.stepsPerEpoch());
            double temperature = b.teacherTemperature(0);
            double[][] queue = rows(b.instanceQueue().contents());
            double[] centre = b.centre().contents().castTo(DataType.DOUBLE).toDoubleVector();
            TeacherOutputs t = b.teacherForward(batch).get(0);
            StudentOutputs s = b.studentGradients(batch, List.of(t), b.dropPathMasks(cfg.batchSize()), temperature)
                    .get(0);
            double[][] keys = rows(t.instanceKeys().orElseThrow());
            double[][] predictions = rows(s.instancePrediction().orElseThrow());
            double[][] teacherLogits = rows(t.groupLogits().orElseThrow());
            double[][] studentLogits = rows(s.groupLogits().orElseThrow());
            int n = 2 * cfg.batchSize();
            assertEquals(n, predictions.length);                         // the two global views only
            assertEquals(n, studentLogits.length);

            double[][] teacherProbs = new double[n][];
            double[][] studentProbs = new double[n][];
            for (int i = 0; i < n; i++) {
                double[] shifted = new double[centre.length];
                for (int k = 0; k < shifted.length; k++) {
                    shifted[k] = (teacherLogits[i][k] - centre[k]) / temperature;
                }
                teacherProbs[i] = softmax(shifted);
                double[] scaled = studentLogits[i].clone();
                for (int k = 0; k < scaled.length; k++) {
                    scaled[k] /= cfg.studentTemp();
                }
                studentProbs[i] = softmax(scaled);
            }
            int bsz = cfg.batchSize();
            int same = 0;
            double positive = 0;
            double hardest = 0;
            for (int i = 0; i < n; i++) {
                int other = i < bsz ? i + bsz : i - bsz;                 // the teacher's other view of the image
                same += argMax(teacherProbs[other]) == argMax(studentProbs[i]) ? 1 : 0;
                positive += cosine(predictions[i], keys[other]);
                double max = Double.NEGATIVE_INFINITY;
                for (double[] q : queue) {
                    max = Math.max(max, cosine(predictions[i], q));
                }
                hardest += max;
            }

            assertEquals(std(keys), row.get("health_teacher_std").asDouble(), 1e-6);
            assertEquals(std(predictions), row.get("health_student_std").asDouble(), 1e-6);
            assertEquals(effectiveRank(keys), row.get("health_teacher_rank").asDouble(), 1e-4);
            assertEquals(effectiveRank(predictions), row.get("health_student_rank").asDouble(), 1e-4);
            assertEquals(entropy(mean(teacherProbs)), row.get("health_teacher_entropy_of_mean").asDouble(), 1e-4);
            assertEquals(meanEntropy(teacherProbs), row.get("health_teacher_mean_entropy").asDouble(), 1e-4);
            assertEquals(entropy(mean(studentProbs)), row.get("health_student_entropy_of_mean").asDouble(), 1e-5);
            assertEquals(meanEntropy(studentProbs), row.get("health_student_mean_entropy").asDouble(), 1e-5);
            assertEquals((double) same / n, row.get("health_agreement").asDouble(), 0);
            assertEquals(positive / n, row.get("health_positive").asDouble(), 1e-6);
            assertEquals(hardest / n, row.get("health_hardest_negative").asDouble(), 1e-6);
            assertEquals(r.health().orElseThrow().teacherStd(), row.get("health_teacher_std").asDouble(), 0);
            // The extra outputs change nothing: both trainers computed the same loss.
            assertEquals(r.loss(), s.losses().get(MugsModel.LOSS), 0);
        }
    }

    @Test
    void theHealthIsReadOnEveryTenthStepAndOnlyTheEnabledLossesReadOutsAreWritten() throws IOException {
        MugsConfig cfg = Tiny.config().toBuilder()
                .lossWeights(new LossWeights(1, 0, 0, LossWeights.Combination.OFFICIAL)).build();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer t = new MugsTrainer(cfg, loader.stepsPerEpoch());
            assertEquals(MugsTrainer.HEALTH_EVERY, t.healthEvery());
            Path metrics = dir.resolve("metrics.jsonl");
            var listener = MugsListeners.metrics(metrics);
            int step = 0;
            for (MultiCropBatch batch : loader.epoch(0)) {
                StepResult r = t.step(batch);
                listener.onStep(t, r);
                assertEquals(step % 10 == 9, r.health().isPresent(), "step " + step);
                if (++step == 10) {
                    break;
                }
            }
            List<String> lines = Files.readAllLines(metrics);
            assertFalse(lines.get(8).contains("health_"), lines.get(8));
            JsonNode last = JSON.readTree(lines.get(9));
            assertTrue(last.has("health_teacher_std") && last.has("health_positive"), lines.get(9));
            assertFalse(last.has("health_agreement") || last.has("health_teacher_mean_entropy"), lines.get(9));
        }
    }

    @Test
    void withTwoReplicasTheHealthIsReadFromReplicaZerosHalfOfTheBatch() {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer t = new MugsTrainer(cfg, RunSettings.defaults().withReplicas(2), loader.stepsPerEpoch());
            t.setHealthEvery(1);
            MultiCropBatch batch = loader.batch(0, 0);
            TrainingHealth h = t.step(batch).health().orElseThrow();
            // Replica 0 holds images 0-3 of both views: 8 rows, so the effective rank is at most 7.
            assertTrue(h.teacherRank() > 1 && h.teacherRank() <= 7 + 1e-9, "rank " + h.teacherRank());
            assertTrue(h.teacherStd() > 0 && Double.isFinite(h.agreement()) && h.agreement() >= 0
                    && Double.isFinite(h.hardestNegative()), h.toString());
        }
    }

    @Test
    void aTeacherTooHotToChooseAPrototypeWarnsOnceAndAHealthyRunDoesNot() {
        MugsConfig healthy = Tiny.config();
        // DINO's uniform collapse: at temperature 1 every teacher output spreads over all 64 prototypes.
        MugsConfig hot = healthy.toBuilder().lossWeights(new LossWeights(0, 0, 1, LossWeights.Combination.OFFICIAL))
                .teacherTemp(1.0).warmupTeacherTemp(1.0).build();
        assertEquals(0, collapseWarnings(healthy, 12).size());
        List<String> warnings = collapseWarnings(hot, 12);
        assertEquals(1, warnings.size(), String.join("\n", warnings));
        assertTrue(warnings.get(0).startsWith("uniform prototypes at step 2: the teacher's per-image prototype "
                + "entropy is 4.1"), warnings.get(0));
        assertTrue(warnings.get(0).contains("of at most 4.159") && warnings.get(0).endsWith("lower the teacherTemp"),
                warnings.get(0));
    }

    private static List<String> collapseWarnings(MugsConfig cfg, int steps) {
        try (MultiCropLoader loader = Tiny.loader(cfg); LogCapture log = new LogCapture()) {
            MugsTrainer t = new MugsTrainer(cfg, loader.stepsPerEpoch());
            t.setHealthEvery(1);
            int done = 0;
            for (MultiCropBatch batch : loader.epoch(0)) {
                assertTrue(t.step(batch).health().isPresent());
                if (++done == steps) {
                    break;
                }
            }
            return log.messages().stream().filter(m -> m.contains("collapse at step")
                    || m.contains("prototypes at step")).toList();
        }
    }

    private static double[][] rows(INDArray x) {
        return x.castTo(DataType.DOUBLE).toDoubleMatrix();
    }

    private static double[] softmax(double[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            max = Math.max(max, v);
        }
        double sum = 0;
        double[] p = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            p[i] = Math.exp(x[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < x.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private static int argMax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            best = x[i] > x[best] ? i : best;
        }
        return best;
    }

    private static double norm(double[] x) {
        double s = 0;
        for (double v : x) {
            s += v * v;
        }
        return Math.sqrt(s);
    }

    private static double cosine(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s / (norm(a) * norm(b));
    }

    /** Mean over dimensions of the population std of the L2-normalised rows. */
    private static double std(double[][] x) {
        int d = x[0].length;
        double total = 0;
        for (int j = 0; j < d; j++) {
            double sum = 0;
            double sq = 0;
            for (double[] row : x) {
                double v = row[j] / norm(row);
                sum += v;
                sq += v * v;
            }
            double mean = sum / x.length;
            total += Math.sqrt(sq / x.length - mean * mean);
        }
        return total / d;
    }

    /** exp(entropy of the normalised singular values of the centred rows), singular values from LAPACK. */
    private static double effectiveRank(double[][] x) {
        int n = x.length;
        int d = x[0].length;
        double[][] c = new double[n][d];
        for (int j = 0; j < d; j++) {
            double mean = 0;
            for (double[] row : x) {
                mean += row[j] / n;
            }
            for (int i = 0; i < n; i++) {
                c[i][j] = x[i][j] - mean;
            }
        }
        INDArray m = Nd4j.createFromArray(c);
        INDArray gram = m.transpose().mmul(m);                      // [d, d]: the squared singular values
        double[] eig = Eigen.symmetricGeneralizedEigenvalues(gram.dup()).toDoubleVector();
        double largest = 0;
        for (double e : eig) {
            largest = Math.max(largest, e);
        }
        double[] s = new double[eig.length];
        double total = 0;
        for (int i = 0; i < eig.length; i++) {
            s[i] = eig[i] > 1e-9 * largest ? Math.sqrt(eig[i]) : 0;
            total += s[i];
        }
        double h = 0;
        for (double v : s) {
            if (v > 0) {
                h -= v / total * Math.log(v / total);
            }
        }
        return Math.exp(h);
    }

    private static double[] mean(double[][] p) {
        double[] m = new double[p[0].length];
        for (double[] row : p) {
            for (int k = 0; k < m.length; k++) {
                m[k] += row[k] / p.length;
            }
        }
        return m;
    }

    private static double entropy(double[] p) {
        double h = 0;
        for (double v : p) {
            h -= v > 0 ? v * Math.log(v) : 0;
        }
        return h;
    }

    private static double meanEntropy(double[][] p) {
        double s = 0;
        for (double[] row : p) {
            s += entropy(row);
        }
        return s / p.length;
    }
}
