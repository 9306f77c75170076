package io.mugs.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * JPEG, PNG, WebP, BMP, TIFF and GIF files anywhere under a folder (symbolic links followed, loops reported),
 * decoded as torchvision's {@code ImageFolder} decodes them (PIL's
 * {@code open + convert}, see {@link ImageDecoder}). When the images sit in first-level sub-folders, each
 * sub-folder is a class (sorted by name, as {@code ImageFolder}); images directly in the root are unlabelled.
 *
 * <p>The scan reads every file's header (size and layout, no pixels), so damaged files and files smaller than the
 * crops are found before training, not in the middle of an epoch. What happens to them is a {@link BadImagePolicy}:
 * {@code SKIP} (default) leaves them out, counts them ({@link #leftOut()}) and logs the count with the first names
 * once; {@code REFUSE} stops with the first file's name. The minimum side is {@link Builder#minSide} at scan time,
 * and {@link MultiCropLoader} raises it to {@link MultiCropConfig#minImageSide()} through {@link #withMinSide}.
 *
 * <p>Channels: {@link Builder#channels} 3 (RGB, what torchvision gives) or 1 (L); by default 1 when every file is
 * grey (e.g. a Fashion-MNIST folder) and 3 otherwise, so one folder always yields one channel count.
 *
 * <pre>{@code
 * ImageSource imagenet = ImageFolderSource.scan(Path.of("/data/imagenet/train"));
 * ImageSource strict = ImageFolderSource.builder(Path.of("/data/pets")).channels(3).minSide(96)
 *         .onBadImage(BadImagePolicy.REFUSE).scan();
 * }</pre>
 */
public final class ImageFolderSource implements ImageSource {

    private static final Logger LOG = LoggerFactory.getLogger(ImageFolderSource.class);
    private static final List<String> EXTENSIONS = List.of(".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif",
            ".tiff", ".gif");
    private static final int NAMES_SHOWN = 3;

    private final Path root;
    private final List<Path> files;
    private final int[] labels;
    private final int[] widths;    // per file, from its header
    private final int[] heights;
    private final List<String> classNames;
    private final ImageDecoder decoder;
    private final ImageDecoder.Mode mode;
    private final BadImagePolicy policy;
    private final int minSide;
    private final List<String> leftOut;
    private final String summary;

    private ImageFolderSource(Path root, List<Path> files, int[] labels, int[] widths, int[] heights,
                              List<String> classNames,
                              ImageDecoder decoder, ImageDecoder.Mode mode, BadImagePolicy policy, int minSide,
                              List<String> leftOut, String summary) {
        this.root = root;
        this.files = files;
        this.labels = labels;
        this.widths = widths;
        this.heights = heights;
        this.classNames = classNames;
        this.decoder = decoder;
        this.mode = mode;
        this.policy = policy;
        this.minSide = minSide;
        this.leftOut = leftOut;
        this.summary = summary;
    }

    /**
     * Lists the images under {@code root} (recursively, sorted by path) with the defaults of {@link #builder}.
     *
     * @throws NoSuchFileException if {@code root} is not a folder
     * @throws IOException         if it holds no usable JPEG or PNG file
     */
    public static ImageFolderSource scan(Path root) throws IOException {
        return builder(root).scan();
    }

    /** Scan settings: minimum side 1, {@link BadImagePolicy#SKIP}, channels by content, EXIF orientation off. */
    public static Builder builder(Path root) {
        return new Builder(root);
    }

    /** Settings of {@link #scan}; {@link #scan()} reads the headers. */
    public static final class Builder {
        private final Path root;
        private int minSide = 1;
        private BadImagePolicy policy = BadImagePolicy.SKIP;
        private int channels;
        private boolean exifOrientation;
        private ImageDecoder.SixteenBit sixteenBit = ImageDecoder.SixteenBit.SCALE;
        private long maxDecodePixels = ImageDecoder.DEFAULT_MAX_DECODE_PIXELS;

        private Builder(Path root) {
            this.root = root;
        }

        /** Files whose shorter side is below {@code px} are bad images (default 1: any size). */
        public Builder minSide(int px) {
            if (px < 1) {
                throw new IllegalArgumentException("ImageFolderSource minSide must be >= 1 px, got " + px);
            }
            minSide = px;
            return this;
        }

        /** What to do with unreadable or too small files (default {@link BadImagePolicy#SKIP}). */
        public Builder onBadImage(BadImagePolicy p) {
            policy = java.util.Objects.requireNonNull(p, "policy");
            return this;
        }

        /** 1 (PIL's L) or 3 (PIL's RGB, torchvision's choice); by default 1 only when every file is grey. */
        public Builder channels(int c) {
            ImageDecoder.Mode.forChannels(c);
            channels = c;
            return this;
        }

        /** Turn JPEGs upright by their EXIF orientation (default off, as torchvision's loader). */
        public Builder exifOrientation(boolean apply) {
            exifOrientation = apply;
            return this;
        }

        /**
         * How 16-bit grey images become 8 bits: {@link ImageDecoder.SixteenBit#SCALE} (default, the picture as it
         * looks) or {@link ImageDecoder.SixteenBit#PIL_CLIP} (what torchvision's PIL loader gives: mostly white).
         * The scan warns when it finds such images, either way.
         */
        public Builder sixteenBit(ImageDecoder.SixteenBit rule) {
            sixteenBit = java.util.Objects.requireNonNull(rule, "rule");
            return this;
        }

        /** Images over this many pixels are read subsampled ({@link ImageDecoder#DEFAULT_MAX_DECODE_PIXELS}). */
        public Builder maxDecodePixels(long pixels) {
            ImageDecoder.pil().maxDecodePixels(pixels);   // checks the value
            maxDecodePixels = pixels;
            return this;
        }

        public ImageFolderSource scan() throws IOException {
            return ImageFolderSource.scan(this);
        }
    }

    private record Scanned(Path file, ImageHeader header, String problem) {
    }

    private static ImageFolderSource scan(Builder b) throws IOException {
        Path root = b.root;
        if (!Files.isDirectory(root)) {
            throw new NoSuchFileException(root.toString(), null, "not a folder: pass a folder of images "
                    + "(optionally one sub-folder per class)");
        }
        FolderWalk walk = FolderWalk.of(root, ImageFolderSource::isImage);
        List<Path> all = walk.images();
        if (all.isEmpty()) {
            throw new IOException("no image files (" + String.join(", ", EXTENSIONS) + ") under "
                    + LogText.quoted(root) + (walk.others().isEmpty() ? "" : " (" + walk.describeSkipped() + ")")
                    + ": check the path");
        }
        TreeSet<String> classes = new TreeSet<>();   // from every image file, so skips never renumber classes
        for (Path f : all) {
            Path rel = root.relativize(f);
            if (rel.getNameCount() > 1) {
                classes.add(rel.getName(0).toString());
            }
        }
        List<String> names = List.copyOf(classes);
        Map<String, Integer> classIndex = new HashMap<>();
        for (String n : names) {
            classIndex.put(n, classIndex.size());
        }
        List<Scanned> scanned = all.parallelStream().map(f -> inspect(f, b.minSide)).toList();
        List<Scanned> bad = scanned.stream().filter(s -> s.problem() != null).toList();
        List<Scanned> good = scanned.stream().filter(s -> s.problem() == null).toList();
        List<String> leftOut = bad.stream().map(s -> s.file() + ": " + s.problem()).toList();
        if (!bad.isEmpty()) {
            if (b.policy == BadImagePolicy.REFUSE) {
                throw new IOException(leftOut.get(0) + " (" + bad.size() + " of " + all.size() + " files under " + root
                        + " are unusable; remove them, or scan with BadImagePolicy.SKIP to leave them out)");
            }
            LOG.warn("{}: left out {} of {} image files at scan: {}", LogText.quoted(root), bad.size(), all.size(),
                    firstFew(bad.stream().map(x -> LogText.quoted(x.file()) + ": " + x.problem()).toList()));
        }
        if (good.isEmpty()) {
            throw new IOException("none of the " + all.size() + " image files under " + root + " is usable, e.g. "
                    + leftOut.get(0));
        }
        int[] labels = new int[good.size()];
        int[] widths = new int[good.size()];
        int[] heights = new int[good.size()];
        boolean allGrey = true;
        for (int i = 0; i < labels.length; i++) {
            Scanned s = good.get(i);
            Path rel = root.relativize(s.file());
            labels[i] = rel.getNameCount() > 1 ? classIndex.get(rel.getName(0).toString()) : -1;
            widths[i] = s.header().width();
            heights[i] = s.header().height();
            allGrey &= s.header().grey();
        }
        ImageDecoder.Mode mode = b.channels != 0 ? ImageDecoder.Mode.forChannels(b.channels)
                : allGrey ? ImageDecoder.Mode.L : ImageDecoder.Mode.RGB;
        ImageDecoder decoder = (b.exifOrientation ? ImageDecoder.withExifOrientation() : ImageDecoder.pil())
                .sixteenBit(b.sixteenBit).maxDecodePixels(b.maxDecodePixels);
        String summary = summary(root, good, bad, walk, names.size(), b.maxDecodePixels);
        LOG.info(summary);
        long sixteen = good.stream().filter(g -> g.header().sixteenBitGrey()).count();
        if (sixteen > 0) {
            LOG.warn("{}: {} of {} images are 16-bit grey (e.g. {}); {}", LogText.quoted(root), sixteen, good.size(),
                    LogText.quoted(good.stream().filter(g -> g.header().sixteenBitGrey()).findFirst().get().file()),
                    b.sixteenBit == ImageDecoder.SixteenBit.SCALE ? "they are scaled to 8 bits (v x 255 / 65535); "
                            + "sixteenBit(PIL_CLIP) gives what torchvision's PIL loader gives (clipped at 255: "
                            + "mostly white)" : "they are clipped at 255 as PIL does (most come out white); "
                            + "sixteenBit(SCALE) scales them to 8 bits");
        }
        return new ImageFolderSource(root, good.stream().map(Scanned::file).toList(), labels, widths, heights, names,
                decoder, mode, b.policy, b.minSide, leftOut, summary);
    }

    private static Scanned inspect(Path file, int minSide) {
        try {
            ImageHeader h = ImageDecoder.header(file);
            if (h.minSide() < minSide) {
                return new Scanned(file, h, tooSmall(h, minSide));
            }
            return new Scanned(file, h, null);
        } catch (IOException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            return new Scanned(file, null, m.startsWith(file.toString()) ? m.substring(file.toString().length())
                    .replaceFirst("^: ", "") : m);
        }
    }

    private static String tooSmall(ImageHeader h, int minSide) {
        return h.width() + "x" + h.height() + " px, smaller than the " + minSide + " px minimum side "
                + "(MultiCropConfig.minImageSide, the local crop size by default)";
    }

    private static String firstFew(List<String> items) {
        String shown = items.stream().limit(NAMES_SHOWN).collect(Collectors.joining("; "));
        return items.size() > NAMES_SHOWN ? shown + "; ..." : shown;
    }

    /**
     * The scan's one line: images read by format, classes, and what was left out and why (other file types,
     * symbolic-link loops, unreadable entries, unusable images), and how many exceed the decode budget.
     */
    private static String summary(Path root, List<Scanned> good, List<Scanned> bad, FolderWalk walk, int classes,
                                  long budget) {
        Map<String, Long> formats = new java.util.TreeMap<>();
        long over = 0;
        Scanned firstOver = null;
        for (Scanned g : good) {
            formats.merge(g.header().format(), 1L, Long::sum);
            if ((long) g.header().width() * g.header().height() > budget) {
                over++;
                firstOver = firstOver == null ? g : firstOver;
            }
        }
        StringBuilder line = new StringBuilder(LogText.quoted(root)).append(": read ").append(good.size())
                .append(" images (").append(formats.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                        .collect(Collectors.joining(", "))).append(")");
        line.append(classes > 0 ? " in " + classes + " classes" : ", unlabelled");
        List<String> skipped = new ArrayList<>();
        if (!bad.isEmpty()) {
            skipped.add(bad.size() + " unusable (e.g. " + LogText.quoted(bad.get(0).file()) + ": "
                    + bad.get(0).problem() + ")");
        }
        if (!walk.others().isEmpty() || !walk.loops().isEmpty() || !walk.unreadable().isEmpty()) {
            skipped.add(walk.describeSkipped());
        }
        line.append(skipped.isEmpty() ? "; nothing skipped" : "; skipped " + String.join("; ", skipped));
        if (over > 0) {
            int s = ImageDecoder.subsampling(firstOver.header().width(), firstOver.header().height(), budget);
            line.append("; ").append(over).append(" over the decode budget of ").append(budget)
                    .append(" pixels are read subsampled (e.g. ").append(LogText.quoted(firstOver.file()))
                    .append(", ").append(firstOver.header().width()).append('x').append(firstOver.header().height())
                    .append(" px, at 1/").append(s).append(')');
        }
        return line.toString();
    }

    private static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return EXTENSIONS.stream().anyMatch(n::endsWith);
    }

    /**
     * This folder without the files whose shorter side (from the header read at scan) is below {@code minSide},
     * under the scan's {@link BadImagePolicy}: a new source for {@code SKIP} (logged once), an
     * {@link IllegalArgumentException} naming the first file for {@code REFUSE}; this source when none is too small.
     */
    @Override
    public ImageFolderSource withMinSide(int minSide) {
        if (minSide <= this.minSide) {
            return this;
        }
        List<Integer> keep = new ArrayList<>();
        List<String> small = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            if (Math.min(widths[i], heights[i]) >= minSide) {
                keep.add(i);
            } else {
                small.add(files.get(i) + ": " + tooSmall(new ImageHeader("", widths[i], heights[i], false), minSide));
            }
        }
        if (small.isEmpty()) {
            return this;
        }
        if (policy == BadImagePolicy.REFUSE) {
            throw new IllegalArgumentException(small.get(0) + " (" + small.size() + " of " + files.size() + " files "
                    + "are this small): remove or upscale them, lower MultiCropConfig.minImageSide to let crops "
                    + "upsample them, or scan with BadImagePolicy.SKIP");
        }
        if (keep.isEmpty()) {
            throw new IllegalArgumentException("every image under " + root + " is too small, e.g. " + small.get(0));
        }
        LOG.warn("{}: left out {} of {} images too small for the crops: {}", root, small.size(), files.size(),
                firstFew(small));
        List<String> out = new ArrayList<>(leftOut);
        out.addAll(small);
        return new ImageFolderSource(root, keep.stream().map(files::get).toList(),
                keep.stream().mapToInt(i -> labels[i]).toArray(), keep.stream().mapToInt(i -> widths[i]).toArray(),
                keep.stream().mapToInt(i -> heights[i]).toArray(), classNames, decoder, mode, policy, minSide,
                List.copyOf(out), summary);
    }

    @Override
    public int size() {
        return files.size();
    }

    @Override
    public Image load(int index) throws IOException {
        return decoder.decode(files.get(index), mode);
    }

    /**
     * Converts a decoded PNG-like image as PIL's {@code convert} would: one channel for grey layouts, RGB
     * otherwise (alpha dropped).
     */
    public static Image fromBufferedImage(BufferedImage img) {
        try {
            return ImageDecoder.fromBufferedImage(img, ImageDecoder.Mode.NATURAL);
        } catch (IOException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
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

    /** The layout every image decodes to: {@code L} (1 channel) or {@code RGB} (3). */
    public ImageDecoder.Mode mode() {
        return mode;
    }

    /**
     * The scan's one-line account, also logged: images read by format, classes, what was skipped and why (other
     * file types, symbolic-link loops, unreadable entries, unusable images) and how many are read subsampled.
     */
    public String scanSummary() {
        return summary;
    }

    /** Files left out (at scan or by {@link #withMinSide}), each "path: reason"; empty when none. */
    public List<String> leftOut() {
        return leftOut;
    }
}
