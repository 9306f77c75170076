package com.example.downstream;

import io.mugs.core.DropPathMasks;
import io.mugs.core.MugsConfig;
import io.mugs.core.MugsModel;
import io.mugs.core.MugsTrainer;
import io.mugs.core.StudentOutputs;
import io.mugs.core.TeacherOutputs;
import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import java.util.List;

/** One training step with its six public phases apart, as MugsTrainer.step runs them (one replica: no collectives). */
public final class OneStepByHand {

    public static void main(String[] args) throws Exception {
        MugsConfig cfg = MugsConfig.fashionMnistTiny();
        try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(true),
                new MultiCropAugmentation(cfg.crops()), cfg.batchSize(), 2, 4, cfg.seed())) {
            MugsTrainer t = new MugsTrainer(cfg, loader.stepsPerEpoch());
            MultiCropBatch batch = loader.batch(0, 0);                           // epoch 0, step 0
            DropPathMasks masks = t.dropPathMasks(batch.batchSize());
            double temperature = t.teacherTemperature(t.epoch());
            TeacherOutputs teacher = t.teacherForward(batch).get(0);            // targets, no gradients
            StudentOutputs student = t.studentGradients(batch, List.of(teacher), masks, temperature).get(0);
            t.update(student.gradients());                                      // clip, AdamW, frozen last layer
            t.teacherEma(t.momentumSchedule()[(int) t.iteration()]);            // θt ← m θt + (1 − m) θs
            t.updateState(batch, teacher, student);                             // queues, memories, centre
            System.out.printf("loss %.4f %s%n", student.losses().get(MugsModel.LOSS), student.losses());
        }
    }
}
