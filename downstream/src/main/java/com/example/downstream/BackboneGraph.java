package com.example.downstream;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Path;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** A ViT as a SameDiff graph builder: two crop sizes through the same weights, then saved as a backbone file. */
public final class BackboneGraph {

    public static void main(String[] args) throws Exception {
        SameDiff sd = SameDiff.create();
        VitConfig cfg = VitConfig.builder().imageSize(28).inChannels(1).patchSize(4)
                .embedDim(192).depth(6).numHeads(3).dropPathRate(0.1).build();
        VisionTransformer vit = new VisionTransformer(sd, "student.", cfg, DataType.FLOAT, 42);

        SDVariable global = sd.placeHolder("global", DataType.FLOAT, -1, 1, 28, 28);
        SDVariable local = sd.placeHolder("local", DataType.FLOAT, -1, 1, 12, 12);
        VitOutputs g = vit.apply(global, 28, 28, VisionTransformer.Mode.TRAINING, "global"); // drop-path masks
        VitOutputs l = vit.apply(local, 12, 12, VisionTransformer.Mode.INFERENCE, "local");  // same weights

        INDArray crops = Nd4j.rand(DataType.FLOAT, 4, 1, 12, 12);                 // 4 local crops
        INDArray cls = l.cls().eval(Map.of("local", crops));                       // [4, 192], final-LN CLS
        BackboneFiles.save(Path.of(args.length > 0 ? args[0] : "vit.safetensors"), vit);   // official key names
        System.out.println("CLS " + java.util.Arrays.toString(cls.shape()) + ", training tower " + g.cls().name());
    }
}
