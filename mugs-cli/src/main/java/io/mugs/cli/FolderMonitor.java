package io.mugs.cli;

import io.mugs.data.ImageFolderSource;
import io.mugs.data.ImageSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What {@code mugs pretrain} tells about an image folder before training: what it found (images, classes, sizes,
 * channels, skipped files), and whether the ImageNet layout ({@code DIR/train/<class>/...} beside a labelled
 * {@code DIR/val/<class>/...}) turns the k-NN monitor on without {@code --eval-train}/{@code --eval-test}: the
 * training images are its memory and {@code val} its queries.
 *
 * <pre>{@code
 * FolderMonitor m = FolderMonitor.find(Path.of("my-images/train"), train, 3, 20);   // m.test(): my-images/val
 * }</pre>
 *
 * @param train   the monitor's memory, or null when there is no monitor
 * @param test    the monitor's queries, or null
 * @param message one line saying what was chosen and why
 */
record FolderMonitor(ImageSource train, ImageSource test, String message) {

    /** The monitor for a folder of training images {@code folder} (already scanned as {@code train}). */
    static FolderMonitor find(Path folder, ImageSource train, int channels, int minMemory) throws IOException {
        Path val = folder.toAbsolutePath().normalize().resolveSibling("val");
        String name = folder.toAbsolutePath().normalize().getFileName().toString();
        String off = "no accuracy is measured while training: put labelled images in a val/ folder beside train/ "
                + "(DIR/train/<class>/, DIR/val/<class>/) or give --eval-train and --eval-test";
        if (!name.equals("train") || !Files.isDirectory(val)) {
            return new FolderMonitor(null, null, "k-NN monitor off: " + off);
        }
        if (!labelled(train)) {
            return new FolderMonitor(null, null, "k-NN monitor off: " + folder + " has images outside class "
                    + "sub-folders; " + off);
        }
        if (train.size() < minMemory) {
            return new FolderMonitor(null, null, "k-NN monitor off: its k is " + minMemory + " but " + folder
                    + " has " + train.size() + " images");
        }
        ImageFolderSource queries = ImageFolderSource.builder(val).channels(channels).scan();
        if (queries.size() == 0 || !labelled(queries) || !queries.classNames().equals(train.classNames())) {
            return new FolderMonitor(null, null, "k-NN monitor off: " + val + " does not hold images in the class "
                    + "sub-folders of " + folder + " " + train.classNames() + "; " + off);
        }
        return new FolderMonitor(train, queries, String.format(Locale.ROOT, "k-NN monitor on (train/ + val/ "
                + "layout): memory %s (%d images), queries %s (%d images); --eval-train/--eval-test choose others",
                folder, train.size(), val, queries.size()));
    }

    private static boolean labelled(ImageSource s) {
        if (s.classNames().isEmpty()) {
            return false;
        }
        for (int i = 0; i < s.size(); i++) {
            if (s.label(i) < 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * One line (plus one per skipped file, at most 10) about the training data: images, classes with their counts,
     * sizes and channels ({@code stats} measured on a sample of a folder; null for idx data, then the first image),
     * and the files an image folder left out.
     */
    static String describe(ImageSource s, ImageStatistics stats) throws IOException {
        StringBuilder b = new StringBuilder("Found ").append(s.size()).append(" images");
        List<String> classes = s.classNames();
        if (classes.isEmpty()) {
            b.append(", no class sub-folders (unlabelled)");
        } else {
            int[] counts = new int[classes.size()];
            int unlabelled = 0;
            for (int label : s.labels()) {
                if (label >= 0) {
                    counts[label]++;
                } else {
                    unlabelled++;
                }
            }
            List<String> parts = new ArrayList<>();
            for (int c = 0; c < classes.size() && c < 12; c++) {
                parts.add(classes.get(c) + " " + counts[c]);
            }
            b.append(" in ").append(classes.size()).append(classes.size() == 1 ? " class (" : " classes (")
                    .append(String.join(", ", parts)).append(classes.size() > 12 ? ", ...)" : ")");
            if (unlabelled > 0) {
                b.append(", ").append(unlabelled).append(" outside class sub-folders");
            }
        }
        int channels;
        if (stats != null) {
            channels = stats.channels();
            b.append(String.format(Locale.ROOT, ", sides %d to %d px (%d images measured)", stats.minSide(),
                    stats.maxSide(), stats.images()));
        } else {
            var first = s.load(0);
            channels = first.channels();
            b.append(", ").append(first.height()).append('x').append(first.width()).append(" px");
        }
        b.append(channels == 1 ? ", grey (1 channel)" : ", RGB (3 channels)");
        if (s instanceof ImageFolderSource f) {
            List<String> left = f.leftOut();
            b.append(left.isEmpty() ? ", no file skipped" : ", " + left.size() + " file(s) skipped:");
            for (String l : left.subList(0, Math.min(10, left.size()))) {
                b.append(System.lineSeparator()).append("  skipped ").append(l);
            }
            if (left.size() > 10) {
                b.append(System.lineSeparator()).append("  ... and ").append(left.size() - 10).append(" more");
            }
        }
        return b.toString();
    }
}
