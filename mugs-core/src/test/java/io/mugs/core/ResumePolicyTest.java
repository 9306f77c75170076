package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.mugs.io.CheckpointFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** The one resume rule: recipe only; epochs and the optimisation settings may change, anything else is refused. */
class ResumePolicyTest {

    /** {@code json} as written before workers and replicas left the recipe: both fields at the end. */
    private static String oldFormat(String json, int workers, int replicas) {
        int end = json.lastIndexOf('}');
        return json.substring(0, end).stripTrailing() + ",\n  \"workers\" : " + workers + ",\n  \"replicas\" : "
                + replicas + "\n}";
    }

    private static List<String> warnings(Runnable action) {
        Logger logger = (Logger) LoggerFactory.getLogger(ResumePolicy.class);
        ListAppender<ILoggingEvent> list = new ListAppender<>();
        list.start();
        logger.addAppender(list);
        try {
            action.run();
        } finally {
            logger.detachAppender(list);
        }
        return list.list.stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage)
                .toList();
    }

    @Test
    void theLaunchersReplicasAreTwoOnlyWhereTwoCoresAndAnEvenBatchAllowThem() {
        int expected = Runtime.getRuntime().availableProcessors() >= 2 ? 2 : 1;   // CPU backend in the tests
        assertEquals(expected, RunSettings.forThisMachine(32).replicas());
        assertEquals(1, RunSettings.forThisMachine(7).replicas(), "an odd batch does not split");
        assertEquals(2, RunSettings.forThisMachine(32).workers());
        assertEquals(1, RunSettings.defaults().replicas(), "the library's default stays one replica");
        String before = System.getProperty("mugs.engine");
        System.setProperty("mugs.engine", "samediff");
        try {
            assertEquals(1, RunSettings.forThisMachine(32).replicas(), "SameDiff's session runs one replica");
        } finally {
            if (before == null) {
                System.clearProperty("mugs.engine");
            } else {
                System.setProperty("mugs.engine", before);
            }
        }
    }

    @Test
    void configJsonOfAnOlderRunWithWorkersAndReplicasReadsWithoutThem() {
        MugsConfig cfg = Tiny.config();
        String old = oldFormat(cfg.toJson(), 1, 2);
        assertTrue(old.contains("\"replicas\" : 2") && old.contains("\"workers\" : 1"), old);
        assertEquals(cfg.toJson(), MugsConfig.fromJson(old).toJson());
        var unknown = assertThrows(IllegalArgumentException.class,
                () -> MugsConfig.fromJson(oldFormat(cfg.toJson(), 1, 2).replace("\"workers\"", "\"threads\"")));
        assertTrue(unknown.getMessage().contains("threads"), unknown.getMessage());
    }

    @Test
    void anOldFormatRunFolderResumesWithOtherRunSettings(@TempDir Path dir) throws IOException {
        MugsConfig one = Tiny.config().toBuilder().epochs(1).build();   // 24 images, batch 8: 3 steps per epoch
        Pretraining.fit(one, Tiny.images(24), dir, List.of(MugsListeners.checkpoints(dir, 3)));
        // Rewrite the run as an older version wrote it: workers and replicas inside the stored recipe.
        Path file = RunCheckpoints.latest(dir).orElseThrow();
        CheckpointFile.Content content = CheckpointFile.read(file);
        Map<String, String> meta = new LinkedHashMap<>(content.metadata());
        meta.put("config", oldFormat(meta.get("config"), 2, 2));
        CheckpointFile.write(file, content.state(), meta);
        Files.writeString(dir.resolve("config.json"), oldFormat(one.toJson(), 2, 2));

        MugsConfig two = one.toBuilder().epochs(2).build();
        MugsTrainer resumed = Pretraining.fit(two, new RunSettings(1, 1), Tiny.images(24), dir,
                List.of(MugsListeners.checkpoints(dir, 3)));
        assertEquals(6, resumed.iteration(), "resumed at step 3 and extended to two epochs");
        assertEquals(two.toJson(), Files.readString(dir.resolve("config.json")), "rewritten in the new format");
    }

    @Test
    void optimisationSettingsMayChangeWithOneWarningNamingOldAndNewValues() {
        MugsConfig stored = Tiny.config();
        MugsConfig lower = stored.toBuilder().lr(stored.lr() / 2).clipGrad(1).weightDecay(0.01).build();
        List<String> w = warnings(() -> ResumePolicy.check("run folder r", stored, lower, 5, 3));
        assertEquals(1, w.size(), w.toString());
        assertTrue(w.get(0).contains("lr " + stored.lr() + " -> " + stored.lr() / 2)
                && w.get(0).contains("weightDecay 0.04 -> 0.01") && w.get(0).contains("clipGrad 3.0 -> 1.0")
                && w.get(0).contains("iteration 5"), w.get(0));
        assertEquals(List.of(), warnings(() -> ResumePolicy.check("run folder r", stored, stored, 5, 3)));
    }

    @Test
    void otherRecipeChangesAreRefusedAndRunSettingsAreNeverCompared() {
        MugsConfig stored = Tiny.config();
        MugsConfig deeper = stored.toBuilder().studentTemp(0.2).prototypes(32).lr(1e-3).build();
        var e = assertThrows(IllegalArgumentException.class,
                () -> ResumePolicy.check("run folder r", stored, deeper, 5, 3));
        assertTrue(e.getMessage().startsWith("run folder r holds a run with another configuration (it differs in "
                + "prototypes, studentTemp): "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void shorteningBelowTheTrainedEpochsIsRefusedAndLeavesConfigJsonAlone(@TempDir Path dir) throws IOException {
        MugsConfig two = Tiny.config().toBuilder().epochs(2).build();
        Pretraining.fit(two, Tiny.images(24), dir, List.of(MugsListeners.checkpoints(dir, 3)));
        String stored = Files.readString(dir.resolve("config.json"));
        MugsConfig one = two.toBuilder().epochs(1).build();
        var e = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(one, Tiny.images(24), dir, List.of()));
        assertEquals("run folder " + dir + " has trained 2.00 epochs (6 steps of 3 per epoch); --epochs 1 would end "
                + "it before where it is: give at least 2 epochs, or use a new output folder", e.getMessage());
        assertEquals(stored, Files.readString(dir.resolve("config.json")), "config.json untouched");
        // Mid-run, shortening down to the epochs already trained is fine (the schedules are recomputed).
        List<String> w = warnings(() -> ResumePolicy.check("run folder r", Tiny.config().toBuilder().epochs(5)
                .build(), Tiny.config().toBuilder().epochs(3).build(), 6, 3));
        assertEquals(1, w.size(), w.toString());
        assertTrue(w.get(0).contains("continuing to 3 epochs"), w.get(0));
    }
}
