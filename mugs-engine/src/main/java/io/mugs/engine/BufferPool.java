package io.mugs.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.indexer.ByteIndexer;
import org.bytedeco.javacpp.indexer.DoubleIndexer;
import org.bytedeco.javacpp.indexer.FloatIndexer;
import org.bytedeco.javacpp.indexer.IntIndexer;
import org.bytedeco.javacpp.indexer.LongIndexer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Off-heap memory of an {@link ExecutionPlan}, handed out per value and returned at a value's last use, so that a
 * later op of the same plan writes into the same memory.
 *
 * <p>By default ({@code mugs.engine.pool=arena}) the values of each data type are carved out of large chunks: a
 * request takes the lowest free run of a chunk that holds it (first fit, aligned to 64 bytes), and a returned run
 * merges with its free neighbours. Values of different lengths then share memory, so the memory the values reach
 * comes within about 1 % of the most bytes alive at one time (ViT-S/16 student: 1.66 GB reached for 1.60 GB alive,
 * against 2.11 GB of buffers for student and teacher with {@code exact}; docs/performance.md, "One arena per plan").
 * On the CPU backend a chunk is 1 GiB of reserved address space (or the request, when larger) of which only the
 * pages the values reach become resident; elsewhere chunks are ND4J buffers that grow with the pool (its size so
 * far, from 1 to 64 MiB). Arrays are views at an offset of their chunk: code that reads an array's memory directly
 * must add {@link INDArray#offset()} ({@link NativeRows} does).
 *
 * <p>{@code mugs.engine.pool=exact} keeps the earlier pool: one buffer per value, reused only for a value of the same
 * type and length.
 *
 * <p>The pool only lives while a plan is built: the plan then keeps every array it was given and reuses them on
 * every run, so a planned step allocates nothing. {@link #close()} frees every buffer the pool ever created.
 */
final class BufferPool implements AutoCloseable {

    /** Whether pools reuse memory only between values of the same length: {@code -Dmugs.engine.pool=exact}. */
    static final boolean EXACT_BY_DEFAULT = parseMode(System.getProperty("mugs.engine.pool", "arena"));

    private static final long ALIGN_BYTES = 64;
    private static final long MIN_CHUNK_BYTES = 1L << 20;
    private static final long MAX_CHUNK_BYTES = 64L << 20;

    /** A chunk of reserved memory (CPU): address space, resident only as far as values reach. */
    private static final long RESERVED_CHUNK_BYTES = 1L << 30;

    private final boolean exact;
    private final boolean reserve;
    private final Map<DataType, List<Chunk>> chunks = new HashMap<>();
    private final Map<DataType, TreeMap<Long, Deque<INDArray>>> free = new HashMap<>();
    private final List<INDArray> owned = new ArrayList<>();
    private long liveBytes;
    private long peakBytes;
    private long totalBytes;

    /** A pool of the mode {@code mugs.engine.pool} selects (the arena unless it says {@code exact}). */
    BufferPool() {
        this(EXACT_BY_DEFAULT, !Backend.isCuda());
    }

    /**
     * An arena pool, or with {@code exact} a pool that reuses a buffer only for a value of the same length; with
     * {@code reserve} the arena's chunks are reserved address space (CPU memory only).
     */
    BufferPool(boolean exact, boolean reserve) {
        this.exact = exact;
        this.reserve = reserve;
    }

    static boolean parseMode(String mode) {
        return switch (mode) {
            case "arena" -> false;
            case "exact" -> true;
            default -> throw new IllegalArgumentException("mugs.engine.pool must be arena or exact, got " + mode);
        };
    }

    /** An array of the given type, shape and order over pooled memory. */
    Slot take(DataType type, long[] shape, char order) {
        return take(type, shape, order, false);
    }

    /**
     * As {@link #take(DataType, long[], char)}; a {@code longLived} value (kept to the end of the pass, e.g. a
     * requested gradient) goes into the highest free run below the arena's high-water mark that holds it, at that
     * run's end, so that long-lived values gather near the top and leave the low free runs whole for the values that
     * come and go (first fit when no such run holds it).
     */
    Slot take(DataType type, long[] shape, char order, boolean longLived) {
        long length = Shape.lengthOf(shape);
        Slot slot = exact ? takeExact(type, length, shape, order)
                : takeFromChunk(type, length, shape, order, longLived);
        liveBytes += bytes(type, slot.span());
        peakBytes = Math.max(peakBytes, liveBytes);
        return slot;
    }

    private Slot takeFromChunk(DataType type, long length, long[] shape, char order, boolean longLived) {
        long align = Math.max(1, ALIGN_BYTES / type.width());
        long span = Math.max(align, (length + align - 1) / align * align);
        List<Chunk> ofType = chunks.computeIfAbsent(type, t -> new ArrayList<>());
        if (longLived) {
            for (Chunk c : ofType) {
                long at = c.takeHigh(span, align);
                if (at >= 0) {
                    return new Slot(c, at, span, view(c.memory, at, shape, order, type));
                }
            }
        }
        for (Chunk c : ofType) {
            long at = c.take(span);
            if (at >= 0) {
                return new Slot(c, at, span, view(c.memory, at, shape, order, type));
            }
        }
        long chunkBytes = reserve ? RESERVED_CHUNK_BYTES
                : Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, totalBytes));
        Chunk c = new Chunk(type, Math.max(span, chunkBytes / type.width() / align * align), reserve);
        ofType.add(c);
        totalBytes += bytes(type, c.capacity);
        long at = c.take(span);
        return new Slot(c, at, span, view(c.memory, at, shape, order, type));
    }

    private Slot takeExact(DataType type, long length, long[] shape, char order) {
        TreeMap<Long, Deque<INDArray>> byLength = free.get(type);
        Deque<INDArray> same = byLength == null ? null : byLength.get(length);
        INDArray base = same == null ? null : same.poll();
        if (same != null && same.isEmpty()) {
            byLength.remove(length);
        }
        if (base == null) {
            base = Nd4j.createUninitializedDetached(type, length);
            owned.add(base);
            totalBytes += bytes(type, length);
        }
        return new Slot(null, 0, length, view(base, 0, shape, order, type));
    }

    private static INDArray view(INDArray memory, long offset, long[] shape, char order, DataType type) {
        return Nd4j.create(memory.data(), shape, Nd4j.getStrides(shape, order), offset, order, type);
    }

    /** Returns memory taken with {@link #take}. */
    void give(Slot slot) {
        INDArray array = slot.array();
        liveBytes -= bytes(array.dataType(), slot.span());
        if (slot.chunk() != null) {
            slot.chunk().give(slot.offset(), slot.span());
            return;
        }
        free.computeIfAbsent(array.dataType(), t -> new TreeMap<>())
                .computeIfAbsent(slot.span(), k -> new ArrayDeque<>())
                .add(Nd4j.create(array.data(), new long[] {slot.span()}, new long[] {1}, 0, 'c', array.dataType()));
    }

    /** Bytes held by values alive at the same time, at most, while the plan was built. */
    long peakBytes() {
        return peakBytes;
    }

    /** Bytes of every buffer the pool created (with reserved chunks: the address space reserved). */
    long totalBytes() {
        return totalBytes;
    }

    /**
     * Bytes of the pool's memory the process holds: reserved chunks up to their high-water marks (the pages values
     * reached), other chunks and the exact pool's buffers whole.
     */
    long residentBytes() {
        if (exact) {
            return totalBytes;
        }
        long sum = 0;
        for (List<Chunk> ofType : chunks.values()) {
            for (Chunk c : ofType) {
                sum += bytes(c.memory.dataType(), reserve ? c.top : c.capacity);
            }
        }
        return sum;
    }

    private static long bytes(DataType type, long length) {
        return length * type.width();
    }

    @Override
    public void close() {
        for (INDArray a : owned) {
            a.close();
        }
        owned.clear();
        free.clear();
        chunks.values().forEach(ofType -> ofType.forEach(Chunk::close));
        chunks.clear();
    }

    /**
     * Pooled memory: in the arena its chunk, offset and span (elements, the length rounded up to the alignment); in
     * the exact pool no chunk, offset 0 and the length. {@code array} is the shaped view the value uses.
     */
    record Slot(Chunk chunk, long offset, long span, INDArray array) {
    }

    /**
     * One buffer and its free runs (offset to length, in elements, merged with free neighbours). On the CPU backend
     * its memory is reserved with {@code malloc} and wrapped, not zeroed: pages the values never reach stay out of
     * the process's resident memory (ND4J's own allocation writes every byte). Elsewhere it is a detached ND4J buffer.
     */
    static final class Chunk {
        final INDArray memory;
        final long capacity;
        private final Pointer reserved;
        private final TreeMap<Long, Long> free = new TreeMap<>();
        private long top;

        Chunk(DataType type, long capacity, boolean reserve) {
            this.capacity = capacity;
            if (reserve) {
                reserved = Pointer.malloc(capacity * type.width());
                if (reserved == null || reserved.isNull()) {
                    throw new OutOfMemoryError("could not reserve " + capacity * type.width()
                            + " bytes for the engine's buffers: lower the batch or the model size");
                }
                DataBuffer data = switch (type) {
                    case FLOAT -> {
                        FloatPointer p = new FloatPointer(reserved).capacity(capacity);
                        yield Nd4j.createBuffer(p, type, capacity, FloatIndexer.create(p));
                    }
                    case DOUBLE -> {
                        DoublePointer p = new DoublePointer(reserved).capacity(capacity);
                        yield Nd4j.createBuffer(p, type, capacity, DoubleIndexer.create(p));
                    }
                    case INT -> {
                        IntPointer p = new IntPointer(reserved).capacity(capacity);
                        yield Nd4j.createBuffer(p, type, capacity, IntIndexer.create(p));
                    }
                    case LONG -> {
                        LongPointer p = new LongPointer(reserved).capacity(capacity);
                        yield Nd4j.createBuffer(p, type, capacity, LongIndexer.create(p));
                    }
                    default -> {
                        BytePointer p = new BytePointer(reserved).capacity(capacity * type.width());
                        yield Nd4j.createBuffer(p, type, capacity, ByteIndexer.create(p));
                    }
                };
                memory = Nd4j.create(data, new long[] {capacity}, new long[] {1}, 0, 'c', type);
            } else {
                reserved = null;
                memory = Nd4j.createUninitializedDetached(type, capacity);
            }
            free.put(0L, capacity);
        }

        /** The offset of the lowest free run of at least {@code span} elements, now taken; -1 when none holds it. */
        long take(long span) {
            Long at = null;
            for (Map.Entry<Long, Long> run : free.entrySet()) {
                if (run.getValue() >= span) {
                    at = run.getKey();
                    break;
                }
            }
            if (at == null) {
                return -1;
            }
            long runLength = free.remove(at);
            if (runLength > span) {
                free.put(at + span, runLength - span);
            }
            top = Math.max(top, at + span);
            return at;
        }

        /**
         * The offset of {@code span} elements at the end of the highest free run that holds them and lies below the
         * high-water mark (aligned to {@code align}), now taken; -1 when none does.
         */
        long takeHigh(long span, long align) {
            for (Map.Entry<Long, Long> run : free.descendingMap().entrySet()) {
                long start = run.getKey();
                long end = start + run.getValue();
                if (end > top) {
                    continue;
                }
                long at = (end - span) / align * align;
                if (at < start) {
                    continue;
                }
                free.remove(start);
                if (at > start) {
                    free.put(start, at - start);
                }
                if (at + span < end) {
                    free.put(at + span, end - at - span);
                }
                return at;
            }
            return -1;
        }

        /** Frees {@code [offset, offset + span)}, merging it with the free runs it touches. */
        void give(long offset, long span) {
            long start = offset;
            long end = offset + span;
            Map.Entry<Long, Long> before = free.floorEntry(offset);
            if (before != null && before.getKey() + before.getValue() == offset) {
                start = before.getKey();
                free.remove(start);
            }
            Long after = free.get(end);
            if (after != null) {
                free.remove(end);
                end += after;
            }
            free.put(start, end - start);
        }

        void close() {
            if (reserved != null) {
                Pointer.free(reserved);
            } else {
                memory.close();
            }
        }
    }
}
