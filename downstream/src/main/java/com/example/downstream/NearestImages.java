package com.example.downstream;

import io.mugs.eval.MugsEncoder;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/** The 5 images of a folder nearest to a query image: java ... NearestImages MODEL FOLDER QUERY. */
public final class NearestImages {

    public static void main(String[] args) throws Exception {
        try (MugsEncoder encoder = MugsEncoder.load(Path.of(args[0]));         // e.g. runs/fm/teacher.safetensors
             Stream<Path> listing = Files.list(Path.of(args[1]))) {
            List<Path> files = listing.sorted().toList();
            float[][] index = encoder.embedFiles(files);                       // one embedding per image
            float[] query = encoder.embed(ImageIO.read(new File(args[2])));
            IntStream.range(0, files.size()).boxed()
                    .sorted(Comparator.comparingDouble(i -> -cosine(query, index[i]))).limit(5)
                    .forEach(i -> System.out.printf("%.3f %s%n", cosine(query, index[i]), files.get(i)));
        }
    }

    static double cosine(float[] a, float[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
