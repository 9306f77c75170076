package io.mugs.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.List;

/**
 * The JSON form of a {@link MugsConfig} read back and edited by path: the strict reading of {@link
 * MugsConfig#fromJson} (1.5 is not an int, "2" is not a number, an explicit null is refused; a field a nested record
 * omits when it holds its default, such as {@code vit.stemChannels}, reads as that default; the run settings older
 * files carried are ignored) and the {@code path=value} overrides of {@link MugsConfig#with} ({@code --set} on the
 * command line), each checked to be of the kind of the value it replaces. Both end in the record's constructor, so
 * the result is validated like any other configuration.
 *
 * <pre>{@code
 * MugsConfig cfg = MugsConfigJson.with(MugsConfig.fashionMnistTiny(), "lr=2e-3", "vit.depth=2");
 * MugsConfig same = MugsConfigJson.read(cfg.toJson());
 * }</pre>
 */
final class MugsConfigJson {

    /** The record's own mapper ({@link MugsConfig#JSON}: strict reading). */
    private static final ObjectMapper JSON = MugsConfig.JSON;

    /** Fields of older config JSON that are now {@link RunSettings}: read and ignored. */
    static final List<String> LEGACY_RUN_SETTINGS = List.of("workers", "replicas");

    private MugsConfigJson() {
    }

    /** {@link MugsConfig#fromJson}: strict, with the defaults a file may leave out and older files' run settings. */
    static MugsConfig read(String json) {
        try {
            JsonNode tree = JSON.readTree(json);
            requireNoNull("", tree);
            if (tree instanceof ObjectNode object) {
                object.remove(LEGACY_RUN_SETTINGS);   // run settings, part of the recipe in older files
            }
            return JSON.treeToValue(withAbsentDefaults(tree), MugsConfig.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("Not a MugsConfig JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** {@link MugsConfig#with}: {@code config} with each {@code path=value} assigned, validated. */
    static MugsConfig with(MugsConfig config, String... assignments) {
        ObjectNode root = (ObjectNode) withAbsentDefaults(JSON.valueToTree(config));   // every field can be set
        for (String a : assignments) {
            int eq = a.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("Expected path=value, got '" + a + "'");
            }
            String[] path = a.substring(0, eq).trim().split("\\.");
            String text = a.substring(eq + 1).trim();
            ObjectNode node = root;
            for (int i = 0; i < path.length - 1; i++) {
                if (!(node.get(path[i]) instanceof ObjectNode child)) {
                    throw new IllegalArgumentException("'" + a + "': no group '" + path[i] + "' in the configuration");
                }
                node = child;
            }
            String field = path[path.length - 1];
            if (!node.has(field) || node.get(field).isObject()) {
                throw new IllegalArgumentException("'" + a + "': no field '" + field + "'; fields here: "
                        + String.join(", ", (Iterable<String>) node::fieldNames));
            }
            JsonNode value;
            try {
                value = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                value = TextNode.valueOf(text);
            }
            requireSameKind(a, field, node.get(field), value);
            node.set(field, value);
        }
        try {
            return JSON.treeToValue(withAbsentDefaults(root), MugsConfig.class);
        } catch (JsonProcessingException e) {
            Throwable cause = e.getCause() instanceof IllegalArgumentException iae ? iae : e;
            String why = cause == e ? e.getOriginalMessage() : cause.getMessage();
            throw new IllegalArgumentException("Cannot apply " + String.join(" ", assignments) + ": " + why, e);
        }
    }

    private static void requireNoNull(String path, JsonNode node) {
        if (node.isNull()) {
            throw new IllegalArgumentException("Not a MugsConfig JSON: " + path + " is null; give a value");
        }
        node.fields().forEachRemaining(e -> requireNoNull(path.isEmpty() ? e.getKey() : path + "." + e.getKey(),
                e.getValue()));
    }

    /**
     * Fields a JSON may leave out because they hold their default: {@code vit.stemChannels} is written only when
     * non-zero (VitConfig), while this mapper refuses absent primitives.
     */
    private static JsonNode withAbsentDefaults(JsonNode tree) {
        if (tree.get("vit") instanceof ObjectNode vit && !vit.has("stemChannels")) {
            vit.put("stemChannels", 0);
        }
        return tree;
    }

    /** A value replacing {@code old} must be of its kind: an integer for an integer, a finite number for a number. */
    private static void requireSameKind(String assignment, String field, JsonNode old, JsonNode value) {
        String want = null;
        if (old.isIntegralNumber() && !value.isIntegralNumber()) {
            want = "an integer";
        } else if (old.isNumber() && !(value.isNumber() && Double.isFinite(value.doubleValue()))) {
            want = "a finite number";
        } else if (old.isBoolean() && !value.isBoolean()) {
            want = "true or false";
        } else if (old.isArray() && !value.isArray()) {
            want = "a list such as [0.4,1.0]";
        } else if (old.isTextual() && !value.isTextual()) {
            want = "a name such as " + old.asText();
        }
        if (want != null) {
            throw new IllegalArgumentException("'" + assignment + "': " + field + " must be " + want + ", got '"
                    + value.asText() + "'");
        }
    }
}
