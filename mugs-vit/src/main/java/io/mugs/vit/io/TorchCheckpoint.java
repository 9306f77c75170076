package io.mugs.vit.io;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Reads PyTorch checkpoint files ({@code torch.save}, the zip format of PyTorch 1.6 and later) without executing
 * code: the pickle is interpreted by a small virtual machine that knows only the opcodes and the allow-listed
 * globals a state dict needs ({@code collections.OrderedDict}, {@code torch._utils._rebuild_tensor_v2} and
 * {@code _rebuild_parameter}, the storage types, and {@code argparse.Namespace} as plain data). Any other global,
 * such as {@code os.system} or {@code builtins.eval}, is rejected with an error naming it.
 *
 * <p>Tensors are returned as FLOAT arrays (fp16/bf16/fp64 storages are converted), honouring storage offsets and
 * strides (views). Nested dicts stay nested: the result is the unpickled object with tensors as {@link INDArray}s,
 * dicts as {@code Map}, lists and tuples as {@code List}, numbers as {@code Long}/{@code Double}.
 *
 * <pre>{@code
 * Object root = TorchCheckpoint.read(Path.of("mugs_vit_small_backbone.pth"));
 * Map<String, INDArray> weights = OfficialWeights.backboneStateDict(root);
 * }</pre>
 */
public final class TorchCheckpoint {

    private static final Set<String> STORAGES = Set.of("FloatStorage", "HalfStorage", "DoubleStorage",
            "BFloat16Storage", "LongStorage", "IntStorage", "ByteStorage", "BoolStorage");

    private TorchCheckpoint() {
    }

    /** A global the unpickler allows, by module and name. */
    private record Global(String module, String name) {
    }

    /** Plain-data stand-in for an allowed Python object (argparse.Namespace). */
    public record PyObject(String type, Map<String, Object> state) {
    }

    private record Storage(String type, String key) {
    }

    /**
     * Reads a checkpoint.
     *
     * @throws IOException naming the file and the problem for truncated, legacy or disallowed content
     */
    public static Object read(Path file) throws IOException {
        try (ZipFile zip = new ZipFile(file.toFile())) {
            ZipEntry pkl = null;
            for (var it = zip.entries().asIterator(); it.hasNext(); ) {
                ZipEntry e = it.next();
                if (e.getName().endsWith("data.pkl") && (pkl == null || e.getName().length() < pkl.getName().length())) {
                    pkl = e;
                }
            }
            if (pkl == null) {
                throw new IOException(file + " has no data.pkl: not a PyTorch zip checkpoint");
            }
            String base = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            byte[] pickle = readAll(zip, pkl);
            return new Unpickler(pickle, key -> {
                ZipEntry e = zip.getEntry(base + "data/" + key);
                if (e == null) {
                    throw new IOException(file + " lacks the tensor storage data/" + key + " (truncated file?)");
                }
                return readAll(zip, e);
            }, file).run();
        } catch (java.util.zip.ZipException e) {
            throw new IOException(file + " is not a readable zip file (" + e.getMessage() + "); legacy (pre-1.6) "
                    + "checkpoints must be re-saved with a current torch.save", e);
        }
    }

    private static byte[] readAll(ZipFile zip, ZipEntry e) throws IOException {
        try (InputStream in = zip.getInputStream(e)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        }
    }

    private interface StorageLoader {
        byte[] load(String key) throws IOException;
    }

    /** The restricted pickle virtual machine. */
    private static final class Unpickler {
        private static final Object MARK = new Object();
        private final ByteBuffer in;
        private final StorageLoader storages;
        private final Path file;
        private final Deque<Object> stack = new ArrayDeque<>();
        private final Map<Integer, Object> memo = new HashMap<>();
        private final Map<String, byte[]> loaded = new HashMap<>();

        Unpickler(byte[] data, StorageLoader storages, Path file) {
            this.in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            this.storages = storages;
            this.file = file;
        }

        private IOException bad(String what) {
            return new IOException("Refusing to load " + file + ": " + what);
        }

        Object run() throws IOException {
            try {
                while (true) {
                    int op = in.get() & 0xff;
                    switch (op) {
                        case 0x80 -> in.get();                                        // PROTO
                        case 0x95 -> in.getLong();                                    // FRAME
                        case '}' -> stack.push(new LinkedHashMap<Object, Object>());  // EMPTY_DICT
                        case ']' -> stack.push(new ArrayList<Object>());              // EMPTY_LIST
                        case ')' -> stack.push(List.of());                            // EMPTY_TUPLE
                        case '(' -> stack.push(MARK);
                        case 'X' -> stack.push(string(in.getInt()));                  // BINUNICODE
                        case 0x8c -> stack.push(string(in.get() & 0xff));             // SHORT_BINUNICODE
                        case 'U' -> stack.push(string(in.get() & 0xff));              // SHORT_BINSTRING
                        case 'T' -> stack.push(string(in.getInt()));                  // BINSTRING
                        case 'C' -> stack.push(bytes(in.get() & 0xff));               // SHORT_BINBYTES
                        case 'B' -> stack.push(bytes(in.getInt()));                   // BINBYTES
                        case 'q' -> memo.put(in.get() & 0xff, stack.peek());          // BINPUT
                        case 'r' -> memo.put(in.getInt(), stack.peek());              // LONG_BINPUT
                        case 0x94 -> memo.put(memo.size(), stack.peek());             // MEMOIZE
                        case 'h' -> stack.push(memoGet(in.get() & 0xff));             // BINGET
                        case 'j' -> stack.push(memoGet(in.getInt()));                 // LONG_BINGET
                        case 'c' -> stack.push(global(line(), line()));               // GLOBAL
                        case 0x93 -> {                                                // STACK_GLOBAL
                            String name = (String) stack.pop();
                            stack.push(global((String) stack.pop(), name));
                        }
                        case 't' -> stack.push(popMark());                            // TUPLE
                        case 0x85 -> stack.push(List.of(stack.pop()));                // TUPLE1
                        case 0x86 -> {                                                // TUPLE2
                            Object b = stack.pop();
                            stack.push(List.of(stack.pop(), b));
                        }
                        case 0x87 -> {                                                // TUPLE3
                            Object c = stack.pop();
                            Object b = stack.pop();
                            stack.push(List.of(stack.pop(), b, c));
                        }
                        case 'J' -> stack.push((long) in.getInt());                   // BININT
                        case 'K' -> stack.push((long) (in.get() & 0xff));             // BININT1
                        case 'M' -> stack.push((long) (in.getShort() & 0xffff));      // BININT2
                        case 0x8a -> stack.push(long1(in.get() & 0xff));              // LONG1
                        case 'G' -> stack.push(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // BINFLOAT
                        case 0x88 -> stack.push(Boolean.TRUE);                        // NEWTRUE
                        case 0x89 -> stack.push(Boolean.FALSE);                       // NEWFALSE
                        case 'N' -> stack.push(NONE);                                 // NONE
                        case 'Q' -> stack.push(persistent(stack.pop()));              // BINPERSID
                        case 'R' -> {                                                 // REDUCE
                            Object args = stack.pop();
                            stack.push(reduce(stack.pop(), (List<?>) args));
                        }
                        case 0x81 -> {                                                // NEWOBJ
                            Object args = stack.pop();
                            stack.push(reduce(stack.pop(), (List<?>) args));
                        }
                        case 'b' -> build(stack.pop(), stack.peek());                  // BUILD
                        case 's' -> {                                                 // SETITEM
                            Object v = stack.pop();
                            Object k = stack.pop();
                            dict(stack.peek()).put(k, v);
                        }
                        case 'u' -> {                                                 // SETITEMS
                            List<Object> items = popMark();
                            Map<Object, Object> d = dict(stack.peek());
                            for (int i = 0; i + 1 < items.size(); i += 2) {
                                d.put(items.get(i), items.get(i + 1));
                            }
                        }
                        case 'a' -> {                                                 // APPEND
                            Object v = stack.pop();
                            list(stack.peek()).add(v);
                        }
                        case 'e' -> {                                                 // APPENDS
                            List<Object> items = popMark();
                            list(stack.peek()).addAll(items);
                        }
                        case '.' -> {                                                 // STOP
                            return clean(stack.pop());
                        }
                        default -> throw bad(String.format("pickle opcode 0x%02x is not part of a state dict", op));
                    }
                }
            } catch (java.nio.BufferUnderflowException | java.util.NoSuchElementException | ClassCastException e) {
                throw new IOException(file + ": the pickle is truncated or malformed (" + e + ")", e);
            }
        }

        private static final Object NONE = new Object() {
            @Override
            public String toString() {
                return "None";
            }
        };

        private Object memoGet(int i) throws IOException {
            Object v = memo.get(i);
            if (v == null) {
                throw bad("the pickle reads memo slot " + i + " before writing it");
            }
            return v;
        }

        private String string(int n) {
            byte[] b = new byte[n];
            in.get(b);
            return new String(b, StandardCharsets.UTF_8);
        }

        private byte[] bytes(int n) {
            byte[] b = new byte[n];
            in.get(b);
            return b;
        }

        private String line() {
            StringBuilder sb = new StringBuilder();
            for (byte c = in.get(); c != '\n'; c = in.get()) {
                sb.append((char) c);
            }
            return sb.toString();
        }

        /** LONG1: n little-endian two's-complement bytes. */
        private long long1(int n) throws IOException {
            if (n > 8) {
                throw bad("integer of " + n + " bytes");
            }
            long v = 0;
            for (int i = 0; i < n; i++) {
                v |= (long) (in.get() & 0xff) << (8 * i);
            }
            if (n > 0 && n < 8 && (v & (1L << (8 * n - 1))) != 0) {
                v -= 1L << (8 * n);
            }
            return v;
        }

        private List<Object> popMark() {
            ArrayList<Object> items = new ArrayList<>();
            for (Object o = stack.pop(); o != MARK; o = stack.pop()) {
                items.add(0, o);
            }
            return items;
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dict(Object o) throws IOException {
            if (o instanceof Map<?, ?> m) {
                return (Map<Object, Object>) m;
            }
            throw bad("SETITEM on a " + o);
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) throws IOException {
            if (o instanceof ArrayList<?> l) {
                return (List<Object>) l;
            }
            throw bad("APPEND on a " + o);
        }

        private Object global(String module, String name) throws IOException {
            String full = module + "." + name;
            boolean ok = full.equals("collections.OrderedDict") || full.equals("torch._utils._rebuild_tensor_v2")
                    || full.equals("torch._utils._rebuild_parameter") || full.equals("argparse.Namespace")
                    || (module.equals("torch") && STORAGES.contains(name));
            if (!ok) {
                throw bad("it calls the Python global " + full + ", which a state dict never needs "
                        + "(only OrderedDict, tensors, storages and argparse.Namespace are allowed)");
            }
            return new Global(module, name);
        }

        private Object persistent(Object pid) throws IOException {
            if (!(pid instanceof List<?> t) || t.size() < 5 || !"storage".equals(t.get(0))
                    || !(t.get(1) instanceof Global g)) {
                throw bad("unexpected persistent id " + pid);
            }
            return new Storage(g.name(), String.valueOf(t.get(2)));
        }

        private Object reduce(Object callable, List<?> args) throws IOException {
            if (!(callable instanceof Global g)) {
                throw bad("REDUCE on " + callable);
            }
            return switch (g.name()) {
                case "OrderedDict" -> new LinkedHashMap<Object, Object>();
                case "Namespace" -> new PyObject("argparse.Namespace", new LinkedHashMap<>());
                case "_rebuild_tensor_v2" -> tensor((Storage) args.get(0), ((Number) args.get(1)).longValue(),
                        (List<?>) args.get(2), (List<?>) args.get(3));
                case "_rebuild_parameter" -> args.get(0);
                default -> throw bad("cannot call " + g.module() + "." + g.name());
            };
        }

        @SuppressWarnings("unchecked")
        private void build(Object state, Object target) throws IOException {
            if (target instanceof PyObject p && state instanceof Map<?, ?> m) {
                m.forEach((k, v) -> p.state().put(String.valueOf(k), unwrap(v)));
            } else if (!(target instanceof Map)) {
                throw bad("BUILD on " + target);
            }
            // BUILD on an OrderedDict sets attributes such as _metadata: not needed.
        }

        private INDArray tensor(Storage s, long offset, List<?> size, List<?> stride) throws IOException {
            byte[] raw = loaded.get(s.key());
            if (raw == null) {
                raw = storages.load(s.key());
                loaded.put(s.key(), raw);
            }
            int width = switch (s.type()) {
                case "DoubleStorage", "LongStorage" -> 8;
                case "FloatStorage", "IntStorage" -> 4;
                case "HalfStorage", "BFloat16Storage" -> 2;
                default -> 1;
            };
            long[] shape = size.stream().mapToLong(x -> ((Number) x).longValue()).toArray();
            long[] strides = stride.stream().mapToLong(x -> ((Number) x).longValue()).toArray();
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            float[] out = new float[Math.toIntExact(n)];
            ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            long[] idx = new long[shape.length];
            for (int i = 0; i < out.length; i++) {
                long pos = offset;
                for (int d = 0; d < shape.length; d++) {
                    pos += idx[d] * strides[d];
                }
                if ((pos + 1) * width > raw.length) {
                    throw new IOException(file + ": tensor view reaches past its storage " + s.key() + " (truncated?)");
                }
                int at = (int) (pos * width);
                out[i] = switch (s.type()) {
                    case "FloatStorage" -> b.getFloat(at);
                    case "DoubleStorage" -> (float) b.getDouble(at);
                    case "HalfStorage" -> SafeTensors.halfToFloat(b.getShort(at));
                    case "BFloat16Storage" -> Float.intBitsToFloat((b.getShort(at) & 0xffff) << 16);
                    case "LongStorage" -> b.getLong(at);
                    case "IntStorage" -> b.getInt(at);
                    default -> raw[at];
                };
                for (int d = shape.length - 1; d >= 0; d--) {
                    if (++idx[d] < shape[d]) {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            return shape.length == 0 ? Nd4j.scalar(out[0]) : Nd4j.create(out, shape, DataType.FLOAT);
        }

        private static Object unwrap(Object o) {
            return o == NONE ? null : o;
        }

        /** Replaces the None sentinel with null and tuples with mutable lists, recursively. */
        private static Object clean(Object o) {
            if (o == NONE) {
                return null;
            }
            if (o instanceof Map<?, ?> m) {
                Map<Object, Object> out = new LinkedHashMap<>();
                m.forEach((k, v) -> out.put(clean(k), clean(v)));
                return out;
            }
            if (o instanceof List<?> l) {
                List<Object> out = new ArrayList<>();
                l.forEach(v -> out.add(clean(v)));
                return out;
            }
            if (o instanceof PyObject p) {
                Map<String, Object> state = new LinkedHashMap<>();
                p.state().forEach((k, v) -> state.put(k, clean(v)));
                return new PyObject(p.type(), state);
            }
            return o;
        }
    }
}
