package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.InfoNceLoss;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourLookup;
import io.mugs.losses.NeighbourMemory;
import io.mugs.engine.Gradients;
import io.mugs.vit.Initializers;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Times Mugs' three losses at the reference sizes (forward + backward from the head outputs, plus the neighbour
 * search) beside the ViT backbone's forward on the same batch.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.LossBenchmark \
 *     -Dexec.args="--batch 128 --locals 10"
 * </pre>
 */
public final class LossBenchmark {

    private static final String USAGE = """
            LossBenchmark: time of the instance, local-group and group losses at the reference sizes.
              --batch B       images per step (default 128)
              --locals N      local crops per image (default 10; student views = 2 + N)
              --queue K       InfoNCE queue and neighbour-memory rows (default 65536)
              --prototypes M  group prototypes (default 65536)
              --dim D         backbone width for the memory and the ViT (default 384, ViT-S)
              --vit-batch B   images for the ViT-S/16 224 px forward (default = --batch; 0 skips it)
              --iters N       timed iterations (default 3)
            """;

    private LossBenchmark() {
    }

    public static void main(String[] argv) {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("batch", "locals", "queue", "prototypes", "dim", "vit-batch", "iters"), USAGE);
        int b = a.getInt("batch", 128);
        int views = 2 + a.getInt("locals", 10);
        int k = a.getInt("queue", 65_536);
        int m = a.getInt("prototypes", 65_536);
        int dim = a.getInt("dim", 384);
        int iters = a.getInt("iters", 3);
        int out = 256;
        DataType f = DataType.FLOAT;
        SplittableRandom rng = new SplittableRandom(1);
        MultiCropPairing pairing = new MultiCropPairing(views, MultiCropPairing.Weighting.OFFICIAL);
        System.out.printf("batch %d, %d student views, queue %d x %d, memory %d x %d, %d prototypes%n", b, views, k,
                out, k, dim, m);

        // Instance (and, identically sized, local-group) InfoNCE from student predictions.
        SameDiff sd = SameDiff.create();
        SDVariable q = sd.var("q", unitRows(rng, (long) views * b, out));
        SDVariable z = sd.placeHolder("z", f, -1, out);
        SDVariable queue = sd.placeHolder("queue", f, -1, out);
        SDVariable nce = InfoNceLoss.build(sd, q, z, queue, out, pairing, 0.2);
        sd.setLossVariables(nce);
        FeatureQueue fq = new FeatureQueue(k, out, f, 2);
        Map<String, INDArray> ncFeed = new HashMap<>(Map.of("z", unitRows(rng, 2L * b, out), "queue", fq.contents()));
        double ncTime = VitBenchmark.time(iters, () -> Gradients.bySameDiff(sd, ncFeed, List.of("q")));
        System.out.printf("InfoNCE (one of two) forward+backward: %8.1f ms%n", ncTime * 1e3);

        // Group loss from student logits, teacher targets computed in Java (centring, softmax, pairing).
        SameDiff sg = SameDiff.create();
        SDVariable logits = sg.var("logits", Initializers.normal(rng, f, (long) views * b, m));
        SDVariable targets = sg.placeHolder("w", f, -1, m);
        sg.setLossVariables(GroupLoss.build(sg, logits, targets, pairing, 0.1));
        GroupCentre centre = new GroupCentre(m, 0.9, f);
        INDArray teacherLogits = Initializers.normal(rng, f, 2L * b, m);
        Map<String, INDArray> gFeed = new HashMap<>();
        double targetTime = VitBenchmark.time(iters, () -> {
            gFeed.put("w", GroupLoss.targets(centre.targets(teacherLogits, 0.04), pairing));
            centre.update(teacherLogits);
        });
        double gTime = VitBenchmark.time(iters, () -> Gradients.bySameDiff(sg, gFeed, List.of("logits")));
        System.out.printf("group loss forward+backward:         %8.1f ms (+ %.1f ms teacher targets and centre)%n",
                gTime * 1e3, targetTime * 1e3);

        // Neighbour search for every student view (in-graph top-k + gather) and the memory write.
        SameDiff sn = SameDiff.create();
        SDVariable u = sn.placeHolder("u", f, -1, dim);
        SDVariable rows = sn.placeHolder("mem", f, -1, dim);
        SDVariable normed = sn.placeHolder("mem_n", f, -1, dim);
        SDVariable nbrs = NeighbourLookup.neighbours(sn, u, normed, rows, 8);
        NeighbourMemory mem = new NeighbourMemory(k, dim, 8, false, f, 3);
        Map<String, INDArray> nFeed = new HashMap<>(Map.of("u", Initializers.normal(rng, f, (long) views * b, dim),
                "mem", mem.contents(), "mem_n", mem.normalisedContents()));
        double nTime = VitBenchmark.time(iters, () -> sn.output(nFeed, nbrs.name()));
        INDArray written = Initializers.normal(rng, f, b, dim);
        double wTime = VitBenchmark.time(iters, () -> mem.write(written));
        System.out.printf("neighbour top-8 search (%d queries): %8.1f ms, memory write %.1f ms%n", views * b,
                nTime * 1e3, wTime * 1e3);
        double total = 2 * ncTime + gTime + targetTime + nTime + wTime;
        System.out.printf("three losses in all:                 %8.1f ms%n", total * 1e3);

        int vitBatch = a.getInt("vit-batch", b);
        if (vitBatch > 0) {
            VitConfig cfg = VitConfig.small(16).toBuilder().embedDim(dim).build();
            SameDiff sv = SameDiff.create();
            VisionTransformer vit = new VisionTransformer(sv, "", cfg, f, 0);
            SDVariable x = sv.placeHolder("x", f, -1, 3, 224, 224);
            VitOutputs o = vit.apply(x, 224, 224, VisionTransformer.Mode.INFERENCE, "fwd");
            Map<String, INDArray> vFeed = Map.of("x", Initializers.normal(rng, f, vitBatch, 3, 224, 224));
            double vTime = VitBenchmark.time(Math.max(1, iters - 1), () -> sv.output(vFeed, o.cls().name()));
            System.out.printf("ViT-S/16 forward, %d x 224 px:       %8.1f ms (%.1f GFLOP/s)%n", vitBatch, vTime * 1e3,
                    cfg.forwardFlops(224) * vitBatch / vTime / 1e9);
        }
        System.out.printf("peak RSS: %.2f GB%n", VitBenchmark.peakRssBytes() / 1e9);
    }

    private static INDArray unitRows(SplittableRandom rng, long n, long d) {
        INDArray a = Initializers.normal(rng, DataType.FLOAT, n, d);
        return a.diviColumnVector(a.norm2(1).reshape(n, 1));
    }
}
