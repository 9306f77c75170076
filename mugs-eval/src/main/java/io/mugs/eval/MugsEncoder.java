package io.mugs.eval;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.Image;
import io.mugs.data.ImageDecoder;
import io.mugs.data.ImageSource;
import io.mugs.io.InputNormalisation;
import io.mugs.io.PthReader;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.weights.OfficialWeights;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Embeddings of images from a trained backbone: one object that loads a run's {@code teacher.safetensors}, a training
 * checkpoint (its teacher), any backbone file or an official PyTorch {@code .pth} backbone, prepares images as the
 * backbone was trained (the stored {@link InputNormalisation}: DINO's evaluation view, the shorter side resized to
 * {@code size * 256 / 224} with PIL bicubic and a centred {@code size x size} crop, pixels scaled to [0, 1], minus the
 * mean, over the std, packed NCHW) and returns one vector per image.
 *
 * <p>The vector is the final-LN CLS token ({@code [D]}, {@link FeatureExtractor.Kind#CLS}, the k-NN feature of the
 * reference, §8 of the paper) or the CLS token followed by the mean of the final-LN patch tokens ({@code [2D]},
 * {@link FeatureExtractor.Kind#CLS_AND_PATCH_MEAN}). Images go through the backbone {@link #batchSize()} at a time
 * (default 64). The encoder is safe to share between threads: images are decoded and prepared on the calling thread,
 * and the forward passes of concurrent callers take turns.
 *
 * <p>An official {@code .pth} stores no normalisation: ImageNet's mean and std at the size of its positional
 * embedding are taken unless {@link Builder#normalisation} gives one.
 *
 * <pre>{@code
 * try (MugsEncoder encoder = MugsEncoder.load(Path.of("runs/my-images/teacher.safetensors"))) {
 *     float[] v = encoder.embed(ImageIO.read(new File("cat.jpg")));          // [D]
 *     float[][] all = encoder.embedFiles(List.of(Path.of("a.png"), Path.of("b.png")));   // [2][D]
 * }
 * }</pre>
 */
public final class MugsEncoder implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MugsEncoder.class);

    /** ImageNet's per-channel mean and std, the official backbones' training normalisation. */
    static final double[] IMAGENET_MEAN = {0.485, 0.456, 0.406};
    static final double[] IMAGENET_STD = {0.229, 0.224, 0.225};

    private final VisionTransformer backbone;
    private final InputNormalisation input;
    private final FeatureExtractor.Kind kind;
    private final FeatureExtractor extractor;
    private final int batchSize;
    private final int dimension;
    private final Object forward = new Object();

    /**
     * An encoder for a backbone already in memory.
     *
     * @param input     how images are prepared (channels must match the backbone's)
     * @param kind      {@link FeatureExtractor.Kind#CLS} or {@link FeatureExtractor.Kind#CLS_AND_PATCH_MEAN}
     * @param batchSize images per forward pass, at least 1
     */
    public MugsEncoder(VisionTransformer backbone, InputNormalisation input, FeatureExtractor.Kind kind,
                       int batchSize) {
        if (input.channels() != backbone.config().inChannels()) {
            throw new IllegalArgumentException("the input normalisation has " + input.channels() + " channel(s) but "
                    + "the backbone takes " + backbone.config().inChannels());
        }
        if (kind == FeatureExtractor.Kind.LAST_BLOCKS_CLS) {
            throw new IllegalArgumentException("an encoder gives CLS or CLS_AND_PATCH_MEAN; use FeatureExtractor "
                    + "for the last blocks' CLS");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be at least 1, got " + batchSize);
        }
        this.backbone = backbone;
        this.input = input;
        this.kind = kind;
        this.batchSize = batchSize;
        this.extractor = new FeatureExtractor(backbone, input.imageSize(), kind, 1);
        int d = backbone.config().embedDim();
        this.dimension = kind == FeatureExtractor.Kind.CLS ? d : 2 * d;
    }

    /** The CLS embedding of the backbone in {@code file}, images prepared as the file says. */
    public static MugsEncoder load(Path file) throws IOException {
        return builder(file).build();
    }

    /** Settings for loading {@code file}: a backbone file, a training checkpoint or an official {@code .pth}. */
    public static Builder builder(Path file) {
        return new Builder(file);
    }

    /** Loading settings; every one has a default. */
    public static final class Builder {
        private final Path file;
        private FeatureExtractor.Kind kind = FeatureExtractor.Kind.CLS;
        private InputNormalisation normalisation;
        private double[] mean;
        private double[] std;
        private int batchSize = 64;
        private int heads;

        private Builder(Path file) {
            this.file = file;
        }

        /** CLS (default) or CLS_AND_PATCH_MEAN. */
        public Builder kind(FeatureExtractor.Kind k) {
            this.kind = k;
            return this;
        }

        /** Replaces the stored normalisation (needed for backbone files that store none). */
        public Builder normalisation(InputNormalisation n) {
            this.normalisation = n;
            return this;
        }

        /**
         * Replaces only the stored mean and std (per channel), keeping the stored image size, or the backbone's
         * when the file stores none.
         */
        public Builder meanStd(double[] mean, double[] std) {
            this.mean = mean.clone();
            this.std = std.clone();
            return this;
        }

        /** Images per forward pass; default 64. */
        public Builder batchSize(int b) {
            this.batchSize = b;
            return this;
        }

        /** Attention heads of an official {@code .pth} whose width is not an official preset's; default inferred. */
        public Builder heads(int h) {
            this.heads = h;
            return this;
        }

        public MugsEncoder build() throws IOException {
            if (!Files.isRegularFile(file)) {
                throw new NoSuchFileException(file.toString(), null, "no such backbone or checkpoint file");
            }
            VisionTransformer vit;
            Optional<InputNormalisation> stored;
            String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
            if (name.endsWith(".pth") || name.endsWith(".pt")) {
                try {
                    vit = OfficialWeights.load(OfficialWeights.backboneStateDict(PthReader.read(file)),
                            SameDiff.create(), heads);
                } catch (IllegalArgumentException e) {
                    throw new IOException(file + ": " + e.getMessage(), e);
                }
                int c = vit.config().inChannels();
                stored = c == 3 ? Optional.of(new InputNormalisation(3, vit.config().imageSize(), IMAGENET_MEAN,
                        IMAGENET_STD)) : Optional.empty();
                if (normalisation == null && stored.isPresent()) {
                    LOG.info("{} stores no input normalisation: using ImageNet's mean and std at {} px", file,
                            vit.config().imageSize());
                }
            } else {
                vit = FrozenBackbone.load(file);
                stored = FrozenBackbone.normalisation(file);
            }
            if (normalisation == null && mean != null) {
                int size = stored.map(InputNormalisation::imageSize).orElse(vit.config().imageSize());
                normalisation = new InputNormalisation(vit.config().inChannels(), size, mean, std);
            }
            InputNormalisation n = normalisation != null ? normalisation : stored.orElseThrow(() ->
                    new IOException(file + " does not say how its input images were normalised: give Builder"
                            + ".normalisation(...) or meanStd(...) (" + vit.config().inChannels() + " channel(s))"));
            return new MugsEncoder(vit, n, kind, batchSize);
        }
    }

    /** Length of an embedding: D for CLS, 2D for CLS and patch mean. */
    public int dimension() {
        return dimension;
    }

    /** How images are prepared. */
    public InputNormalisation normalisation() {
        return input;
    }

    public FeatureExtractor.Kind kind() {
        return kind;
    }

    public int batchSize() {
        return batchSize;
    }

    /** The backbone (for its configuration and weights; do not run it while other threads embed). */
    public VisionTransformer backbone() {
        return backbone;
    }

    /** The embedding {@code [D]} of one image. */
    public float[] embed(BufferedImage image) {
        return embed(List.of(image))[0];
    }

    /** Embeddings {@code [n][D]} of {@code images}, in order. */
    public float[][] embed(List<BufferedImage> images) {
        return embedAll(images.size(), i -> toImage(images.get(i)));
    }

    /** Embeddings {@code [n][D]} of JPEG/PNG files, decoded as PIL decodes them. */
    public float[][] embedFiles(List<Path> files) throws IOException {
        ImageDecoder decoder = ImageDecoder.pil();
        ImageDecoder.Mode mode = ImageDecoder.Mode.forChannels(input.channels());
        try {
            return embedAll(files.size(), i -> {
                try {
                    return decoder.decode(files.get(i), mode);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** Embeddings {@code [size][D]} of every item of {@code source}, in order. */
    public float[][] embed(ImageSource source) throws IOException {
        try {
            return embedAll(source.size(), i -> {
                try {
                    return source.load(i);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /**
     * The backbone's input for {@code images}: {@code [n, C, size, size]} FLOAT, resized, cropped and normalised.
     */
    public INDArray pixels(List<BufferedImage> images) {
        List<Image> decoded = new ArrayList<>(images.size());
        for (BufferedImage b : images) {
            decoded.add(toImage(b));
        }
        return pack(decoded);
    }

    private interface Loader {
        Image load(int index);
    }

    private float[][] embedAll(int n, Loader loader) {
        float[][] out = new float[n][];
        for (int start = 0; start < n; start += batchSize) {
            int b = Math.min(batchSize, n - start);
            List<Image> batch = new ArrayList<>(b);
            for (int i = 0; i < b; i++) {
                batch.add(loader.load(start + i));
            }
            INDArray x = pack(batch);
            float[][] f;
            synchronized (forward) {
                f = extractor.apply(x).toFloatMatrix();
            }
            System.arraycopy(f, 0, out, start, b);
        }
        return out;
    }

    private INDArray pack(List<Image> images) {
        int size = input.imageSize();
        int per = input.channels() * size * size;
        float[] data = new float[images.size() * per];
        double[] mean = input.mean();
        double[] std = input.std();
        for (int i = 0; i < images.size(); i++) {
            Image img = images.get(i);
            if (img.channels() != input.channels()) {
                throw new IllegalArgumentException("image " + i + " has " + img.channels() + " channel(s), the "
                        + "backbone takes " + input.channels());
            }
            EvalPreprocessing.apply(img, size, mean, std, data, i * per);
        }
        return Nd4j.create(data, new long[] {images.size(), input.channels(), size, size}, DataType.FLOAT);
    }

    private Image toImage(BufferedImage b) {
        try {
            return ImageDecoder.fromBufferedImage(b, ImageDecoder.Mode.forChannels(input.channels()));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the image: " + e.getMessage(), e);
        }
    }

    /** Frees the engine's buffers; the encoder plans again if used afterwards. */
    @Override
    public void close() {
        synchronized (forward) {
            extractor.close();
        }
    }
}
