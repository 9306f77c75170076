package io.mugs.io;

import io.mugs.io.PickleMachine.PDict;
import io.mugs.io.PickleMachine.PList;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns what a {@link PickleMachine} built into plain Java data (None to null, tuples to lists) in one bounded
 * walk: shared objects are converted once (no blow-up from a memo that repeats an object), an object that contains
 * itself is refused, and so is nesting past {@link PickleMachine#MAX_DEPTH}.
 *
 * <pre>{@code
 * Object root = PickleResult.plain(machineOutput, file);
 * }</pre>
 */
final class PickleResult {

    private final Path file;
    private final Set<Object> path = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Object, Object> done = new IdentityHashMap<>();

    private PickleResult(Path file) {
        this.file = file;
    }

    static Object plain(Object root, Path file) throws IOException {
        return new PickleResult(file).clean(root, 0);
    }

    private IOException bad(String what) {
        return new IOException("Refusing to load " + file + ": " + what);
    }

    /**
     * Replaces None with null and tuples with plain lists, recursively. The depth is checked here again because
     * children can grow after being added (through the memo), which the heights the machine keeps do not see.
     */
    private Object clean(Object o, int depth) throws IOException {
        if (o == PickleMachine.NONE) {
            return null;
        }
        if (!(o instanceof PList || o instanceof PDict || o instanceof PthReader.PyObject)) {
            return o;
        }
        if (depth > PickleMachine.MAX_DEPTH) {
            throw bad("objects are nested deeper than " + PickleMachine.MAX_DEPTH
                    + " levels, which no state dict needs");
        }
        Object seen = done.get(o);
        if (seen != null) {
            return seen;
        }
        if (!path.add(o)) {
            throw bad(PickleMachine.describe(o) + " contains itself (a memo cycle), which no state dict does");
        }
        Object out;
        if (o instanceof PList l) {
            List<Object> copy = new ArrayList<>(l.size());
            for (Object v : l) {
                copy.add(clean(v, depth + 1));
            }
            out = copy;
        } else if (o instanceof PDict m) {
            Map<Object, Object> copy = new LinkedHashMap<>();
            for (Map.Entry<Object, Object> e : m.entrySet()) {
                copy.put(clean(e.getKey(), depth + 1), clean(e.getValue(), depth + 1));
            }
            out = copy;
        } else {
            PthReader.PyObject p = (PthReader.PyObject) o;
            Map<String, Object> state = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : p.state().entrySet()) {
                state.put(e.getKey(), clean(e.getValue(), depth + 1));
            }
            out = new PthReader.PyObject(p.type(), state);
        }
        path.remove(o);
        done.put(o, out);
        return out;
    }
}
