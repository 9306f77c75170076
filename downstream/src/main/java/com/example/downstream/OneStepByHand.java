package com.example.downstream;

import io.mugs.core.MugsConfig;
import io.mugs.core.MugsModel;
import io.mugs.core.MugsTrainer;
import io.mugs.core.StudentOutputs;
import io.mugs.core.TeacherEma;
import io.mugs.core.TeacherOutputs;
import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;

/** One training step with its phases apart: what MugsTrainer.step does, the seam for multi-device training. */
public final class OneStepByHand {

    public static void main(String[] args) throws Exception {
        MugsConfig cfg = MugsConfig.fashionMnistTiny();
        try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(true),
                new MultiCropAugmentation(cfg.crops()), cfg.batchSize(), 2, 4, cfg.seed())) {
            MugsTrainer t = new MugsTrainer(cfg, loader.stepsPerEpoch());
            MultiCropBatch batch = loader.batch(0, 0);                           // epoch 0, step 0
            double momentum = t.momentumSchedule()[(int) t.iteration()];
            TeacherOutputs teacher = t.teacherForward(batch);                   // targets, no gradients
            StudentOutputs student = t.studentGradients(batch, teacher);        // losses + gradients (all-reduce here)
            t.update(student.gradients());                                      // clip, AdamW, frozen last layer
            TeacherEma.update(t.model().teacherParameters(), t.model().studentParameters(), momentum);
            t.updateState(batch, teacher, student);                             // queues, memories, centre
            System.out.printf("loss %.4f %s%n", student.losses().get(MugsModel.LOSS), student.losses());
        }
    }
}
