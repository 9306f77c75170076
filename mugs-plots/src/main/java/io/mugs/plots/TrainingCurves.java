package io.mugs.plots;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;

/**
 * Training curves from a run's {@code metrics.jsonl} (written by the trainer's metrics listener), drawn with
 * XChart: losses, learning rate and k-NN accuracy (or a fine-tuning run's test top-1) against the iteration, one PNG
 * each, and the training health ({@code health_...} fields, docs/training-health.md) in health.png.
 *
 * <pre>{@code
 * List<Path> pngs = TrainingCurves.write(Path.of("runs/fm/metrics.jsonl"), Path.of("runs/fm/curves"));
 * }</pre>
 */
public final class TrainingCurves {

    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainingCurves() {
    }

    /** Series name -> (iteration, value) points, for every numeric field of the log. */
    public static Map<String, List<double[]>> read(Path metrics) throws IOException {
        Map<String, List<double[]>> series = new LinkedHashMap<>();
        for (Line line : lines(metrics)) {
            JsonNode n = line.json();
            double it = n.path("iteration").asDouble();
            n.fields().forEachRemaining(f -> {
                if (f.getValue().isNumber() && !f.getKey().equals("iteration")) {
                    series.computeIfAbsent(f.getKey(), k -> new ArrayList<>())
                            .add(new double[] {it, f.getValue().asDouble()});
                }
            });
        }
        if (series.isEmpty()) {
            throw new IOException(metrics + " holds no metrics");
        }
        return series;
    }

    private record Line(int number, JsonNode json) {
    }

    /** The JSON records of a metrics log, one per non-blank line; errors name the file and the line. */
    private static List<Line> lines(Path metrics) throws IOException {
        if (!Files.isRegularFile(metrics)) {
            throw new IOException("no metrics log at " + metrics + ": pass the metrics.jsonl of a training run");
        }
        List<Line> records = new ArrayList<>();
        int lineNo = 0;
        for (String line : Files.readAllLines(metrics)) {
            lineNo++;
            if (line.isBlank()) {
                continue;
            }
            try {
                records.add(new Line(lineNo, JSON.readTree(line)));
            } catch (IOException e) {
                throw new IOException(metrics + " line " + lineNo + " is not JSON: " + e.getMessage(), e);
            }
        }
        return records;
    }

    /** Writes losses.png, lr.png and (when logged) knn.png into {@code outDir}; returns the files written. */
    public static List<Path> write(Path metrics, Path outDir) throws IOException {
        Map<String, List<double[]>> s = read(metrics);
        Files.createDirectories(outDir);
        List<Path> written = new ArrayList<>();
        List<String> losses = s.keySet().stream().filter(k -> k.startsWith("loss")).toList();
        if (!losses.isEmpty()) {
            written.add(chart(outDir.resolve("losses.png"), "Losses", "loss", s, losses));
        }
        if (s.containsKey("lr")) {
            written.add(chart(outDir.resolve("lr.png"), "Learning rate", "lr", s, List.of("lr")));
        }
        if (s.containsKey("knn_top1")) {
            written.add(chart(outDir.resolve("knn.png"), "k-NN top-1", "accuracy", s, List.of("knn_top1")));
        }
        if (s.containsKey("test_top1")) {     // a fine-tuning run
            written.add(chart(outDir.resolve("top1.png"), "Test top-1", "accuracy", s, List.of("test_top1")));
        }
        if (s.keySet().stream().anyMatch(k -> k.startsWith(HEALTH))) {
            written.add(health(outDir.resolve("health.png"), s));
        }
        return written;
    }

    private static final String HEALTH = "health_";

    /** The panels of health.png: title and the {@code health_} series drawn in it. */
    private static final List<Map.Entry<String, List<String>>> HEALTH_PANELS = List.of(
            Map.entry("Std per dimension of the L2-normalised embeddings", List.of("teacher_std", "student_std")),
            Map.entry("Effective rank of the embeddings", List.of("teacher_rank", "student_rank")),
            Map.entry("Prototype entropy (nats)", List.of("teacher_entropy_of_mean", "teacher_mean_entropy",
                    "student_entropy_of_mean", "student_mean_entropy")),
            Map.entry("Instance similarity and prototype agreement", List.of("positive", "hardest_negative",
                    "agreement")));

    /**
     * The training health (docs/training-health.md) in one picture of up to four panels: the spread and the
     * effective rank of the embeddings, the prototype entropies, and the instance similarities with the prototype
     * agreement; a panel whose series the log lacks is left out.
     */
    static Path health(Path file, Map<String, List<double[]>> s) throws IOException {
        List<java.awt.image.BufferedImage> panels = new ArrayList<>();
        for (Map.Entry<String, List<String>> panel : HEALTH_PANELS) {
            List<String> names = panel.getValue().stream().filter(n -> s.containsKey(HEALTH + n)).toList();
            if (names.isEmpty()) {
                continue;
            }
            XYChart chart = new XYChartBuilder().width(640).height(400).title(panel.getKey()).xAxisTitle("iteration")
                    .build();
            chart.getStyler().setMarkerSize(0);
            chart.getStyler().setXAxisDecimalPattern("0");
            chart.getStyler().setYAxisDecimalPattern("0.###");
            for (String name : names) {
                List<double[]> pts = s.get(HEALTH + name);
                chart.addSeries(name.replace('_', ' '), pts.stream().mapToDouble(p -> p[0]).toArray(),
                        pts.stream().mapToDouble(p -> p[1]).toArray())
                        .setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            }
            panels.add(BitmapEncoder.getBufferedImage(chart));
        }
        int columns = Math.min(2, panels.size());
        int rows = (panels.size() + 1) / 2;
        java.awt.image.BufferedImage all = new java.awt.image.BufferedImage(640 * columns, 400 * rows,
                java.awt.image.BufferedImage.TYPE_INT_RGB);
        java.awt.Graphics2D g = all.createGraphics();
        try {
            g.setColor(java.awt.Color.WHITE);
            g.fillRect(0, 0, all.getWidth(), all.getHeight());
            for (int i = 0; i < panels.size(); i++) {
                g.drawImage(panels.get(i), 640 * (i % 2), 400 * (i / 2), null);
            }
        } finally {
            g.dispose();
        }
        javax.imageio.ImageIO.write(all, "png", file.toFile());
        return file;
    }

    /** What the x axis of {@link #compare} shows. */
    public enum Axis {
        /** {@code train_s / 60}: training wall-clock minutes. */
        MINUTES("training minutes"),
        /** Epochs completed ({@code epoch + 1}; 0 is the initialisation). */
        EPOCHS("epochs"),
        /** The iteration. */
        ITERATIONS("iteration");

        private final String title;

        Axis(String title) {
            this.title = title;
        }

        double of(JsonNode n) {
            return switch (this) {
                case MINUTES -> n.path("train_s").asDouble() / 60;
                case EPOCHS -> n.path("epoch").asDouble() + 1;
                case ITERATIONS -> n.path("iteration").asDouble();
            };
        }
    }

    /**
     * One chart comparing runs: {@code series} (e.g. {@code knn_top1}) of each run's metrics log against {@code x}.
     * {@code runs} maps a legend label to a {@code metrics.jsonl}.
     */
    public static Path compare(Map<String, Path> runs, String series, Axis x, Path png) throws IOException {
        XYChart chart = new XYChartBuilder().width(900).height(550).title(series + " against " + x.title)
                .xAxisTitle(x.title).yAxisTitle(series).build();
        chart.getStyler().setMarkerSize(6);
        for (Map.Entry<String, Path> run : runs.entrySet()) {
            List<double[]> pts = new ArrayList<>();
            for (Line line : lines(run.getValue())) {
                JsonNode n = line.json();
                if (n.path(series).isNumber()) {
                    if (x == Axis.MINUTES && !n.has("train_s")) {
                        throw new IOException(run.getValue() + " line " + line.number() + " has no train_s: plot it"
                                + " against epochs or iterations");
                    }
                    pts.add(new double[] {x.of(n), n.get(series).asDouble()});
                }
            }
            if (pts.isEmpty()) {
                throw new IOException(run.getValue() + " has no '" + series + "' values");
            }
            chart.addSeries(run.getKey(), pts.stream().mapToDouble(p -> p[0]).toArray(),
                    pts.stream().mapToDouble(p -> p[1]).toArray()).setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        }
        Path parent = png.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
        return png;
    }

    private static Path chart(Path file, String title, String yTitle, Map<String, List<double[]>> s,
                              List<String> names) throws IOException {
        // XChart's tick labels for values far below 1 (a learning rate of 1e-4) come out as dozens of overlapping
        // 15-digit decimals: such a series is drawn in units of a power of ten, named in the axis title.
        double scale = unit(names.stream().flatMap(n -> s.get(n).stream()).mapToDouble(p -> Math.abs(p[1]))
                .max().orElse(0));
        String axis = scale == 1 ? yTitle : yTitle + " (\u00d7 " + formatUnit(scale) + ")";
        XYChart chart = new XYChartBuilder().width(800).height(500).title(title).xAxisTitle("iteration")
                .yAxisTitle(axis).build();
        chart.getStyler().setMarkerSize(names.contains("knn_top1") || names.contains("test_top1") ? 6 : 0);
        chart.getStyler().setXAxisDecimalPattern("0");             // "3750", not "3,750": long axes stay legible
        chart.getStyler().setXAxisTickMarkSpacingHint(90);
        chart.getStyler().setYAxisDecimalPattern("0.###");
        chart.getStyler().setYAxisTickMarkSpacingHint(60);
        for (String name : names) {
            List<double[]> pts = s.get(name);
            double[] x = pts.stream().mapToDouble(p -> p[0]).toArray();
            double[] y = pts.stream().mapToDouble(p -> p[1] / scale).toArray();
            chart.addSeries(name, x, y).setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    /**
     * The unit a series whose largest magnitude is {@code max} is drawn in: 1 from 0.01 up (and for 0), else the
     * power of ten at or below {@code max}, so the axis reads 1 to 10 (a peak lr of 1e-3 is drawn as 1, "lr (x 1e-3)").
     */
    static double unit(double max) {
        if (!(max > 0) || max >= 0.01 || !Double.isFinite(max)) {
            return 1;
        }
        return Math.pow(10, Math.floor(Math.log10(max) + 1e-9));
    }

    static String formatUnit(double unit) {
        return "1e" + Math.round(Math.log10(unit));
    }
}
