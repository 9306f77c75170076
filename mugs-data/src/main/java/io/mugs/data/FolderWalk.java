package io.mugs.data;

import java.io.IOException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * Every file under a folder, following symbolic links as torchvision's {@code ImageFolder} does
 * ({@code os.walk(followlinks=True)}), with loops detected (a link to an ancestor is reported, not followed again),
 * and everything that is not an image counted by extension, so a scan can say what it did not read and why.
 *
 * @param images     the files {@code isImage} accepts, sorted by path
 * @param others     other files by extension ({@code "(none)"} for names without one), with their counts
 * @param loops      symbolic links that lead back into a folder already being walked
 * @param unreadable entries that could not be read (a broken link, no permission), each "path: reason"
 */
record FolderWalk(List<Path> images, Map<String, Integer> others, List<Path> loops, List<String> unreadable) {

    static FolderWalk of(Path root, Predicate<Path> isImage) throws IOException {
        List<Path> images = new ArrayList<>();
        Map<String, Integer> others = new TreeMap<>();
        List<Path> loops = new ArrayList<>();
        List<String> unreadable = new ArrayList<>();
        Files.walkFileTree(root, EnumSet.of(FileVisitOption.FOLLOW_LINKS), Integer.MAX_VALUE,
                new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                        if (attrs.isSymbolicLink()) {   // with FOLLOW_LINKS, only a link whose target is missing
                            unreadable.add(LogText.quoted(file) + ": a broken symbolic link (its target is missing)");
                        } else if (attrs.isRegularFile() && isImage.test(file)) {
                            images.add(file);
                        } else if (attrs.isRegularFile()) {
                            others.merge(extension(file), 1, Integer::sum);
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFileFailed(Path file, IOException e) {
                        if (e instanceof FileSystemLoopException) {
                            loops.add(file);
                        } else {
                            unreadable.add(LogText.quoted(file) + ": " + (e.getMessage() == null || e.getMessage()
                                    .equals(file.toString()) ? e.getClass().getSimpleName() : e.getMessage()));
                        }
                        return FileVisitResult.CONTINUE;
                    }
                });
        images.sort(null);
        loops.sort(null);
        return new FolderWalk(List.copyOf(images), others, List.copyOf(loops), List.copyOf(unreadable));
    }

    private static String extension(Path file) {
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot <= 0 ? "(none)" : n.substring(dot).toLowerCase(Locale.ROOT);
    }

    /** E.g. {@code 3 files of other types (.heic 2, .txt 1); 1 symbolic-link loop ('data/a/up')}. */
    String describeSkipped() {
        List<String> parts = new ArrayList<>();
        if (!others.isEmpty()) {
            int n = others.values().stream().mapToInt(Integer::intValue).sum();
            parts.add(n + " file(s) of other types, not read (" + others.entrySet().stream()
                    .map(e -> e.getKey() + " " + e.getValue()).collect(Collectors.joining(", ")) + ")");
        }
        if (!loops.isEmpty()) {
            parts.add(loops.size() + " symbolic-link loop(s), followed once (" + loops.stream().limit(3)
                    .map(LogText::quoted).collect(Collectors.joining(", ")) + (loops.size() > 3 ? ", ..." : "") + ")");
        }
        if (!unreadable.isEmpty()) {
            parts.add(unreadable.size() + " unreadable entr" + (unreadable.size() == 1 ? "y" : "ies") + " ("
                    + unreadable.stream().limit(3).collect(Collectors.joining(", "))
                    + (unreadable.size() > 3 ? ", ..." : "") + ")");
        }
        return String.join("; ", parts);
    }
}
