package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.data.ImageFolderSource;
import io.mugs.data.ImageSource;
import io.mugs.eval.FeatureExtractor;
import io.mugs.eval.NpyFiles;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.weights.BackboneFiles;
import io.mugs.vit.weights.OfficialWeights;
import io.mugs.io.SafeTensors;
import io.mugs.io.PthReader;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Loads an official Mugs (or DINO / timm) ViT checkpoint from a local file — a PyTorch {@code .pth} (read without
 * executing pickle code) or a {@code .safetensors} — reports unused keys, optionally extracts CLS features of an
 * image folder to a {@code .npy}, and optionally re-exports the backbone as safetensors with the official key names.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.LoadOfficialCheckpoint \
 *     -Dexec.args="--checkpoint ~/Downloads/vit_small_backbone_800ep.pth --images ~/photos --out features.npy"
 * </pre>
 * The official ViT-S/16 backbone (dim 384, 12 blocks, patch 16) is published with the Mugs README; its keys
 * ({@code cls_token}, {@code pos_embed}, {@code patch_embed.proj.*}, {@code blocks.i.*}, {@code norm.*},
 * {@code relation_blocks.0.*}) map one to one; the relation block is reported as unused by the backbone.
 */
public final class LoadOfficialCheckpoint {

    private static final String USAGE = """
            LoadOfficialCheckpoint: load an official Mugs/DINO/timm ViT checkpoint and extract features.
              --checkpoint F   .pth or .safetensors file (required)
              --heads H        attention heads if the width is not an official preset (192/384/768/1024)
              --images DIR     JPEG/PNG folder to extract final-LN CLS features from
              --out FILE.npy   where to write the features (with FILE-labels.npy)
              --export F       write the backbone as safetensors with the official key names
            """;

    private LoadOfficialCheckpoint() {
    }

    public static void main(String[] argv) {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args.runOrExit(() -> run(argv));
    }

    private static void run(String[] argv) throws Exception {
        Args a = new Args(argv, Set.of("checkpoint", "heads", "images", "out", "export"), USAGE);
        String file = a.get("checkpoint", null);
        if (file == null) {
            System.err.println("Error: --checkpoint is required\n\n" + USAGE);
            System.exit(2);
        }
        Path path = Path.of(file);
        Map<String, INDArray> sd = file.endsWith(".safetensors")
                ? OfficialWeights.backboneStateDict(Map.copyOf(SafeTensors.read(path).tensors()))
                : OfficialWeights.backboneStateDict(PthReader.read(path));
        VisionTransformer vit = OfficialWeights.load(sd, SameDiff.create(), a.getInt("heads", 0));
        System.out.printf("loaded %s: %s%nunused keys: %s%n", path, vit.config(), OfficialWeights.unusedKeys(sd, vit));
        if (a.get("images", null) != null) {
            ImageSource images = ImageFolderSource.scan(Path.of(a.get("images", "")));
            int size = vit.config().imageSize();
            INDArray f = new FeatureExtractor(vit, size, FeatureExtractor.Kind.CLS, 1).extract(images,
                    new double[] {0.485, 0.456, 0.406}, new double[] {0.229, 0.224, 0.225}, 32);
            Path out = Path.of(a.get("out", "features.npy"));
            NpyFiles.writeFloat(out, f);
            int[] labels = new int[images.size()];
            for (int i = 0; i < labels.length; i++) {
                labels[i] = images.label(i);
            }
            NpyFiles.writeInt(out.resolveSibling(out.getFileName().toString().replace(".npy", "") + "-labels.npy"),
                    labels);
            System.out.printf("wrote %d x %d features to %s%n", f.size(0), f.size(1), out);
        }
        if (a.get("export", null) != null) {
            BackboneFiles.save(Path.of(a.get("export", "")), vit);
            System.out.println("exported " + a.get("export", ""));
        }
    }
}
