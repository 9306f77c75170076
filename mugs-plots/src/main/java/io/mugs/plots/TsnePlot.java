package io.mugs.plots;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * A t-SNE scatter plot of features coloured by class, with a legend of class names (XChart).
 *
 * <pre>{@code
 * TsnePlot.write(Path.of("tsne.png"), new BarnesHutTsne(30, 0.5, 1000, 0).embed(features), labels, classNames);
 * }</pre>
 */
public final class TsnePlot {

    private TsnePlot() {
    }

    public static void write(Path file, double[][] xy, int[] labels, List<String> classNames) throws IOException {
        if (xy.length != labels.length) {
            throw new IllegalArgumentException(xy.length + " points but " + labels.length + " labels");
        }
        XYChart chart = new XYChartBuilder().width(900).height(700).title("t-SNE of backbone features").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(5);
        chart.getStyler().setAxisTicksVisible(false);
        int classes = classNames.isEmpty() ? 1 : classNames.size();
        for (int c = 0; c < classes; c++) {
            List<Double> xs = new ArrayList<>();
            List<Double> ys = new ArrayList<>();
            for (int i = 0; i < xy.length; i++) {
                if (classNames.isEmpty() || labels[i] == c) {
                    xs.add(xy[i][0]);
                    ys.add(xy[i][1]);
                }
            }
            if (!xs.isEmpty()) {
                chart.addSeries(classNames.isEmpty() ? "images" : classNames.get(c), xs, ys)
                        .setMarker(SeriesMarkers.CIRCLE);
            }
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
