package io.mugs.io;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * The restricted, bounded pickle virtual machine behind {@link PthReader}. It knows only the opcodes and
 * allow-listed globals a state dict needs and never runs code. Every limit is checked before the memory is taken:
 * string lengths against the bytes left, the stack at {@value #MAX_STACK} entries, nesting at {@value #MAX_DEPTH}
 * levels (deeper than Python itself can pickle); objects that contain themselves are refused.
 *
 * <pre>{@code
 * Object root = new PickleMachine(pickleBytes, tensorBuilder, file).run();
 * }</pre>
 */
final class PickleMachine {

    /** Nesting bound: a state dict needs a handful of levels; CPython's pickler stops near 1000. */
    static final int MAX_DEPTH = 256;
    /** Stack bound: pickle batches SETITEMS and APPENDS by 1000, so a state dict stays far below it. */
    static final int MAX_STACK = 10_000;
    /** Storage types a state dict uses, by their {@code torch} global name. */
    static final Set<String> STORAGES = Set.of("FloatStorage", "HalfStorage", "DoubleStorage",
            "BFloat16Storage", "LongStorage", "IntStorage", "ByteStorage", "BoolStorage");

    /** Builds a tensor from a storage and a strided view of it. */
    interface TensorBuilder {
        Object rebuild(String storageType, String key, long numel, long offset, long[] size, long[] stride)
                throws IOException;
    }

    private static final Object MARK = new Object();
    static final Object NONE = new Object();

    /** A global the machine allows, by module and name. */
    private record Global(String module, String name) {
    }

    /** A storage named by a persistent id: its type, archive key and element count. */
    private record Storage(String type, String key, long numel) {
    }

    /** A Python list or tuple with the height of what it holds (1 for a flat one). */
    static final class PList extends ArrayList<Object> {
        final boolean tuple;
        private int height = 1;

        PList(boolean tuple) {
            this.tuple = tuple;
        }
    }

    /** A Python dict with the height of what it holds. */
    static final class PDict extends LinkedHashMap<Object, Object> {
        private int height = 1;
    }

    private final ByteBuffer in;
    private final TensorBuilder tensors;
    private final Path file;
    private final Deque<Object> stack = new ArrayDeque<>();
    private final Map<Integer, Object> memo = new HashMap<>();
    private final Map<Object, Integer> objectHeights = new IdentityHashMap<>();

    PickleMachine(byte[] data, TensorBuilder tensors, Path file) {
        this.in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        this.tensors = tensors;
        this.file = file;
    }

    private IOException bad(String what) {
        return new IOException("Refusing to load " + file + ": " + what);
    }

    /** Runs the pickle to its STOP and returns the result with tuples as lists and None as null. */
    Object run() throws IOException {
        try {
            while (true) {
                int op = in.get() & 0xff;
                switch (op) {
                    case 0x80 -> in.get();                                        // PROTO
                    case 0x95 -> in.getLong();                                    // FRAME
                    case '}' -> push(new PDict());                                // EMPTY_DICT
                    case ']' -> push(new PList(false));                           // EMPTY_LIST
                    case ')' -> push(new PList(true));                            // EMPTY_TUPLE
                    case '(' -> push(MARK);
                    case 'X', 'T' -> push(string(in.getInt()));                   // BINUNICODE, BINSTRING
                    case 0x8c, 'U' -> push(string(in.get() & 0xff));              // SHORT_BINUNICODE, _BINSTRING
                    case 'C' -> push(bytes(in.get() & 0xff));                     // SHORT_BINBYTES
                    case 'B' -> push(bytes(in.getInt()));                         // BINBYTES
                    case 'q' -> memo.put(in.get() & 0xff, stack.element());       // BINPUT
                    case 'r' -> memo.put(in.getInt(), stack.element());           // LONG_BINPUT
                    case 0x94 -> memo.put(memo.size(), stack.element());          // MEMOIZE
                    case 'h' -> push(memoGet(in.get() & 0xff));                   // BINGET
                    case 'j' -> push(memoGet(in.getInt()));                       // LONG_BINGET
                    case 'c' -> push(global(line(), line()));                     // GLOBAL
                    case 0x93 -> {                                                // STACK_GLOBAL
                        String name = (String) stack.pop();
                        push(global((String) stack.pop(), name));
                    }
                    case 't' -> push(tuple(popMark()));                           // TUPLE
                    case 0x85, 0x86, 0x87 -> push(tuple(pop(op - 0x84)));         // TUPLE1, TUPLE2, TUPLE3
                    case 'J' -> push((long) in.getInt());                         // BININT
                    case 'K' -> push((long) (in.get() & 0xff));                   // BININT1
                    case 'M' -> push((long) (in.getShort() & 0xffff));            // BININT2
                    case 0x8a -> push(long1(in.get() & 0xff));                    // LONG1
                    case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // BINFLOAT
                    case 0x88 -> push(Boolean.TRUE);                              // NEWTRUE
                    case 0x89 -> push(Boolean.FALSE);                             // NEWFALSE
                    case 'N' -> push(NONE);                                       // NONE
                    case 'Q' -> push(persistent(stack.pop()));                    // BINPERSID
                    case 'R', 0x81 -> {                                           // REDUCE, NEWOBJ
                        Object args = stack.pop();
                        push(reduce(stack.pop(), args));
                    }
                    case 'b' -> build(stack.pop(), stack.element());              // BUILD
                    case 's' -> setItems(pop(2));                                 // SETITEM
                    case 'u' -> setItems(popMark());                              // SETITEMS
                    case 'a' -> append(pop(1));                                   // APPEND
                    case 'e' -> append(popMark());                                // APPENDS
                    case '.' -> {                                                 // STOP
                        return PickleResult.plain(stack.pop(), file);
                    }
                    default -> throw bad(String.format("pickle opcode 0x%02x is not part of a state dict", op));
                }
            }
        } catch (BufferUnderflowException | NoSuchElementException | ClassCastException
                 | IndexOutOfBoundsException e) {
            throw bad("the pickle is truncated or malformed (" + e.getClass().getSimpleName() + ")");
        }
    }

    private void push(Object o) throws IOException {
        if (stack.size() >= MAX_STACK) {
            throw bad("the pickle stack grows past " + MAX_STACK + " entries, which no state dict needs");
        }
        stack.push(o);
    }

    private Object memoGet(int i) throws IOException {
        Object v = memo.get(i);
        if (v == null) {
            throw bad("the pickle reads memo slot " + i + " before writing it");
        }
        return v;
    }

    private byte[] bytes(int n) throws IOException {
        if (n < 0 || n > in.remaining()) {
            throw bad("a string of " + n + " bytes runs past the end of the pickle (" + in.remaining() + " left)");
        }
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private String string(int n) throws IOException {
        return new String(bytes(n), StandardCharsets.UTF_8);
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
            throw bad("an integer of " + n + " bytes");
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
            items.add(o);
        }
        Collections.reverse(items);
        return items;
    }

    /** The top {@code n} entries, deepest first. */
    private List<Object> pop(int n) {
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) {
            items[i] = stack.pop();
        }
        return Arrays.asList(items);
    }

    private void setItems(List<Object> keysAndValues) throws IOException {
        PDict d = dict(stack.element());
        for (int i = 0; i + 1 < keysAndValues.size(); i += 2) {
            put(d, keysAndValues.get(i), keysAndValues.get(i + 1));
        }
    }

    private void append(List<Object> items) throws IOException {
        PList l = list(stack.element());
        for (Object v : items) {
            add(l, v);
        }
    }

    private int height(Object o) {
        if (o instanceof PList l) {
            return l.height;
        }
        if (o instanceof PDict d) {
            return d.height;
        }
        return objectHeights.getOrDefault(o, 0);
    }

    /** The height a container gets by holding {@code child}; refused past {@link #MAX_DEPTH}. */
    private int heightWith(int current, Object child) throws IOException {
        if (child == MARK) {
            throw bad("a MARK used as a value");
        }
        int h = height(child) + 1;
        if (h > MAX_DEPTH) {
            throw bad("objects are nested deeper than " + MAX_DEPTH + " levels, which no state dict needs");
        }
        return Math.max(current, h);
    }

    private PList tuple(List<Object> items) throws IOException {
        PList t = new PList(true);
        for (Object o : items) {
            t.height = heightWith(t.height, o);
            t.add(o);
        }
        return t;
    }

    private void add(PList l, Object v) throws IOException {
        l.height = heightWith(l.height, v);
        l.add(v);
    }

    private void put(PDict d, Object k, Object v) throws IOException {
        boolean scalarKey = k instanceof String || k instanceof Long || k instanceof Double || k instanceof Boolean
                || k == NONE || (k instanceof PList t && t.tuple && t.height == 1);
        if (!scalarKey) {
            throw bad("a dict key is " + describe(k) + "; only strings, numbers and flat tuples are supported");
        }
        d.height = heightWith(d.height, v);
        d.put(k, v);
    }

    private PDict dict(Object o) throws IOException {
        if (o instanceof PDict d) {
            return d;
        }
        throw bad("SETITEM on " + describe(o));
    }

    private PList list(Object o) throws IOException {
        if (o instanceof PList l && !l.tuple) {
            return l;
        }
        throw bad("APPEND on " + describe(o));
    }

    static String describe(Object o) {
        if (o instanceof PList l) {
            return l.tuple ? "a tuple" : "a list";
        }
        if (o instanceof Map) {
            return "a dict";
        }
        return o == NONE ? "None" : "a " + o.getClass().getSimpleName();
    }

    private Object global(String module, String name) throws IOException {
        String full = module + "." + name;
        boolean ok = full.equals("collections.OrderedDict") || full.equals("torch._utils._rebuild_tensor_v2")
                || full.equals("torch._utils._rebuild_parameter") || full.equals("argparse.Namespace")
                || (module.equals("torch") && STORAGES.contains(name));
        if (!ok) {
            throw bad("it calls the Python global " + (full.length() > 200 ? full.substring(0, 200) + "..." : full)
                    + ", which a state dict never needs (only OrderedDict, tensors, storages and argparse.Namespace"
                    + " are allowed)");
        }
        return new Global(module, name);
    }

    private Object persistent(Object pid) throws IOException {
        if (!(pid instanceof PList t) || t.size() < 5 || !"storage".equals(t.get(0))
                || !(t.get(1) instanceof Global g) || !STORAGES.contains(g.name())
                || !(t.get(2) instanceof String key) || !(t.get(4) instanceof Long numel) || numel < 0) {
            throw bad("unexpected persistent id: a storage reference is ('storage', type, key, location, numel)");
        }
        return new Storage(g.name(), key, numel);
    }

    private Object reduce(Object callable, Object argObject) throws IOException {
        if (!(callable instanceof Global g) || !(argObject instanceof PList args)) {
            throw bad("REDUCE on " + describe(callable));
        }
        return switch (g.name()) {
            case "OrderedDict" -> new PDict();
            case "Namespace" -> new PthReader.PyObject("argparse.Namespace", new LinkedHashMap<>());
            case "_rebuild_tensor_v2" -> {
                if (args.size() < 4 || !(args.get(0) instanceof Storage s) || !(args.get(1) instanceof Long offset)) {
                    throw bad("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
                }
                long[] size = longs(args.get(2), "size");
                long[] stride = longs(args.get(3), "stride");
                if (size.length != stride.length || offset < 0) {
                    throw bad("a tensor has " + size.length + " sizes, " + stride.length + " strides and offset "
                            + offset);
                }
                yield tensors.rebuild(s.type(), s.key(), s.numel(), offset, size, stride);
            }
            case "_rebuild_parameter" -> args.get(0);
            default -> throw bad("cannot call " + g.module() + "." + g.name());
        };
    }

    private long[] longs(Object o, String what) throws IOException {
        if (!(o instanceof PList l) || l.height > 1) {
            throw bad("a tensor " + what + " is " + describe(o) + ", not a tuple of integers");
        }
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(l.get(i) instanceof Long v) || v < 0) {
                throw bad("a tensor " + what + " holds " + l.get(i) + ", not a natural number");
            }
            out[i] = v;
        }
        return out;
    }

    private void build(Object state, Object target) throws IOException {
        if (target instanceof PthReader.PyObject p && state instanceof PDict m) {
            for (Map.Entry<Object, Object> e : m.entrySet()) {
                p.state().put(String.valueOf(e.getKey() == NONE ? null : e.getKey()), e.getValue());
            }
            objectHeights.put(p, heightWith(height(p), m));
        } else if (!(target instanceof PDict)) {
            throw bad("BUILD on " + describe(target));
        }
        // BUILD on an OrderedDict sets attributes such as _metadata: not needed.
    }
}
