package io.mugs.examples;

import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs {@code scripts/vit_torch_twin.py} (PyTorch, the same ViT shapes) after VitBenchmark's own timing and prints
 * the ratios. Uses {@code /usr/bin/python3} (Debian's python3-torch) with OpenBLAS's OpenMP build first on the
 * library path when it is installed ({@code apt-get install python3-torch libopenblas0-openmp}).
 */
final class TorchTwin {

    private static final Path SCRIPT = Path.of("scripts", "vit_torch_twin.py");
    private static final Path OPENBLAS = Path.of("/usr/lib/x86_64-linux-gnu/openblas-openmp");
    private static final Pattern NUMBER = Pattern.compile("\"(forward_ms|train_ms)\": ([0-9.eE+-]+)");

    private TorchTwin() {
    }

    static void compare(VitConfig cfg, int batch, int iters, double forwardSeconds, double trainSeconds) {
        if (!Files.exists(SCRIPT)) {
            System.out.println("PyTorch twin: " + SCRIPT + " not found; run from the repository root");
            return;
        }
        for (int threads : new int[] {1, 2}) {
            List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", SCRIPT.toString(),
                    "--dim", "" + cfg.embedDim(), "--depth", "" + cfg.depth(), "--heads", "" + cfg.numHeads(),
                    "--patch", "" + cfg.patchSize(), "--image", "" + cfg.imageSize(),
                    "--channels", "" + cfg.inChannels(), "--batch", "" + batch, "--iters", "" + iters,
                    "--threads", "" + threads, "--eps", "" + (cfg.layerNormEps() == 0 ? 1e-12 : cfg.layerNormEps())));
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            if (Files.isDirectory(OPENBLAS)) {
                pb.environment().put("LD_LIBRARY_PATH", OPENBLAS.toString());
            }
            pb.environment().put("OMP_NUM_THREADS", "" + threads);
            try {
                Process p = pb.start();
                String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor();
                Matcher m = NUMBER.matcher(output);
                double fwd = Double.NaN;
                double train = Double.NaN;
                while (m.find()) {
                    double ms = Double.parseDouble(m.group(2));
                    if (m.group(1).equals("forward_ms")) {
                        fwd = ms;
                    } else {
                        train = ms;
                    }
                }
                if (Double.isNaN(train)) {
                    System.out.println("PyTorch twin failed: " + output.strip());
                    return;
                }
                System.out.printf("PyTorch %d thread(s): forward %8.1f ms, forward+backward %8.1f ms; this engine is "
                                + "%.2fx (forward) and %.2fx (forward+backward) PyTorch's speed%n", threads, fwd, train,
                        fwd / (forwardSeconds * 1e3), train / (trainSeconds * 1e3));
            } catch (IOException e) {
                System.out.println("PyTorch twin: cannot run /usr/bin/python3 (" + e.getMessage() + ")");
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
