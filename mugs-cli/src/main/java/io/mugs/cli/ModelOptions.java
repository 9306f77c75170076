package io.mugs.cli;

import io.mugs.data.ImageSource;
import io.mugs.eval.FrozenBackbone;
import io.mugs.eval.FeatureExtractor;
import io.mugs.vit.VisionTransformer;
import io.mugs.io.InputNormalisation;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The options every evaluation command shares: the backbone ({@code --model}), which feature to take from it, and
 * how to normalise its input images. The normalisation stored in checkpoints and backbone files is used; a file
 * that stores none needs {@code --mean} and {@code --std} (given values replace stored ones).
 *
 * <pre>{@code
 * Loaded m = options.load();                        // backbone, normalisation, extractor
 * INDArray features = m.features(source);           // [N, D]
 * }</pre>
 */
final class ModelOptions {

    private static final Logger LOG = LoggerFactory.getLogger(ModelOptions.class);

    /** The feature of an image: as {@link FeatureExtractor.Kind}, named as on the command line. */
    enum Feature {
        CLS("cls"), LAST4("last4"), CLS_MEAN("cls+mean");

        final String option;

        Feature(String option) {
            this.option = option;
        }

        @Override
        public String toString() {
            return option;
        }

        static Feature parse(String s) {
            for (Feature f : values()) {
                if (f.option.equalsIgnoreCase(s)) {
                    return f;
                }
            }
            throw new picocli.CommandLine.TypeConversionException("must be cls, last4 or cls+mean, got '" + s + "'");
        }
    }

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "MODEL",
            description = "Training checkpoint (its teacher), a run's teacher.safetensors, a backbone file, a "
                    + "fine-tuning checkpoint, or 'pixels' (the normalised pixels as features, the baseline; needs "
                    + "--mean and --std).")
    Path model;

    @Option(names = "--feature", paramLabel = "F", defaultValue = "cls", converter = FeatureConverter.class,
            description = "cls (final-LN CLS token), last4 (CLS of the last 4 blocks) or cls+mean (CLS and patch "
                    + "mean). Default: ${DEFAULT-VALUE}.")
    Feature feature = Feature.CLS;

    @Option(names = "--mean", split = ",", paramLabel = "M",
            description = "Per-channel input mean (e.g. 0.485,0.456,0.406); needed when MODEL does not store it.")
    double[] mean;

    @Option(names = "--std", split = ",", paramLabel = "S",
            description = "Per-channel input std; needed when MODEL does not store it.")
    double[] std;

    @Option(names = "--extract-batch", paramLabel = "B", defaultValue = "256",
            description = "Images per forward pass while extracting features. Default: ${DEFAULT-VALUE}.")
    int extractBatch = 256;

    /**
     * Removes {@code --feature} and {@code --extract-batch} from a command that reads the backbone without extracting
     * features (its help then lists only what it uses; the fields keep their defaults).
     */
    static void withoutFeatureOptions(CommandSpec command) {
        for (String name : new String[] {"--feature", "--extract-batch"}) {
            picocli.CommandLine.Model.OptionSpec o = command.findOption(name);
            if (o != null) {
                command.remove(o);
            }
        }
    }

    /**
     * A backbone ready for feature extraction; for {@code --model pixels} backbone and extractor are null and
     * {@code input}'s size is taken from the first image of the first source described (28 for Fashion-MNIST).
     */
    record Loaded(VisionTransformer backbone, InputNormalisation input, FeatureExtractor extractor, int batch,
                  java.util.concurrent.atomic.AtomicReference<InputNormalisation> pixelInput) {

        Loaded(VisionTransformer backbone, InputNormalisation input, FeatureExtractor extractor, int batch) {
            this(backbone, input, extractor, batch, new java.util.concurrent.atomic.AtomicReference<>(input));
        }

        /** Features of every image of {@code source}: {@code [N, D]} (pixels: {@code [N, C * S * S]}). */
        INDArray features(ImageSource source) throws IOException {
            if (extractor == null) {
                if (pixelInput.get().imageSize() == 1 && source.size() > 0) {
                    var first = source.load(0);
                    pixelInput.set(new InputNormalisation(input.channels(), Math.min(first.height(), first.width()),
                            input.mean(), input.std()));
                }
                return PixelBaseline.normalisedPixels(source, pixelInput.get());
            }
            return extractor.extract(source, input.mean(), input.std(), batch);
        }
    }

    /** Whether {@code --model pixels} was given. */
    boolean pixels() {
        return model.toString().equals("pixels");
    }

    /** A backbone and its input normalisation when known (from --mean/--std or the file). */
    record Backbone(VisionTransformer vit, Optional<InputNormalisation> input) {
    }

    /** Loads {@code --model} with the normalisation --mean/--std give or the file stores, if any. */
    Backbone backbone() throws IOException {
        if ((mean == null) != (std == null)) {
            throw new ParameterException(spec.commandLine(), "give --mean and --std together");
        }
        VisionTransformer vit = FrozenBackbone.load(model);
        Optional<InputNormalisation> stored = FrozenBackbone.normalisation(model);
        if (mean == null) {
            return new Backbone(vit, stored);
        }
        int size = stored.map(InputNormalisation::imageSize).orElse(vit.config().imageSize());
        try {
            return new Backbone(vit, Optional.of(new InputNormalisation(vit.config().inChannels(), size, mean, std)));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--mean/--std: " + e.getMessage()
                    + " (the backbone has " + vit.config().inChannels() + " channel(s))");
        }
    }

    /** Loads {@code --model} and decides its input normalisation. */
    Loaded load() throws IOException {
        if ((mean == null) != (std == null)) {
            throw new ParameterException(spec.commandLine(), "give --mean and --std together");
        }
        if (extractBatch < 1) {
            throw new ParameterException(spec.commandLine(), "--extract-batch must be >= 1, got " + extractBatch);
        }
        if (pixels()) {
            if (mean == null) {
                throw new ParameterException(spec.commandLine(), "--model pixels needs --mean and --std (e.g. "
                        + "--mean 0.286 --std 0.353 for Fashion-MNIST)");
            }
            try {
                return new Loaded(null, new InputNormalisation(mean.length, 1, mean, std), null, extractBatch);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--mean/--std: " + e.getMessage());
            }
        }
        VisionTransformer vit = FrozenBackbone.load(model);
        Optional<InputNormalisation> stored = FrozenBackbone.normalisation(model);
        InputNormalisation input;
        if (mean != null) {
            int size = stored.map(InputNormalisation::imageSize).orElse(vit.config().imageSize());
            try {
                input = new InputNormalisation(vit.config().inChannels(), size, mean, std);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--mean/--std: " + e.getMessage()
                        + " (the backbone has " + vit.config().inChannels() + " channel(s))");
            }
            if (stored.isPresent() && !stored.get().equals(input)) {
                LOG.info("--mean/--std replace the stored {}", stored.get());
            }
        } else {
            input = stored.orElseThrow(() -> new ParameterException(spec.commandLine(), model + " does not say how "
                    + "its input images were normalised: give --mean and --std (" + vit.config().inChannels()
                    + " value(s) each)"));
        }
        int size = input.imageSize();
        FeatureExtractor fx = switch (feature) {
            case CLS -> new FeatureExtractor(vit, size, FeatureExtractor.Kind.CLS, 1);
            case LAST4 -> new FeatureExtractor(vit, size, FeatureExtractor.Kind.LAST_BLOCKS_CLS,
                    Math.min(4, vit.config().depth()));
            case CLS_MEAN -> new FeatureExtractor(vit, size, FeatureExtractor.Kind.CLS_AND_PATCH_MEAN, 1);
        };
        return new Loaded(vit, input, fx, extractBatch);
    }

    /** Class labels of {@code s}; k-NN and linear probes need every image labelled. */
    static int[] labels(ImageSource s) {
        int[] l = s.labels();
        for (int i = 0; i < l.length; i++) {
            if (l[i] < 0) {
                throw new IllegalArgumentException(s.describe(i) + " has no class label; k-NN and linear probes need "
                        + "labelled data (an image folder with one sub-folder per class)");
            }
        }
        return l;
    }

    /** picocli's hook for {@link Feature#parse}. */
    static final class FeatureConverter implements picocli.CommandLine.ITypeConverter<Feature> {
        @Override
        public Feature convert(String value) {
            return Feature.parse(value);
        }
    }
}
