package io.mugs.cli;

import io.mugs.data.ImageFolderSource;
import io.mugs.eval.FeatureExtractor;
import io.mugs.eval.MugsEncoder;
import io.mugs.eval.NpyFiles;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code mugs embed}: the embedding of every JPEG/PNG image under a folder, through {@link MugsEncoder}, written as
 * {@code FILE.npy} ({@code [N, D]} float32) and {@code FILE-files.txt} (the images' paths relative to the folder,
 * one a line, in the rows' order).
 *
 * <pre>
 * mugs embed --model runs/my-images/teacher.safetensors --images my-images/val --out val-embeddings.npy
 * </pre>
 */
@Command(name = "embed", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Embeds every JPEG/PNG image under a folder (sub-folders included) with a trained backbone: "
                + "FILE.npy ([N, D] float32) plus FILE-files.txt (the image paths, one a line, in row order).")
final class EmbedCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "MODEL",
            description = "A run's teacher.safetensors, a training checkpoint (its teacher), a backbone file or an "
                    + "official .pth backbone.")
    Path model;

    @Option(names = "--images", required = true, paramLabel = "DIR", description = "Folder of JPEG/PNG images.")
    Path images;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "FILE.npy to write.")
    Path out;

    @Option(names = "--feature", paramLabel = "F", defaultValue = "cls",
            description = "cls (final-LN CLS token, D values) or cls+mean (CLS and patch mean, 2D). "
                    + "Default: ${DEFAULT-VALUE}.")
    String feature;

    @Option(names = "--mean", split = ",", paramLabel = "M",
            description = "Per-channel input mean; needed when MODEL does not store it (official .pth: ImageNet's).")
    double[] mean;

    @Option(names = "--std", split = ",", paramLabel = "S", description = "Per-channel input std, with --mean.")
    double[] std;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "64",
            description = "Images per forward pass. Default: ${DEFAULT-VALUE}.")
    int batch;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        String name = out.getFileName().toString();
        if (!name.endsWith(".npy")) {
            throw new ParameterException(spec.commandLine(), "--out must end in .npy, got " + out);
        }
        if ((mean == null) != (std == null)) {
            throw new ParameterException(spec.commandLine(), "give --mean and --std together");
        }
        if (batch < 1) {
            throw new ParameterException(spec.commandLine(), "--batch must be >= 1, got " + batch);
        }
        FeatureExtractor.Kind kind = switch (feature.toLowerCase(java.util.Locale.ROOT)) {
            case "cls" -> FeatureExtractor.Kind.CLS;
            case "cls+mean" -> FeatureExtractor.Kind.CLS_AND_PATCH_MEAN;
            default -> throw new ParameterException(spec.commandLine(), "--feature must be cls or cls+mean, got '"
                    + feature + "'");
        };
        if (!Files.isDirectory(images)) {
            throw new ParameterException(spec.commandLine(), "--images " + images + " is not a folder");
        }
        MugsEncoder.Builder b = MugsEncoder.builder(model).kind(kind).batchSize(batch);
        MugsEncoder encoder;
        if (mean != null) {
            try {
                encoder = b.meanStd(mean, std).build();
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--mean/--std: " + e.getMessage());
            }
        } else {
            String file = model.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
            boolean official = file.endsWith(".pth") || file.endsWith(".pt");
            if (!official && java.nio.file.Files.isRegularFile(model)
                    && io.mugs.eval.FrozenBackbone.normalisation(model).isEmpty()) {
                throw new ParameterException(spec.commandLine(), model + " does not say how its input images were "
                        + "normalised: give --mean and --std");
            }
            encoder = b.build();
        }
        return write(encoder, name);
    }

    private int write(MugsEncoder encoder, String name) throws Exception {
        try (encoder) {
            ImageFolderSource src = ImageFolderSource.builder(images)
                    .channels(encoder.normalisation().channels()).scan();
            PrintWriter pw = spec.commandLine().getOut();
            for (String skipped : src.leftOut()) {
                pw.println("skipped " + skipped);
            }
            if (src.size() == 0) {
                throw new IllegalArgumentException(images + " holds no readable JPEG or PNG image");
            }
            float[][] e = encoder.embed(src);
            Path parent = out.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            NpyFiles.writeFloat(out, Nd4j.create(e));
            List<String> rel = new ArrayList<>(src.size());
            Path root = images.toAbsolutePath().normalize();
            for (int i = 0; i < src.size(); i++) {
                rel.add(root.relativize(Path.of(src.describe(i)).toAbsolutePath().normalize()).toString());
            }
            Path list = out.resolveSibling(name.substring(0, name.length() - 4) + "-files.txt");
            Files.write(list, rel, StandardCharsets.UTF_8);
            pw.println("wrote " + e.length + " x " + encoder.dimension() + " embeddings to " + out + " and the file "
                    + "list to " + list);
            pw.flush();
            return 0;
        }
    }
}
