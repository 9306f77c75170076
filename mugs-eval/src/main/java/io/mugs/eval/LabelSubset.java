package io.mugs.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The labelled images of a semi-supervised run (paper §4.1 "Semi-supervised learning", Appendix B.2.2): a
 * class-balanced subset of a training set drawn with a seed, {@code 1%}, {@code 10%}, {@code 100%} or
 * {@code N-per-class}. Each class keeps {@code round(fraction x its count)} images (at least one), so a balanced set
 * such as Fashion-MNIST gives exactly 60 per class at 1 %; the images of each class are a seeded shuffle's first ones.
 * The chosen indices are written as JSON ({@value #FILE_NAME}) into every output folder and read back, so every method
 * of a comparison trains on the same labels.
 *
 * <pre>{@code
 * LabelSubset s = LabelSubset.draw(train.labels(), 10, "1%", 0);     // 600 of 60,000
 * s.write(out.resolve(LabelSubset.FILE_NAME));
 * LabelSubset same = LabelSubset.read(out.resolve(LabelSubset.FILE_NAME), train.labels());
 * LabelSubset.Split sweep = s.holdOut(train.labels(), 0.2, 0);        // choose settings on part of the labels
 * }</pre>
 *
 * @param spec     how it was drawn ({@code 1%}, {@code 10-per-class}, ...; {@code file} for a read-in list)
 * @param seed     the seed of the draw
 * @param dataSize images in the full training set (a subset read back is checked against it)
 * @param indices  the chosen image indices, ascending
 */
public record LabelSubset(String spec, long seed, int dataSize, int[] indices) {

    /** File name of the subset in an output folder. */
    public static final String FILE_NAME = "labels.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A labelled subset split into the part that trains and the held-out part that chooses settings. */
    public record Split(int[] fit, int[] validation) {
    }

    public LabelSubset {
        indices = indices.clone();
        Arrays.sort(indices);
        for (int i = 0; i < indices.length; i++) {
            if (indices[i] < 0 || indices[i] >= dataSize || (i > 0 && indices[i] == indices[i - 1])) {
                throw new IllegalArgumentException("label subset index " + indices[i] + " is repeated or outside the "
                        + dataSize + " training images");
            }
        }
    }

    @Override
    public int[] indices() {
        return indices.clone();
    }

    public int size() {
        return indices.length;
    }

    /**
     * Draws a class-balanced subset.
     *
     * @param labels class of every training image, in [0, classes)
     * @param spec   {@code P%} (0 < P <= 100), {@code N-per-class} or {@code all}
     * @throws IllegalArgumentException with what to write instead when {@code spec} is malformed, or when a class
     *                                  has fewer than N images
     */
    public static LabelSubset draw(int[] labels, int classes, String spec, long seed) {
        String s = spec.trim().toLowerCase(Locale.ROOT);
        double fraction = -1;
        int perClass = -1;
        try {
            if (s.equals("all")) {
                fraction = 1;
            } else if (s.endsWith("%")) {
                fraction = Double.parseDouble(s.substring(0, s.length() - 1)) / 100;
            } else if (s.endsWith("-per-class")) {
                perClass = Integer.parseInt(s.substring(0, s.length() - "-per-class".length()));
            }
        } catch (NumberFormatException e) {
            fraction = -1;
            perClass = -1;
        }
        if (!(fraction > 0 && fraction <= 1) && perClass < 1) {
            throw new IllegalArgumentException("labels '" + spec + "' must be a percentage in (0, 100] such as 1% or "
                    + "10%, N-per-class such as 5-per-class, or all");
        }
        List<List<Integer>> byClass = byClass(labels, classes);
        SplittableRandom rng = new SplittableRandom(seed);
        List<Integer> chosen = new ArrayList<>();
        for (int c = 0; c < classes; c++) {
            List<Integer> members = byClass.get(c);
            int take = perClass > 0 ? perClass : Math.max(1, (int) Math.round(fraction * members.size()));
            if (members.isEmpty()) {
                continue;
            }
            if (take > members.size()) {
                throw new IllegalArgumentException("class " + c + " has " + members.size() + " images, fewer than "
                        + "the " + take + " asked for by '" + spec + "': ask for fewer labels per class");
            }
            int[] shuffled = shuffled(members, rng);
            for (int i = 0; i < take; i++) {
                chosen.add(shuffled[i]);
            }
        }
        return new LabelSubset(s, seed, labels.length, chosen.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Every image of a set of {@code size}: the fully supervised case. */
    public static LabelSubset all(int size) {
        int[] idx = new int[size];
        Arrays.setAll(idx, i -> i);
        return new LabelSubset("100%", 0, size, idx);
    }

    /**
     * Splits this subset, class by class, into a training part and a held-out part of about {@code fraction} of
     * each class (at least one image of every class with two or more), drawn with {@code seed}.
     */
    public Split holdOut(int[] labels, double fraction, long seed) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("the held-out fraction must be in (0, 1), got " + fraction);
        }
        int classes = Arrays.stream(labels).max().orElse(0) + 1;
        List<List<Integer>> byClass = new ArrayList<>();
        for (int c = 0; c < classes; c++) {
            byClass.add(new ArrayList<>());
        }
        for (int i : indices) {
            byClass.get(labels[i]).add(i);
        }
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        List<Integer> fit = new ArrayList<>();
        List<Integer> val = new ArrayList<>();
        for (List<Integer> members : byClass) {
            int[] shuffled = shuffled(members, rng);
            int held = shuffled.length < 2 ? 0 : Math.max(1, (int) Math.round(fraction * shuffled.length));
            for (int i = 0; i < shuffled.length; i++) {
                (i < held ? val : fit).add(shuffled[i]);
            }
        }
        if (val.isEmpty() || fit.isEmpty()) {
            throw new IllegalArgumentException("a held-out part needs at least two labelled images of some class; "
                    + "this subset has " + indices.length + ": label more images");
        }
        return new Split(fit.stream().mapToInt(Integer::intValue).sorted().toArray(),
                val.stream().mapToInt(Integer::intValue).sorted().toArray());
    }

    /** The chosen images of {@code full} as a source of their own (item i is {@code full}'s item indices[i]). */
    public io.mugs.data.ImageSource of(io.mugs.data.ImageSource full) {
        if (full.size() != dataSize) {
            throw new IllegalArgumentException("this subset was drawn from " + dataSize + " images, not "
                    + full.size());
        }
        int[] idx = indices;
        return new io.mugs.data.ImageSource() {
            @Override
            public int size() {
                return idx.length;
            }

            @Override
            public io.mugs.data.Image load(int i) throws IOException {
                return full.load(idx[i]);
            }

            @Override
            public int label(int i) {
                return full.label(idx[i]);
            }

            @Override
            public List<String> classNames() {
                return full.classNames();
            }

            @Override
            public String describe(int i) {
                return full.describe(idx[i]);
            }
        };
    }

    /** Images per class in this subset. */
    public int[] classCounts(int[] labels, int classes) {
        int[] counts = new int[classes];
        for (int i : indices) {
            counts[labels[i]]++;
        }
        return counts;
    }

    /** Writes the subset as JSON (atomically). */
    public void write(Path file) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("spec", spec);
        root.put("seed", seed);
        root.put("data_size", dataSize);
        root.put("size", indices.length);
        var arr = root.putArray("indices");
        for (int i : indices) {
            arr.add(i);
        }
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, JSON.writeValueAsString(root), StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Reads a subset written by {@link #write} for a training set with {@code labels}.
     *
     * @throws IOException naming the file when it is not a subset file or belongs to a training set of another size
     */
    public static LabelSubset read(Path file, int[] labels) throws IOException {
        if (Files.size(file) > 64L << 20) {
            throw new IOException(file + " is larger than 64 MB: not a label subset file");
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IOException(file + " is not a label subset file (not JSON: " + e.getMessage() + ")", e);
        }
        JsonNode idx = root == null ? null : root.get("indices");
        if (idx == null || !idx.isArray() || !root.path("data_size").canConvertToInt()) {
            throw new IOException(file + " is not a label subset file (no 'indices' array or 'data_size')");
        }
        int size = root.get("data_size").asInt();
        if (size != labels.length) {
            throw new IOException(file + " was drawn from " + size + " training images but this training set has "
                    + labels.length + ": use the training data it was drawn from");
        }
        int[] indices = new int[idx.size()];
        for (int i = 0; i < indices.length; i++) {
            if (!idx.get(i).canConvertToInt()) {
                throw new IOException(file + ": index " + idx.get(i) + " is not an integer");
            }
            indices[i] = idx.get(i).asInt();
        }
        try {
            return new LabelSubset(root.path("spec").asText("file"), root.path("seed").asLong(), size, indices);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * {@code --labels}: a file written earlier when {@code spec} names an existing file, else a new draw.
     */
    public static LabelSubset resolve(String spec, int[] labels, int classes, long seed) throws IOException {
        Path file = Path.of(spec);
        if (spec.endsWith(".json") || Files.isRegularFile(file)) {
            return read(file, labels);
        }
        return draw(labels, classes, spec, seed);
    }

    private static List<List<Integer>> byClass(int[] labels, int classes) {
        List<List<Integer>> out = new ArrayList<>();
        for (int c = 0; c < classes; c++) {
            out.add(new ArrayList<>());
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException("image " + i + " has label " + labels[i] + ", outside [0, "
                        + classes + "): every training image needs a class");
            }
            out.get(labels[i]).add(i);
        }
        return out;
    }

    private static int[] shuffled(List<Integer> members, SplittableRandom rng) {
        int[] a = members.stream().mapToInt(Integer::intValue).toArray();
        for (int i = a.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return a;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LabelSubset l && l.dataSize == dataSize && Arrays.equals(l.indices, indices);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(indices) * 31 + dataSize;
    }

    @Override
    public String toString() {
        return "LabelSubset[" + spec + ", seed " + seed + ", " + indices.length + " of " + dataSize + "]";
    }
}
