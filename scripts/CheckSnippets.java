import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The README's code is code that builds (run by scripts/check-downstream.sh, in CI):
 *
 * 1. Every ```java and ```xml block of README.md follows a line {@code <!-- code: PATH -->} naming the file that holds
 *    it, and is that file's text exactly; when the file marks a region with "README: begin" and "README: end" lines
 *    (in a comment), the block is that region, less its common indentation.
 * 2. Every Java file under downstream/src/main/java is such a block: downstream/ holds exactly the README's code.
 *
 * Usage: java scripts/CheckSnippets.java REPO_ROOT
 */
public class CheckSnippets {

    static final Pattern MARKER = Pattern.compile("^<!--\\s*code:\\s*(\\S+)\\s*-->\\s*$");

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        List<String> lines = Files.readAllLines(root.resolve("README.md"));
        List<String> problems = new ArrayList<>();
        Set<String> named = new TreeSet<>();
        int blocks = 0;
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            if (!l.startsWith("```")) {
                continue;
            }
            String lang = l.substring(3).trim();
            int end = i + 1;
            while (end < lines.size() && !lines.get(end).startsWith("```")) {
                end++;
            }
            List<String> body = lines.subList(i + 1, Math.min(end, lines.size()));
            int start = i;
            i = end;
            if (!lang.equals("java") && !lang.equals("xml")) {
                continue;
            }
            int m = start - 1;
            while (m >= 0 && lines.get(m).isBlank()) {
                m--;
            }
            Matcher marker = m >= 0 ? MARKER.matcher(lines.get(m)) : null;
            if (marker == null || !marker.matches()) {
                problems.add("README.md:" + (start + 1) + ": a ```" + lang + " block without a '<!-- code: PATH -->' "
                        + "line before it (put the code in downstream/ and name the file)");
                continue;
            }
            blocks++;
            String path = marker.group(1);
            named.add(path);
            Path file = root.resolve(path);
            if (!Files.isRegularFile(file)) {
                problems.add("README.md:" + (m + 1) + ": " + path + " does not exist");
                continue;
            }
            List<String> expected = region(Files.readAllLines(file));
            for (int k = 0; k < Math.max(expected.size(), body.size()); k++) {
                String want = k < expected.size() ? expected.get(k) : "(end of " + path + ")";
                String got = k < body.size() ? body.get(k) : "(end of the README block)";
                if (!want.equals(got)) {
                    problems.add("README.md:" + (start + 2 + k) + ": differs from " + path + ":\n    README: " + got
                            + "\n    file:   " + want);
                    break;
                }
            }
        }
        Path sources = root.resolve("downstream/src/main/java");
        if (Files.isDirectory(sources)) {
            try (Stream<Path> s = Files.walk(sources)) {
                s.filter(p -> p.toString().endsWith(".java")).map(p -> root.relativize(p).toString().replace('\\', '/'))
                        .filter(p -> !named.contains(p)).sorted()
                        .forEach(p -> problems.add(p + " is not shown in README.md: downstream/ holds exactly the "
                                + "README's code (add it with '<!-- code: " + p + " -->' or remove it)"));
            }
        }
        if (!problems.isEmpty()) {
            problems.forEach(p -> System.err.println("check-snippets: " + p));
            System.exit(1);
        }
        System.out.println("check-snippets: " + blocks + " README code blocks are the files they name; downstream/ "
                + "holds nothing else");
    }

    /** The "README: begin" .. "README: end" lines of a file, less their common indentation; or the whole file. */
    static List<String> region(List<String> file) {
        int begin = -1;
        int end = -1;
        for (int i = 0; i < file.size(); i++) {
            if (file.get(i).contains("README: begin")) {
                begin = i;
            } else if (file.get(i).contains("README: end")) {
                end = i;
            }
        }
        List<String> r = new ArrayList<>(begin >= 0 && end > begin ? file.subList(begin + 1, end) : file);
        while (!r.isEmpty() && r.get(r.size() - 1).isBlank()) {
            r.remove(r.size() - 1);
        }
        int indent = r.stream().filter(s -> !s.isBlank()).mapToInt(s -> s.length() - s.stripLeading().length()).min()
                .orElse(0);
        r.replaceAll(s -> s.isBlank() ? "" : s.substring(indent));
        return r;
    }
}
