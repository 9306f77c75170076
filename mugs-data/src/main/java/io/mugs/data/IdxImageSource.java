package io.mugs.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * Images and labels in the idx format of MNIST and Fashion-MNIST (raw or gzip-compressed): an images file
 * ({@code magic 0x00000803}, count, rows, columns, then 8-bit pixels) and an optional labels file
 * ({@code magic 0x00000801}, count, then 8-bit labels). Everything is read into memory at construction.
 *
 * <pre>{@code
 * ImageSource train = IdxImageSource.fashionMnist(Path.of("/usr/share/datasets/fashion-mnist"), true);
 * ImageSource bundled = IdxImageSource.bundledFashionMnist(true);   // 4,000 train / 1,000 test images
 * }</pre>
 */
public final class IdxImageSource implements ImageSource {

    /** Fashion-MNIST class names, by label. */
    public static final List<String> FASHION_MNIST_CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress",
            "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    private static final String BUNDLE = "/io/mugs/data/fashion-mnist/";

    private final String name;
    private final byte[] pixels;
    private final byte[] labels;
    private final int count;
    private final int rows;
    private final int cols;
    private final List<String> classNames;

    private IdxImageSource(String name, InputStream images, InputStream labelStream, List<String> classNames)
            throws IOException {
        this.name = name;
        this.classNames = classNames;
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(images))) {
            int magic = in.readInt();
            if (magic != 0x803) {
                throw new IOException(name + " is not an idx image file (magic 0x" + Integer.toHexString(magic)
                        + ", expected 0x803)");
            }
            count = in.readInt();
            rows = in.readInt();
            cols = in.readInt();
            if (count < 0 || rows < 1 || cols < 1) {
                throw new IOException(name + " has an invalid header: " + count + " images of " + rows + "x" + cols);
            }
            pixels = new byte[Math.multiplyExact(count, rows * cols)];
            in.readFully(pixels);
        } catch (EOFException e) {
            throw new IOException(name + " is truncated: fewer pixels than its header announces", e);
        }
        if (labelStream == null) {
            labels = null;
        } else {
            try (DataInputStream in = new DataInputStream(new BufferedInputStream(labelStream))) {
                int magic = in.readInt();
                int n = in.readInt();
                if (magic != 0x801 || n != count) {
                    throw new IOException(name + ": the labels file has magic 0x" + Integer.toHexString(magic) + " and "
                            + n + " labels; expected 0x801 and " + count);
                }
                labels = new byte[n];
                in.readFully(labels);
            } catch (EOFException e) {
                throw new IOException(name + ": the labels file is truncated", e);
            }
        }
        if (count == 0) {
            throw new IOException(name + " holds no images");
        }
    }

    /**
     * Reads an images file and, if {@code labelsFile} is not null, its labels file; {@code .gz} files are
     * decompressed.
     */
    public static IdxImageSource read(Path imagesFile, Path labelsFile, List<String> classNames) throws IOException {
        return new IdxImageSource(imagesFile.toString(), open(imagesFile),
                labelsFile == null ? null : open(labelsFile), classNames);
    }

    /**
     * The full Fashion-MNIST training (60,000) or test (10,000) set from a folder holding the four standard files
     * ({@code train-images-idx3-ubyte[.gz]} etc.), such as {@code /usr/share/datasets/fashion-mnist} from Debian's
     * {@code dataset-fashion-mnist} package.
     */
    public static IdxImageSource fashionMnist(Path dir, boolean train) throws IOException {
        String prefix = train ? "train" : "t10k";
        return read(find(dir, prefix + "-images-idx3-ubyte"), find(dir, prefix + "-labels-idx1-ubyte"),
                FASHION_MNIST_CLASSES);
    }

    /** The Fashion-MNIST subset bundled with the library: 4,000 training or 1,000 test images (MIT licence). */
    public static IdxImageSource bundledFashionMnist(boolean train) {
        String prefix = BUNDLE + (train ? "train" : "t10k");
        try {
            return new IdxImageSource("bundled Fashion-MNIST " + (train ? "train" : "test"),
                    new GZIPInputStream(resource(prefix + "-images-idx3-ubyte.gz")),
                    new GZIPInputStream(resource(prefix + "-labels-idx1-ubyte.gz")), FASHION_MNIST_CLASSES);
        } catch (IOException e) {
            throw new IllegalStateException("the bundled Fashion-MNIST subset is damaged", e);
        }
    }

    private static InputStream resource(String path) throws IOException {
        InputStream in = IdxImageSource.class.getResourceAsStream(path);
        if (in == null) {
            throw new IOException("missing resource " + path);
        }
        return in;
    }

    private static Path find(Path dir, String base) throws IOException {
        for (Path p : new Path[] {dir.resolve(base), dir.resolve(base + ".gz")}) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new NoSuchFileException(dir.resolve(base) + "[.gz]", null, "no " + base + " or " + base + ".gz in " + dir
                + ": install Debian's dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist) or download "
                + "the four idx files and pass their folder");
    }

    private static InputStream open(Path file) throws IOException {
        InputStream in = Files.newInputStream(file);
        return file.toString().endsWith(".gz") ? new GZIPInputStream(in) : in;
    }

    @Override
    public int size() {
        return count;
    }

    @Override
    public Image load(int index) {
        int n = rows * cols;
        float[] data = new float[n];
        int offset = index * n;
        for (int i = 0; i < n; i++) {
            data[i] = pixels[offset + i] & 0xff;
        }
        return new Image(1, rows, cols, data);
    }

    @Override
    public int label(int index) {
        return labels == null ? -1 : labels[index] & 0xff;
    }

    @Override
    public List<String> classNames() {
        return labels == null ? List.of() : classNames;
    }

    @Override
    public String describe(int index) {
        return name + " #" + index;
    }
}
