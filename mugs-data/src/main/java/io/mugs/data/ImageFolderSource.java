package io.mugs.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * JPEG and PNG files anywhere under a folder, decoded with the JDK's ImageIO. When the images sit in first-level
 * sub-folders, each sub-folder is a class (sorted by name, as torchvision's {@code ImageFolder}); images directly
 * in the root are unlabelled. Grayscale files decode to 1 channel, everything else to RGB.
 *
 * <pre>{@code
 * ImageSource imagenet = ImageFolderSource.scan(Path.of("/data/imagenet/train"));
 * }</pre>
 */
public final class ImageFolderSource implements ImageSource {

    private static final List<String> EXTENSIONS = List.of(".jpg", ".jpeg", ".png");

    private final Path root;
    private final List<Path> files;
    private final int[] labels;
    private final List<String> classNames;

    private ImageFolderSource(Path root, List<Path> files, int[] labels, List<String> classNames) {
        this.root = root;
        this.files = files;
        this.labels = labels;
        this.classNames = classNames;
    }

    /**
     * Lists the images under {@code root} (recursively, sorted by path).
     *
     * @throws NoSuchFileException if {@code root} is not a folder
     * @throws IOException         if it holds no JPEG or PNG file
     */
    public static ImageFolderSource scan(Path root) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new NoSuchFileException(root.toString(), null, "not a folder: pass a folder of JPEG/PNG images "
                    + "(optionally one sub-folder per class)");
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
            files = walk.filter(Files::isRegularFile).filter(ImageFolderSource::isImage).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IOException("no .jpg, .jpeg or .png files under " + root + ": check the path");
        }
        TreeSet<String> classes = new TreeSet<>();
        for (Path f : files) {
            Path rel = root.relativize(f);
            if (rel.getNameCount() > 1) {
                classes.add(rel.getName(0).toString());
            }
        }
        List<String> names = new ArrayList<>(classes);
        int[] labels = new int[files.size()];
        for (int i = 0; i < labels.length; i++) {
            Path rel = root.relativize(files.get(i));
            labels[i] = rel.getNameCount() > 1 ? names.indexOf(rel.getName(0).toString()) : -1;
        }
        return new ImageFolderSource(root, files, labels, List.copyOf(names));
    }

    private static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return EXTENSIONS.stream().anyMatch(n::endsWith);
    }

    @Override
    public int size() {
        return files.size();
    }

    @Override
    public Image load(int index) throws IOException {
        Path file = files.get(index);
        BufferedImage img;
        try {
            img = ImageIO.read(file.toFile());
        } catch (IOException | RuntimeException e) {
            throw new IOException("cannot decode " + file + ": " + e.getMessage(), e);
        }
        if (img == null) {
            throw new IOException("cannot decode " + file + ": not a readable JPEG or PNG");
        }
        return fromBufferedImage(img);
    }

    /** Converts a decoded image to {@link Image}: 1 channel for 8-bit grayscale, RGB otherwise (alpha dropped). */
    public static Image fromBufferedImage(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        boolean gray = img.getType() == BufferedImage.TYPE_BYTE_GRAY;
        Image out = new Image(gray ? 1 : 3, h, w);
        float[] d = out.data();
        if (gray) {
            var raster = img.getRaster();
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    d[y * w + x] = raster.getSample(x, y, 0);
                }
            }
            return out;
        }
        int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
        int plane = w * h;
        for (int i = 0; i < plane; i++) {
            int p = argb[i];
            d[i] = (p >> 16) & 0xff;
            d[plane + i] = (p >> 8) & 0xff;
            d[2 * plane + i] = p & 0xff;
        }
        return out;
    }

    @Override
    public int label(int index) {
        return labels[index];
    }

    @Override
    public List<String> classNames() {
        return classNames;
    }

    @Override
    public String describe(int index) {
        return files.get(index).toString();
    }

    public Path root() {
        return root;
    }
}
