package io.mugs.losses;

/**
 * The teacher temperature of the group loss (reference §3.3): {@code linspace(warmupTemp, temp, warmupEpochs)}
 * over the first epochs, then {@code temp}; indexed per epoch, as in the released code. Reference values: 0.04
 * constant (ViT-S 100 epochs) or 0.04 -> 0.07 over 30 epochs.
 *
 * <pre>{@code
 * var tau = new TeacherTemperatureSchedule(0.04, 0.07, 30);
 * double t = tau.at(epoch);
 * }</pre>
 */
public record TeacherTemperatureSchedule(double warmupTemperature, double temperature, int warmupEpochs) {

    public TeacherTemperatureSchedule {
        if (warmupTemperature <= 0 || temperature <= 0 || warmupEpochs < 0) {
            throw new IllegalArgumentException("teacher temperatures must be positive and warm-up epochs >= 0, got "
                    + warmupTemperature + ", " + temperature + ", " + warmupEpochs);
        }
    }

    public double at(int epoch) {
        if (epoch >= warmupEpochs) {
            return temperature;
        }
        if (warmupEpochs == 1) {
            return warmupTemperature;
        }
        return warmupTemperature + (temperature - warmupTemperature) * epoch / (warmupEpochs - 1);
    }
}
