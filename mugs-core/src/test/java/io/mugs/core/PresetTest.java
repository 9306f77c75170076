package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class PresetTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theFullDataRecipeDiffersFromTheTinyPresetOnlyWhereDocumented() throws Exception {
        Map<String, String> changed = differences(JSON.readTree(MugsConfig.fashionMnistTiny().toJson()),
                JSON.readTree(MugsConfig.fashionMnist().toJson()), "");
        assertEquals(Map.of("crops.globalScale", "[0.4,1.0] -> [0.85,1.0]", "crops.localScale", "[0.1,0.4] -> [0.3,0.6]",
                "lossWeights.group", "1.0 -> 0.0", "epochs", "10 -> 7", "warmupEpochs", "1.0 -> 0.1",
                "freezeLastLayer", "1.0 -> 0.1"), changed);
    }

    @Test
    void theSecondFullDataRecipeChangesOnlyThePeakLearningRateAndItsWarmUp() throws Exception {
        Map<String, String> changed = differences(JSON.readTree(MugsConfig.fashionMnist().toJson()),
                JSON.readTree(MugsConfig.fashionMnistV2().toJson()), "");
        assertEquals(Map.of("lr", "0.004 -> 0.012", "warmupEpochs", "0.1 -> 0.5"), changed);
    }

    @Test
    void theThirdFullDataRecipeChangesOnlyTheInfoNceTemperatures() throws Exception {
        Map<String, String> changed = differences(JSON.readTree(MugsConfig.fashionMnistV2().toJson()),
                JSON.readTree(MugsConfig.fashionMnistV3().toJson()), "");
        assertEquals(Map.of("instanceTemp", "0.2 -> 0.1", "localGroupTemp", "0.2 -> 0.1"), changed);
    }

    @Test
    void theFourthFullDataRecipeAddsTwoBlocks() throws Exception {
        Map<String, String> changed = differences(JSON.readTree(MugsConfig.fashionMnistV3().toJson()),
                JSON.readTree(MugsConfig.fashionMnistV4().toJson()), "");
        assertEquals(Map.of("vit.depth", "4 -> 6"), changed);
    }

    /** Leaf path -> "old -> new" for every leaf that differs. */
    private static Map<String, String> differences(JsonNode a, JsonNode b, String prefix) {
        Map<String, String> out = new TreeMap<>();
        for (Iterator<String> names = a.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            JsonNode x = a.get(name);
            JsonNode y = b.get(name);
            String path = prefix + name;
            if (x.isObject()) {   // arrays are leaves
                out.putAll(differences(x, y, path + "."));
            } else if (!x.equals(y)) {
                out.put(path, x + " -> " + y);
            }
        }
        return out;
    }
}
