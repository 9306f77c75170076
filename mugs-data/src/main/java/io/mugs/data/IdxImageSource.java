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
import java.util.zip.ZipException;

/**
 * Images and labels in the idx format of MNIST and Fashion-MNIST (raw or gzip-compressed): an images file
 * ({@code magic 0x00000803}, count, rows, columns, then 8-bit pixels) and an optional labels file
 * ({@code magic 0x00000801}, count, then 8-bit labels). Everything is read into memory at construction, after the
 * headers' dimensions are checked against the files' lengths (or, for gzip files, against what they can inflate
 * to), so a lying header costs no memory; every failure is an {@link IOException} naming the file.
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
    private static final int IMAGES_MAGIC = 0x803;
    private static final int LABELS_MAGIC = 0x801;
    /** Deflate's best case is about 1032:1; a header declaring more than this times the gzip file is a lie. */
    private static final long MAX_GZIP_RATIO = 1100;

    private final String name;
    private final byte[] pixels;
    private final byte[] labels;
    private final int count;
    private final int rows;
    private final int cols;
    private final List<String> classNames;

    private IdxImageSource(String name, Idx images, Idx labelFile, List<String> classNames) throws IOException {
        this.name = name;
        this.classNames = classNames;
        this.count = images.dims()[0];
        this.rows = images.dims()[1];
        this.cols = images.dims()[2];
        this.pixels = images.data();
        if (rows < 1 || cols < 1) {
            throw new IOException(name + " has an invalid header: " + count + " images of " + rows + "x" + cols);
        }
        if (labelFile == null) {
            labels = null;
        } else {
            if (labelFile.dims()[0] != count) {
                throw new IOException(labelFile.name() + " holds " + labelFile.dims()[0] + " labels but " + name
                        + " holds " + count + " images: the two files do not belong together");
            }
            labels = labelFile.data();
        }
        if (count == 0) {
            throw new IOException(name + " holds no images");
        }
    }

    /** An idx file's dimensions and its data bytes. */
    private record Idx(String name, int[] dims, byte[] data) {
    }

    /**
     * Reads an idx file of unsigned bytes with {@code rank} dimensions. The dimensions are checked before the data
     * is allocated: against the file's length for a plain file, against what a gzip file of {@code fileSize}
     * bytes can inflate to for a compressed one; a negative {@code fileSize} (a bundled resource) skips that check.
     * The data must then end exactly where the header says.
     */
    private static Idx readIdx(String name, InputStream raw, long fileSize, boolean gzip, int magic, int rank)
            throws IOException {
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(gzip ? new GZIPInputStream(raw) : raw))) {
            int found = in.readInt();
            if (found != magic) {
                throw new IOException(name + " is not an idx file of " + (rank == 1 ? "labels" : "images")
                        + " (magic 0x"
                        + Integer.toHexString(found) + ", expected 0x" + Integer.toHexString(magic) + ")");
            }
            int[] dims = new int[rank];
            long bytes = 1;
            for (int i = 0; i < rank; i++) {
                dims[i] = in.readInt();
                if (dims[i] < 0) {
                    throw new IOException(name + " has an invalid header: dimension " + i + " is " + dims[i]);
                }
                bytes = dims[i] == 0 || bytes <= Long.MAX_VALUE / 4 / dims[i] ? bytes * dims[i] : Long.MAX_VALUE / 4;
            }
            long header = 4L + 4L * rank;
            String declared = name + "'s header declares " + describe(dims) + " ("
                    + (bytes == Long.MAX_VALUE / 4 ? "over 2^61" : bytes) + " bytes)";
            if (fileSize >= 0 && !gzip && header + bytes != fileSize) {
                throw new IOException(declared + " but the file holds " + (fileSize - header) + " bytes after the "
                        + "header: the file is "
                        + (header + bytes > fileSize ? "truncated" : "not what its header says"));
            }
            if (fileSize >= 0 && gzip && bytes > MAX_GZIP_RATIO * fileSize) {
                throw new IOException(declared + ", more than a gzip file of " + fileSize + " bytes can inflate to:"
                        + " the header is damaged");
            }
            if (bytes > Integer.MAX_VALUE - 8) {
                throw new IOException(declared + ", more than one Java array holds");
            }
            byte[] data = new byte[(int) bytes];
            int n = in.readNBytes(data, 0, data.length);
            if (n < bytes) {
                throw new IOException(declared + " but ends after " + n + " of them: the file is truncated");
            }
            if (in.read() >= 0) {
                throw new IOException(declared + " but holds more: the file is not what its header says");
            }
            return new Idx(name, dims, data);
        } catch (EOFException e) {
            throw new IOException(name + " is truncated: it ends inside its idx header or its compressed data", e);
        } catch (ZipException e) {
            throw new IOException(name + " is not a readable gzip file (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(name)) {
                throw e;
            }
            throw new IOException(name + " cannot be read (" + e.getMessage() + ")", e);
        }
    }

    private static String describe(int[] dims) {
        return dims.length == 1 ? dims[0] + " labels" : dims[0] + " images of " + dims[1] + "x" + dims[2];
    }

    private static Idx readFile(Path file, int magic, int rank) throws IOException {
        long size = Files.size(file);
        return readIdx(file.toString(), Files.newInputStream(file), size, file.toString().endsWith(".gz"), magic, rank);
    }

    /**
     * Reads an images file and, if {@code labelsFile} is not null, its labels file; {@code .gz} files are
     * decompressed. The headers' dimensions are checked against the files before anything is allocated.
     *
     * @throws IOException naming the file and the problem (wrong magic, truncated, lying dimensions, damaged gzip)
     */
    public static IdxImageSource read(Path imagesFile, Path labelsFile, List<String> classNames) throws IOException {
        Idx images = readFile(imagesFile, IMAGES_MAGIC, 3);
        return new IdxImageSource(imagesFile.toString(), images,
                labelsFile == null ? null : readFile(labelsFile, LABELS_MAGIC, 1), classNames);
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
        String name = "bundled Fashion-MNIST " + (train ? "train" : "test");
        try {
            return new IdxImageSource(name,
                    readIdx(name, resource(prefix + "-images-idx3-ubyte.gz"), -1, true, IMAGES_MAGIC, 3),
                    readIdx(name + " labels", resource(prefix + "-labels-idx1-ubyte.gz"), -1, true, LABELS_MAGIC, 1),
                    FASHION_MNIST_CLASSES);
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

    @Override
    public int size() {
        return count;
    }

    @Override
    public Image load(int index) {
        int n = rows * cols;
        float[] data = new float[n];
        long offset = (long) index * n;
        for (int i = 0; i < n; i++) {
            data[i] = pixels[(int) offset + i] & 0xff;
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
