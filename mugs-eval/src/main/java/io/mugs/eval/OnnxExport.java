package io.mugs.eval;

import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import onnx.Onnx.AttributeProto;
import onnx.Onnx.GraphProto;
import onnx.Onnx.ModelProto;
import onnx.Onnx.NodeProto;
import onnx.Onnx.OperatorSetIdProto;
import onnx.Onnx.StringStringEntryProto;
import onnx.Onnx.TensorProto;
import onnx.Onnx.TensorShapeProto;
import onnx.Onnx.TypeProto;
import onnx.Onnx.ValueInfoProto;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.protobuf.ByteString;

/**
 * Writes a ViT backbone as an ONNX model (opset 17, IR version 8), built from the backbone's {@link VitConfig} and
 * weights with the generated {@code onnx.proto} classes that ND4J's API jar carries. The graph is the inference
 * forward of {@link VisionTransformer} (no drop-path): the optional convolutional stem ({@code Conv} 3 x 3 and GELU),
 * patch embedding as a stride-p {@code Conv}, CLS token and
 * positional embedding, pre-norm blocks with {@code LayerNormalization} (the backbone's epsilon), multi-head attention
 * ({@code MatMul}, {@code Softmax}), an MLP with the exact GELU {@code x/2 (1 + erf(x / sqrt 2))} through {@code Erf},
 * and the final LayerNorm. Weights keep their official names (e.g. {@code blocks.0.attn.qkv.weight}).
 *
 * <p>Input {@code images}: {@code [batch, C, S, S]} float32, already normalised as {@link InputNormalisation} says
 * (S = the configuration's image size; the batch is dynamic). Outputs: {@code cls} {@code [batch, D]} (the final-LN
 * CLS token) and {@code patch_tokens} {@code [batch, N, D]} (the final-LN patch tokens, N = (S/p)^2). The model's
 * metadata holds the configuration ({@code mugs.vit_config}) and the normalisation ({@code mugs.input}). The whole
 * model must stay under protobuf's 2 GB (ViT-L/16 is 1.2 GB).
 *
 * <pre>{@code
 * VisionTransformer teacher = FrozenBackbone.load(Path.of("runs/fm/teacher.safetensors"));
 * OnnxExport.write(Path.of("teacher.onnx"), teacher, FrozenBackbone.normalisation(path).orElse(null));
 * }</pre>
 */
public final class OnnxExport {

    /** The opset the model declares (the first with LayerNormalization in the default domain). */
    public static final int OPSET = 17;
    /** The IR version that goes with {@link #OPSET}. */
    public static final int IR_VERSION = 8;

    private final List<NodeProto> nodes = new ArrayList<>();
    private final List<TensorProto> initializers = new ArrayList<>();
    private int counter;

    private OnnxExport() {
    }

    /**
     * Writes {@code backbone} to {@code file} (atomically, through a temporary file beside it).
     *
     * @param input stored as metadata; may be {@code null} when unknown
     */
    public static void write(Path file, VisionTransformer backbone, InputNormalisation input) throws IOException {
        ModelProto model = model(backbone, input);
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = Files.createTempFile(parent, file.getFileName().toString(), ".tmp");
        try {
            try (OutputStream out = Files.newOutputStream(tmp)) {
                model.writeTo(out);
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The ONNX model of {@code backbone}'s inference forward. */
    public static ModelProto model(VisionTransformer backbone, InputNormalisation input) {
        return new OnnxExport().build(backbone, input);
    }

    private ModelProto build(VisionTransformer vit, InputNormalisation input) {
        VitConfig cfg = vit.config();
        Map<String, INDArray> w = vit.weights();
        w.forEach(this::initializer);
        int d = cfg.embedDim();
        int p = cfg.patchSize();
        int s = cfg.imageSize();
        int n = cfg.numPatches();
        int t = n + 1;
        int heads = cfg.numHeads();
        int dh = d / heads;

        String pixels = "images";
        if (cfg.stemChannels() > 0) {       // the optional stem: 3 x 3 convolution, padding 1, exact GELU
            pixels = gelu(node("Conv", List.of(pixels, "stem.weight", "stem.bias"), ints("kernel_shape", 3, 3),
                    ints("strides", 1, 1), ints("pads", 1, 1, 1, 1)));
        }
        // patch embedding: [B, C, S, S] -> [B, D, g, g] -> [B, N, D]
        String x = node("Conv", List.of(pixels, "patch_embed.proj.weight", "patch_embed.proj.bias"),
                ints("kernel_shape", p, p), ints("strides", p, p));
        x = node("Reshape", List.of(x, constInts(0, d, n)));
        x = node("Transpose", List.of(x), ints("perm", 0, 2, 1));
        // the CLS token repeated over the batch: Expand to [B, 1, D]
        String batch = node("Gather", List.of(node("Shape", List.of("images")), constInts(0)), intAttr("axis", 0));
        String clsShape = node("Concat", List.of(batch, constInts(1, d)), intAttr("axis", 0));
        String cls = node("Expand", List.of("cls_token", clsShape));
        x = node("Concat", List.of(cls, x), intAttr("axis", 1));                             // [B, T, D]
        x = node("Add", List.of(x, "pos_embed"));
        x = node("Reshape", List.of(x, constInts(-1, d)));                                   // [B*T, D]

        for (int i = 0; i < cfg.depth(); i++) {
            String b = "blocks." + i + ".";
            String h = layerNorm(x, b + "norm1", cfg.layerNormEps());
            String qkv = linear(h, b + "attn.qkv", cfg.qkvBias());                          // [B*T, 3D]
            qkv = node("Reshape", List.of(qkv, constInts(-1, t, 3, heads, dh)));
            qkv = node("Transpose", List.of(qkv), ints("perm", 2, 0, 3, 1, 4));               // [3, B, H, T, dh]
            String q = node("Gather", List.of(qkv, constScalar(0)), intAttr("axis", 0));
            String k = node("Gather", List.of(qkv, constScalar(1)), intAttr("axis", 0));
            String v = node("Gather", List.of(qkv, constScalar(2)), intAttr("axis", 0));
            q = node("Mul", List.of(q, constFloat((float) (1.0 / Math.sqrt(dh)))));
            String scores = node("MatMul", List.of(q, node("Transpose", List.of(k), ints("perm", 0, 1, 3, 2))));
            String attn = node("Softmax", List.of(scores), intAttr("axis", -1));             // [B, H, T, T]
            String ctx = node("Transpose", List.of(node("MatMul", List.of(attn, v))), ints("perm", 0, 2, 1, 3));
            ctx = node("Reshape", List.of(ctx, constInts(-1, d)));
            x = node("Add", List.of(x, linear(ctx, b + "attn.proj", true)));
            String m = layerNorm(x, b + "norm2", cfg.layerNormEps());
            m = linear(gelu(linear(m, b + "mlp.fc1", true)), b + "mlp.fc2", true);
            x = node("Add", List.of(x, m));
        }
        x = layerNorm(x, "norm", cfg.layerNormEps());
        x = node("Reshape", List.of(x, constInts(-1, t, d)));                                // [B, T, D]
        nodes.add(NodeProto.newBuilder().setOpType("Gather").setName("cls").addInput(x).addInput(constScalar(0))
                .addOutput("cls").addAttribute(intAttr("axis", 1)).build());
        nodes.add(NodeProto.newBuilder().setOpType("Slice").setName("patch_tokens").addInput(x)
                .addInput(constInts(1)).addInput(constInts(t)).addInput(constInts(1)).addOutput("patch_tokens")
                .build());

        GraphProto.Builder graph = GraphProto.newBuilder().setName("mugs_vit").addAllNode(nodes)
                .addAllInitializer(initializers)
                .addInput(valueInfo("images", cfg.inChannels(), s, s))
                .addOutput(valueInfo("cls", d))
                .addOutput(valueInfo("patch_tokens", n, d));
        ModelProto.Builder model = ModelProto.newBuilder().setIrVersion(IR_VERSION).setProducerName("mugs-java")
                .setProducerVersion(version()).setGraph(graph)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setDocString("Mugs ViT backbone: images [batch, " + cfg.inChannels() + ", " + s + ", " + s
                        + "] normalised -> cls [batch, " + d + "], patch_tokens [batch, " + n + ", " + d + "]")
                .addMetadataProps(StringStringEntryProto.newBuilder().setKey("mugs.vit_config")
                        .setValue(cfg.toString()));
        if (input != null) {
            model.addMetadataProps(StringStringEntryProto.newBuilder().setKey(InputNormalisation.METADATA_KEY)
                    .setValue(input.toJson()));
        }
        return model.build();
    }

    private static String version() {
        String v = OnnxExport.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    /** {@code LayerNormalization} over the last axis with {@code prefix.weight} and {@code prefix.bias}. */
    private String layerNorm(String x, String prefix, double eps) {
        return node("LayerNormalization", List.of(x, prefix + ".weight", prefix + ".bias"), intAttr("axis", -1),
                AttributeProto.newBuilder().setName("epsilon").setType(AttributeProto.AttributeType.FLOAT)
                        .setF((float) eps).build());
    }

    /** {@code x W^T + b} on [M, in] with the PyTorch-layout weight [out, in]: Gemm with transB. */
    private String linear(String x, String prefix, boolean bias) {
        List<String> in = new ArrayList<>(List.of(x, prefix + ".weight"));
        if (bias) {
            in.add(prefix + ".bias");
        }
        return node("Gemm", in, intAttr("transB", 1));
    }

    /** Exact GELU: x * (1 + erf(x / sqrt 2)) / 2. */
    private String gelu(String x) {
        String erf = node("Erf", List.of(node("Mul", List.of(x, constFloat((float) (1.0 / Math.sqrt(2.0)))))));
        String onePlus = node("Add", List.of(erf, constFloat(1f)));
        return node("Mul", List.of(node("Mul", List.of(x, onePlus)), constFloat(0.5f)));
    }

    private String node(String op, List<String> inputs, AttributeProto... attributes) {
        String out = op.toLowerCase() + "_" + counter++;
        NodeProto.Builder b = NodeProto.newBuilder().setOpType(op).setName(out).addAllInput(inputs).addOutput(out);
        for (AttributeProto a : attributes) {
            b.addAttribute(a);
        }
        nodes.add(b.build());
        return out;
    }

    private static AttributeProto ints(String name, long... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
        for (long x : v) {
            b.addInts(x);
        }
        return b.build();
    }

    private static AttributeProto intAttr(String name, long v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
    }

    /** A 1-D int64 constant initializer. */
    private String constInts(long... v) {
        String name = "const_" + counter++;
        ByteBuffer buf = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) {
            buf.putLong(x);
        }
        initializers.add(TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64_VALUE)
                .addDims(v.length).setRawData(ByteString.copyFrom(buf.array())).build());
        return name;
    }

    /** A scalar int64 constant (Gather with it drops the axis). */
    private String constScalar(long v) {
        String name = "const_" + counter++;
        ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
        initializers.add(TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64_VALUE)
                .setRawData(ByteString.copyFrom(buf.array())).build());
        return name;
    }

    /** A scalar float32 constant. */
    private String constFloat(float v) {
        String name = "const_" + counter++;
        ByteBuffer buf = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(v);
        initializers.add(TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(ByteString.copyFrom(buf.array())).build());
        return name;
    }

    /** A float32 weight under its official name, row-major little-endian. */
    private void initializer(String name, INDArray a) {
        float[] v = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
        ByteBuffer buf = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(v);
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(ByteString.copyFrom(buf.array()));
        for (long dim : a.shape()) {
            t.addDims(dim);
        }
        initializers.add(t.build());
    }

    /** A float32 tensor [batch, dims...] with a symbolic batch. */
    private static ValueInfoProto valueInfo(String name, long... dims) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder()
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("batch"));
        for (long dim : dims) {
            shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(dim));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(shape))).build();
    }
}
