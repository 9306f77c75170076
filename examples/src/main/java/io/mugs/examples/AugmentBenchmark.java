package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageFolderSource;
import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropConfig;
import io.mugs.data.MultiCropLoader;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;

/**
 * Prints augmented images/s (all views of one image = one image) of the multi-crop loader, for the Fashion-MNIST
 * preset (2+2 globals of 28 px, 4 locals of 12 px) and for 224/96 px crops with 10 locals from JPEG files, with 1
 * and 2 worker threads.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.AugmentBenchmark
 * </pre>
 */
public final class AugmentBenchmark {

    private static final String USAGE = """
            AugmentBenchmark: multi-crop loader throughput.
              --images DIR   JPEG/PNG folder for the 224/96 px case (default: 64 synthetic 500x375 JPEGs)
              --batch B      batch size (default 64)
              --batches N    batches per case, the first one untimed (default 10 for Fashion-MNIST, 4 for JPEG)
            """;

    private AugmentBenchmark() {
    }

    public static void main(String[] argv) throws IOException {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("images", "batch", "batches"), USAGE);
        int batch = a.getInt("batch", 64);
        ImageSource fm = IdxImageSource.bundledFashionMnist(true);
        for (int workers : new int[] {1, 2}) {
            run("Fashion-MNIST 2+2x28px + 4x14px", fm, MultiCropConfig.fashionMnist(), batch, workers,
                    a.getInt("batches", 10));
        }
        Path dir = a.get("images", null) == null ? syntheticJpegs() : Path.of(a.get("images", ""));
        ImageSource jpegs = ImageFolderSource.scan(dir);
        long s = System.nanoTime();
        for (int i = 0; i < jpegs.size(); i++) {
            jpegs.load(i);
        }
        System.out.printf("JPEG decode (ImageIO): %.2f ms/image%n", (System.nanoTime() - s) / 1e6 / jpegs.size());
        for (int workers : new int[] {1, 2}) {
            run("JPEG 2+2x224px + 10x96px", jpegs, MultiCropConfig.imageNet(), Math.min(batch, jpegs.size() / 4),
                    workers, a.getInt("batches", 4));
        }
    }

    private static void run(String name, ImageSource src, MultiCropConfig cfg, int batch, int workers, int batches) {
        try (MultiCropLoader loader = new MultiCropLoader(src, new MultiCropAugmentation(cfg), batch, workers,
                2 * workers, 1)) {
            int steps = Math.min(batches, loader.stepsPerEpoch());
            var it = loader.epoch(0).iterator();
            it.next();   // warm-up
            long s = System.nanoTime();
            int images = 0;
            for (int i = 1; i < steps && it.hasNext(); i++) {
                MultiCropBatch b = it.next();
                images += b.batchSize();
            }
            double sec = (System.nanoTime() - s) / 1e9;
            System.out.printf("%-34s %d worker(s): %8.1f images/s%n", name, workers, images / sec);
        }
    }

    private static Path syntheticJpegs() throws IOException {
        Path dir = Files.createTempDirectory("mugs-jpegs");
        SplittableRandom rng = new SplittableRandom(3);
        for (int i = 0; i < 64; i++) {
            BufferedImage img = new BufferedImage(500, 375, BufferedImage.TYPE_INT_RGB);
            int r0 = rng.nextInt(256);
            int g0 = rng.nextInt(256);
            for (int y = 0; y < 375; y++) {
                for (int x = 0; x < 500; x++) {
                    int r = (r0 + x / 2) & 0xff;
                    int g = (g0 + y / 2) & 0xff;
                    int b = (x * y / 97 + rng.nextInt(16)) & 0xff;
                    img.setRGB(x, y, (r << 16) | (g << 8) | b);
                }
            }
            Path cls = dir.resolve("class" + (i % 4));
            Files.createDirectories(cls);
            ImageIO.write(img, "jpg", cls.resolve(i + ".jpg").toFile());
        }
        dir.toFile().deleteOnExit();
        return dir;
    }
}
