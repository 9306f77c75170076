package com.example.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.Map;

/** CLS embeddings [n, D] of normalised images [n, C, S, S] from an exported teacher, with onnxruntime alone. */
public final class TeacherOnnx {

    public static float[][] cls(String model, float[] pixels, long[] shape) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(model, new OrtSession.SessionOptions());
             OnnxTensor images = OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), shape);
             OrtSession.Result out = session.run(Map.of("images", images))) {
            return (float[][]) out.get("cls").orElseThrow().getValue();
        }
    }
}
