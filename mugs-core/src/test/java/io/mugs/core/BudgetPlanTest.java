package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.optim.Schedules;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BudgetPlanTest {

    @TempDir
    Path dir;

    @Test
    void stepsAreTheWholeStepsThatFitTheBudget() {
        BudgetPlan plan = BudgetPlan.of(60, 0.27, 20, 1875);
        assertEquals(13_333, plan.totalSteps());           // 3600 / 0.27 = 13,333.3
        assertEquals(8, plan.epochs());                    // 7 x 1875 = 13,125 < 13,333
        assertEquals(1, BudgetPlan.of(0.001, 5, 20, 100).totalSteps());
    }

    @Test
    void thePlanRoundTripsThroughTheRunFolder() throws IOException {
        BudgetPlan plan = BudgetPlan.of(15, 0.3125, 30, 125);
        plan.write(dir);
        assertEquals(plan, BudgetPlan.read(dir).orElseThrow());
        Path fresh = Files.createDirectory(dir.resolve("fresh"));
        assertTrue(BudgetPlan.read(fresh).isEmpty());
    }

    @Test
    void aDamagedPlanIsNamedWithTheRemedy() throws IOException {
        Files.writeString(dir.resolve(BudgetPlan.FILE), "{\"budgetMinutes\": -3}");
        IOException e = assertThrows(IOException.class, () -> BudgetPlan.read(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve(BudgetPlan.FILE) + " cannot be read as a budget plan"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("remove it to plan again"), e.getMessage());
    }

    @Test
    void aScheduleOverStepsEndsAtItsLastStepAndMatchesTheEpochScheduleWhenTheyCoincide() {
        double[] bySteps = Schedules.cosineSteps(1.0, 0.1, 40, 8, 0.0);
        double[] byEpochs = Schedules.cosine(1.0, 0.1, 5, 8, 1, 0.0);
        assertEquals(40, bySteps.length);
        for (int i = 0; i < 40; i++) {
            assertEquals(byEpochs[i], bySteps[i], 0);
        }
        double[] odd = Schedules.cosineSteps(2.0, 0.5, 13, 3, 0.0);
        assertEquals(0.0, odd[0], 0);
        assertEquals(2.0, odd[2], 0);
        assertEquals(2.0, odd[3], 0);                                   // cosine starts at the base
        assertEquals(0.5 + 0.75 * (1 + Math.cos(Math.PI * 9 / 10)), odd[12], 1e-15);  // last of 10 cosine steps
    }

    @Test
    void hugeSchedulesAreRefusedBeforeTheyAreAllocated() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Schedules.cosine(1, 0, 100_000_000, 1875, 1, 0));
        assertTrue(e.getMessage().contains("lower the epochs"), e.getMessage());
    }
}
