package io.mugs.cli;

import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageFolderSource;
import io.mugs.data.ImageSource;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A DATA argument of the command line: {@code fmnist-bundled:train|test} (the subset inside mugs-data),
 * {@code fmnist:DIR:train|test} (the four Fashion-MNIST idx files in DIR) or a folder of images (JPEG, PNG, WebP,
 * BMP, TIFF, GIF; one sub-folder per class for labels; images directly in the folder are unlabelled).
 *
 * <pre>{@code
 * ImageSource test = DataSpec.parse("fmnist-bundled:test").open();
 * }</pre>
 *
 * @param kind   which reader
 * @param folder the idx folder or image folder (null for the bundled subset)
 * @param train  the training split (idx data only)
 */
record DataSpec(Kind kind, Path folder, boolean train) {

    /** The readers a DATA argument can name. */
    enum Kind { BUNDLED, IDX, FOLDER }

    /** Parses DATA; anything that is not an {@code fmnist...} form is a folder. */
    static DataSpec parse(String spec) {
        if (spec.startsWith("fmnist-bundled:")) {
            return new DataSpec(Kind.BUNDLED, null, split(spec, spec.substring("fmnist-bundled:".length())));
        }
        if (spec.startsWith("fmnist:")) {
            int colon = spec.lastIndexOf(':');
            if (colon <= "fmnist:".length()) {
                throw new IllegalArgumentException("'" + spec + "' is not fmnist:DIR:train or fmnist:DIR:test");
            }
            return new DataSpec(Kind.IDX, Path.of(spec.substring("fmnist:".length(), colon)),
                    split(spec, spec.substring(colon + 1)));
        }
        return new DataSpec(Kind.FOLDER, Path.of(spec), true);
    }

    private static boolean split(String spec, String split) {
        return switch (split) {
            case "train" -> true;
            case "test" -> false;
            default -> throw new IllegalArgumentException("'" + spec + "' must end in :train or :test");
        };
    }

    /** The same data with the other split (idx and bundled data; a folder stays itself). */
    DataSpec otherSplit() {
        return kind == Kind.FOLDER ? this : new DataSpec(kind, folder, !train);
    }

    /** Opens the reader (scans a folder, reads idx headers). */
    ImageSource open() throws IOException {
        return switch (kind) {
            case BUNDLED -> IdxImageSource.bundledFashionMnist(train);
            case IDX -> IdxImageSource.fashionMnist(folder, train);
            case FOLDER -> ImageFolderSource.scan(folder);
        };
    }

    /** A picocli converter, so a malformed DATA is a usage error naming the option. */
    static final class Converter implements picocli.CommandLine.ITypeConverter<DataSpec> {
        @Override
        public DataSpec convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
