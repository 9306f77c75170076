package io.mugs.vit;

import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An independent plain-Java, double-precision ViT forward written straight from the PyTorch reference
 * (timm/DINO {@code VisionTransformer}), used to check the SameDiff graph. Loops, no ND4J ops.
 */
public final class ReferenceVit {

    private final VitConfig cfg;
    private final Map<String, INDArray> w;

    public ReferenceVit(VitConfig cfg, Map<String, INDArray> weights) {
        this.cfg = cfg;
        this.w = weights;
    }

    /** Result for one image: tokens after the last block (pre-LN), final-LN tokens and last attention. */
    public record Result(double[][] preNorm, double[][] normed, double[][][] attention) {
    }

    private double[] vec(String name) {
        return w.get(name).dup().castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).data().asDouble();
    }

    /** image: [C][H][W]. */
    public Result forward(double[][][] image) {
        if (cfg.stemChannels() > 0) {
            image = stem(image);
        }
        int c = cfg.patchInChannels();
        int p = cfg.patchSize();
        int h = image[0].length / p;
        int wd = image[0][0].length / p;
        int d = cfg.embedDim();
        int t = h * wd + 1;
        double[] pw = vec("patch_embed.proj.weight"); // [D, C, p, p]
        double[] pb = vec("patch_embed.proj.bias");
        double[][] x = new double[t][d];
        double[] cls = vec("cls_token");
        double[] pos = vec("pos_embed");
        int g = cfg.gridSize();
        double[][] posGrid = new double[g * g][d];
        for (int i = 0; i < g * g; i++) {
            for (int k = 0; k < d; k++) {
                posGrid[i][k] = pos[(i + 1) * d + k];
            }
        }
        double[][] posResized = (h == g && wd == g) ? posGrid : bicubicGrid(posGrid, g, h, wd, d);
        for (int k = 0; k < d; k++) {
            x[0][k] = cls[k] + pos[k];
        }
        for (int gy = 0; gy < h; gy++) {
            for (int gx = 0; gx < wd; gx++) {
                int n = gy * wd + gx;
                for (int o = 0; o < d; o++) {
                    double s = pb[o];
                    for (int ch = 0; ch < c; ch++) {
                        for (int ky = 0; ky < p; ky++) {
                            for (int kx = 0; kx < p; kx++) {
                                s += pw[((o * c + ch) * p + ky) * p + kx] * image[ch][gy * p + ky][gx * p + kx];
                            }
                        }
                    }
                    x[n + 1][o] = s + posResized[n][o];
                }
            }
        }
        double[][][] attention = null;
        for (int b = 0; b < cfg.depth(); b++) {
            attention = new double[cfg.numHeads()][t][t];
            x = block(w, "blocks." + b + ".", x, cfg.numHeads(), cfg.layerNormEps(), cfg.qkvBias(), attention);
        }
        return new Result(x, layerNorm(x, vec("norm.weight"), vec("norm.bias")), attention);
    }

    /** The convolutional stem: 3 x 3, stride 1, zero padding 1, weights [S][C][3][3], then exact GELU. */
    private double[][][] stem(double[][][] image) {
        int s = cfg.stemChannels();
        int c = cfg.inChannels();
        int h = image[0].length;
        int wd = image[0][0].length;
        double[] k = vec("stem.weight");
        double[] b = vec("stem.bias");
        double[][][] out = new double[s][h][wd];
        for (int o = 0; o < s; o++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < wd; x++) {
                    double v = b[o];
                    for (int ch = 0; ch < c; ch++) {
                        for (int ky = 0; ky < 3; ky++) {
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = y + ky - 1;
                                int xx = x + kx - 1;
                                if (yy >= 0 && yy < h && xx >= 0 && xx < wd) {
                                    v += k[((o * c + ch) * 3 + ky) * 3 + kx] * image[ch][yy][xx];
                                }
                            }
                        }
                    }
                    out[o][y][x] = v;
                }
            }
            out[o] = gelu(out[o]);
        }
        return out;
    }

    /**
     * One pre-norm block with weights under {@code pre} (official names); fills {@code attention [H][T][T]}.
     */
    public static double[][] block(Map<String, INDArray> w, String pre, double[][] x, int heads, double eps,
                                   boolean qkvBias, double[][][] attention) {
        int t = x.length;
        int d = x[0].length;
        double[][] y = layerNorm(x, vec(w, pre + "norm1.weight"), vec(w, pre + "norm1.bias"), eps);
        double[][] qkv = linear(y, vec(w, pre + "attn.qkv.weight"), qkvBias ? vec(w, pre + "attn.qkv.bias") : null,
                3 * d);
        int dh = d / heads;
        double[][] ctx = new double[t][d];
        for (int hd = 0; hd < heads; hd++) {
            for (int i = 0; i < t; i++) {
                double[] logits = new double[t];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < t; j++) {
                    double s = 0;
                    for (int k = 0; k < dh; k++) {
                        s += qkv[i][hd * dh + k] * qkv[j][d + hd * dh + k];
                    }
                    logits[j] = s / Math.sqrt(dh);
                    max = Math.max(max, logits[j]);
                }
                double z = 0;
                for (int j = 0; j < t; j++) {
                    logits[j] = Math.exp(logits[j] - max);
                    z += logits[j];
                }
                for (int j = 0; j < t; j++) {
                    attention[hd][i][j] = logits[j] / z;
                    for (int k = 0; k < dh; k++) {
                        ctx[i][hd * dh + k] += attention[hd][i][j] * qkv[j][2 * d + hd * dh + k];
                    }
                }
            }
        }
        double[][] proj = linear(ctx, vec(w, pre + "attn.proj.weight"), vec(w, pre + "attn.proj.bias"), d);
        x = add(x, proj);
        double[][] m = layerNorm(x, vec(w, pre + "norm2.weight"), vec(w, pre + "norm2.bias"), eps);
        int hidden = (int) w.get(pre + "mlp.fc1.bias").length();
        m = gelu(linear(m, vec(w, pre + "mlp.fc1.weight"), vec(w, pre + "mlp.fc1.bias"), hidden));
        m = linear(m, vec(w, pre + "mlp.fc2.weight"), vec(w, pre + "mlp.fc2.bias"), d);
        return add(x, m);
    }

    /** Exact GELU elementwise (in place). */
    public static double[][] gelu(double[][] m) {
        for (double[] row : m) {
            for (int k = 0; k < row.length; k++) {
                row[k] = 0.5 * row[k] * (1 + org.apache.commons.math3.special.Erf.erf(row[k] / Math.sqrt(2)));
            }
        }
        return m;
    }

    public static double[] vec(Map<String, INDArray> w, String name) {
        INDArray a = w.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no weight " + name);
        }
        return a.dup().castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).data().asDouble();
    }

    private double[][] layerNorm(double[][] x, double[] g, double[] b) {
        return layerNorm(x, g, b, cfg.layerNormEps());
    }

    public static double[][] layerNorm(double[][] x, double[] g, double[] b, double eps) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double mean = 0;
            for (double v : x[i]) {
                mean += v;
            }
            mean /= x[i].length;
            double var = 0;
            for (double v : x[i]) {
                var += (v - mean) * (v - mean);
            }
            var /= x[i].length;
            out[i] = new double[x[i].length];
            for (int k = 0; k < x[i].length; k++) {
                out[i][k] = (x[i][k] - mean) / Math.sqrt(var + eps) * g[k] + b[k];
            }
        }
        return out;
    }

    /** weight in PyTorch layout [out, in]. */
    public static double[][] linear(double[][] x, double[] weight, double[] bias, int outDim) {
        int in = x[0].length;
        double[][] y = new double[x.length][outDim];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < outDim; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int k = 0; k < in; k++) {
                    s += x[i][k] * weight[o * in + k];
                }
                y[i][o] = s;
            }
        }
        return y;
    }

    public static double[][] add(double[][] a, double[][] b) {
        double[][] y = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < a[0].length; k++) {
                y[i][k] = a[i][k] + b[i][k];
            }
        }
        return y;
    }

    /**
     * PyTorch {@code F.interpolate(bicubic, align_corners=False, scale_factor=((h+0.1)/g, (w+0.1)/g))} of a
     * g x g grid, evaluated point by point with Keys' kernel W(s) (A = -0.75) over clamped taps.
     */
    public static double[][] bicubicGrid(double[][] grid, int g, int outH, int outW, int d) {
        double sy = (outH + 0.1) / g;
        double sx = (outW + 0.1) / g;
        double[][] out = new double[outH * outW][d];
        for (int oy = 0; oy < outH; oy++) {
            double srcY = (oy + 0.5) / sy - 0.5;
            for (int ox = 0; ox < outW; ox++) {
                double srcX = (ox + 0.5) / sx - 0.5;
                for (int ty = (int) Math.floor(srcY) - 1; ty <= (int) Math.floor(srcY) + 2; ty++) {
                    double wy = keys(srcY - ty);
                    int iy = Math.min(Math.max(ty, 0), g - 1);
                    for (int tx = (int) Math.floor(srcX) - 1; tx <= (int) Math.floor(srcX) + 2; tx++) {
                        double wx = keys(srcX - tx);
                        int ix = Math.min(Math.max(tx, 0), g - 1);
                        for (int k = 0; k < d; k++) {
                            out[oy * outW + ox][k] += wy * wx * grid[iy * g + ix][k];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Keys' cubic convolution kernel with A = -0.75. */
    static double keys(double s) {
        double a = -0.75;
        double x = Math.abs(s);
        if (x <= 1) {
            return (a + 2) * x * x * x - (a + 3) * x * x + 1;
        }
        if (x < 2) {
            return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
        }
        return 0;
    }
}
