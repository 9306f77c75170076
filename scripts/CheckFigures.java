import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One source for every figure (run by scripts/check-readme-figures.sh, in CI):
 *
 * 1. Every paragraph, list item or table of README.md that states a figure (a percentage, a duration in minutes or
 *    "N min N s", a size in GB) must cite a page under docs/ (a link or its path), and every such figure must occur
 *    in one of the pages it cites.
 * 2. A run's figures may be tagged where a page (or the README) states them, in an HTML comment right after the
 *    paragraph or table: {@code <!-- run NAME: key = value; key = value -->}. Each value must occur in that paragraph,
 *    and one run's key must have one value on every page.
 *
 * Usage: java scripts/CheckFigures.java REPO_ROOT
 */
public class CheckFigures {

    /** 84.45 %, 3 min 12 s, 56.5 minutes, 0.94 GB: the kinds of figure a results page is the source of. */
    static final Pattern FIGURE = Pattern.compile(
            "(?<![\\w.])(\\d+(?:[.,]\\d+)*)(?: %| min \\d+ s|(?: training)? minutes| GB)");
    static final Pattern CITE = Pattern.compile("(?:\\]\\(|\\b)(?:\\./)?(docs/[\\w./-]+\\.md)");
    static final Pattern TAG = Pattern.compile("<!--\\s*run\\s+([\\w.-]+)\\s*:(.*?)-->", Pattern.DOTALL);

    record Block(Path file, int line, String text) {
    }

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        List<String> problems = new ArrayList<>();
        Map<Path, String> pages = new LinkedHashMap<>();
        try (var s = Files.list(root.resolve("docs"))) {
            s.filter(p -> p.toString().endsWith(".md")).sorted().forEach(p -> {
                try {
                    pages.put(root.relativize(p), Files.readString(p));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
        Path readme = Path.of("README.md");
        String readmeText = Files.readString(root.resolve(readme));

        int checked = 0;
        for (Block b : blocks(readme, readmeText)) {
            List<String> figures = figures(b.text());
            if (figures.isEmpty()) {
                continue;
            }
            Set<String> cited = new LinkedHashSet<>();
            Matcher m = CITE.matcher(b.text());
            while (m.find()) {
                cited.add(m.group(1));
            }
            if (cited.isEmpty()) {
                problems.add(readme + ":" + b.line() + ": states " + figures + " but cites no page under docs/ "
                        + "(link the results page the figures come from)");
                continue;
            }
            for (String c : cited) {
                if (!pages.containsKey(Path.of(c))) {
                    problems.add(readme + ":" + b.line() + ": cites " + c + ", which does not exist");
                }
            }
            for (String f : figures) {
                checked++;
                boolean found = cited.stream().map(c -> pages.getOrDefault(Path.of(c), ""))
                        .anyMatch(page -> containsFigure(page, f));
                if (!found) {
                    problems.add(readme + ":" + b.line() + ": '" + f + "' is not in " + String.join(" or ", cited)
                            + " (quote the page, or put the figure there with the command that measured it)");
                }
            }
        }

        // run tags: one value per run and key over README and every page
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, String> where = new LinkedHashMap<>();
        Map<Path, String> all = new LinkedHashMap<>();
        all.put(readme, readmeText);
        all.putAll(pages);
        int tags = 0;
        for (Map.Entry<Path, String> e : all.entrySet()) {
            for (Block b : blocks(e.getKey(), e.getValue())) {
                Matcher t = TAG.matcher(b.text());
                while (t.find()) {
                    String before = b.text().substring(0, t.start());
                    for (String kv : t.group(2).split(";")) {
                        if (kv.isBlank()) {
                            continue;
                        }
                        int eq = kv.indexOf('=');
                        if (eq < 0) {
                            problems.add(e.getKey() + ":" + b.line() + ": run tag item '" + kv.trim()
                                    + "' is not key = value");
                            continue;
                        }
                        tags++;
                        String key = t.group(1) + "." + kv.substring(0, eq).trim();
                        String value = kv.substring(eq + 1).trim();
                        if (!normalise(before).contains(normalise(value))) {
                            problems.add(e.getKey() + ":" + b.line() + ": the tag says " + key + " = " + value
                                    + " but the paragraph above it does not");
                        }
                        String here = e.getKey() + ":" + b.line();
                        String old = values.putIfAbsent(key, value);
                        if (old != null && !old.equals(value)) {
                            problems.add(here + ": " + key + " = " + value + ", but " + where.get(key) + " gives "
                                    + old);
                        }
                        where.putIfAbsent(key, here);
                    }
                }
            }
        }
        if (!problems.isEmpty()) {
            problems.forEach(p -> System.err.println("check-readme-figures: " + p));
            System.err.println("check-readme-figures: " + problems.size() + " problem(s)");
            System.exit(1);
        }
        System.out.println("check-readme-figures: " + checked + " README figures found in the pages they cite; "
                + tags + " run figures tagged, " + values.size() + " distinct, none contradicted");
    }

    /** Paragraphs, list items and tables (blank-line separated; a run tag stays with the block above it). */
    static List<Block> blocks(Path file, String text) {
        List<Block> out = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        StringBuilder cur = new StringBuilder();
        int start = 0;
        boolean code = false;
        for (int i = 0; i <= lines.length; i++) {
            String l = i < lines.length ? lines[i] : "";
            if (l.startsWith("```")) {
                code = !code;
                continue;
            }
            if (code) {
                continue;
            }
            boolean tag = l.trim().startsWith("<!--") && cur.length() == 0 && !out.isEmpty();
            if (tag) {      // a tag after a blank line belongs to the block above
                Block last = out.remove(out.size() - 1);
                cur.append(last.text()).append('\n');
                start = last.line();
            }
            boolean newItem = l.startsWith("- ") && cur.length() > 0 && !cur.toString().startsWith("|");
            if (l.isBlank() || newItem) {
                if (cur.length() > 0) {
                    out.add(new Block(file, start + 1, cur.toString()));
                    cur.setLength(0);
                }
                if (l.isBlank()) {
                    continue;
                }
            }
            if (cur.length() == 0) {
                start = i;
            }
            cur.append(l).append('\n');
        }
        return out;
    }

    static List<String> figures(String text) {
        String visible = TAG.matcher(text).replaceAll("").replaceAll("`[^`]*`", "");
        List<String> out = new ArrayList<>();
        Matcher m = FIGURE.matcher(visible.replace('\n', ' ').replaceAll(" +", " "));
        while (m.find()) {
            out.add(m.group());
        }
        return out;
    }

    /** The figure's number with the same unit (minutes: any of "N minutes", "N training minutes", "(N)" in a table). */
    static boolean containsFigure(String page, String figure) {
        String p = normalise(page);
        String f = normalise(figure);
        if (Pattern.compile("(?<![\\d.,])" + Pattern.quote(f)).matcher(p).find()) {
            return true;
        }
        Matcher m = Pattern.compile("^([\\d.,]+)(?: training)? minutes$").matcher(f);
        if (m.matches()) {
            String n = Pattern.quote(m.group(1));
            return Pattern.compile("(?<![\\d.])" + n + "(?: training)? minutes|\\| " + n + " \\||\\(" + n + "[),]")
                    .matcher(p).find();
        }
        return false;
    }

    static String normalise(String s) {
        return s.replace("**", "").replace('\n', ' ').replaceAll("\\s+", " ");
    }
}
