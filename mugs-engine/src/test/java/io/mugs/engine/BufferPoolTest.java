package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The pool's two modes: first fit in chunks with merged free runs (the default), and reuse by exact length. */
class BufferPoolTest {

    @Test
    void arenaTakesTheLowestFreeRunAlignedTo64Bytes() {
        try (BufferPool pool = new BufferPool(false, true)) {
            BufferPool.Slot a = pool.take(DataType.FLOAT, new long[] {2, 5}, 'c');
            BufferPool.Slot b = pool.take(DataType.FLOAT, new long[] {20}, 'c');
            assertEquals(0, a.offset());
            assertEquals(16, a.span(), "10 floats rounded up to 16 (64 bytes)");
            assertEquals(16, b.offset());
            assertEquals(32, b.span());
            assertSame(a.chunk(), b.chunk());
            assertEquals(16, b.array().offset(), "the array is a view at the run's offset");
            assertArrayEquals(new long[] {2, 5}, a.array().shape());

            pool.give(a);
            BufferPool.Slot c = pool.take(DataType.FLOAT, new long[] {17}, 'c');
            assertEquals(48, c.offset(), "17 floats need 32: the 16-float hole at 0 does not hold them");
            BufferPool.Slot d = pool.take(DataType.FLOAT, new long[] {16}, 'c');
            assertEquals(0, d.offset(), "16 floats fit the hole");

            BufferPool.Slot e = pool.take(DataType.DOUBLE, new long[] {3}, 'c');
            assertNotSame(a.chunk(), e.chunk(), "each data type has its own chunks");
            assertEquals(8, e.span(), "3 doubles rounded up to 8 (64 bytes)");
            assertEquals(4L * (48 + 32), pool.residentBytes() - 8L * 8, "high-water marks: 80 floats, 8 doubles");
            assertEquals(2L << 30, pool.totalBytes(), "two chunks of reserved address space, 1 GiB each");
        }
    }

    @Test
    void longLivedValuesGoToTheHighestFreeRunBelowTheHighWaterMark() {
        try (BufferPool pool = new BufferPool(false, true)) {
            BufferPool.Slot a = pool.take(DataType.FLOAT, new long[] {64}, 'c');
            BufferPool.Slot b = pool.take(DataType.FLOAT, new long[] {64}, 'c');
            BufferPool.Slot c = pool.take(DataType.FLOAT, new long[] {64}, 'c');
            pool.take(DataType.FLOAT, new long[] {16}, 'c');                      // top at 208
            pool.give(a);
            pool.give(c);                                                          // free: [0, 64), [128, 192)
            BufferPool.Slot kept = pool.take(DataType.FLOAT, new long[] {16}, 'c', true);
            assertEquals(176, kept.offset(), "the end of the highest free run below the top, [128, 192)");
            BufferPool.Slot passing = pool.take(DataType.FLOAT, new long[] {64}, 'c');
            assertEquals(0, passing.offset(), "the low run stays whole for first fit");
            BufferPool.Slot second = pool.take(DataType.FLOAT, new long[] {48}, 'c', true);
            assertEquals(128, second.offset(), "what is left of [128, 176)");
            assertEquals(4L * 208, pool.residentBytes(), "the high-water mark did not move");
            BufferPool.Slot wide = pool.take(DataType.FLOAT, new long[] {32}, 'c', true);
            assertEquals(208, wide.offset(), "no free run below the top holds it: first fit, above");
            assertEquals(4L * 240, pool.residentBytes());
            assertEquals(64, b.offset());
        }
    }

    @Test
    void freedNeighboursMergeIntoOneRun() {
        try (BufferPool pool = new BufferPool(false, true)) {
            BufferPool.Slot a = pool.take(DataType.FLOAT, new long[] {16}, 'c');
            BufferPool.Slot b = pool.take(DataType.FLOAT, new long[] {16}, 'c');
            BufferPool.Slot c = pool.take(DataType.FLOAT, new long[] {16}, 'c');
            pool.take(DataType.FLOAT, new long[] {16}, 'c');
            pool.give(a);
            pool.give(c);
            pool.give(b);
            BufferPool.Slot merged = pool.take(DataType.FLOAT, new long[] {48}, 'c');
            assertEquals(0, merged.offset(), "a, b and c freed in any order make one run of 48 at 0");
            assertEquals(4L * 64, pool.residentBytes());
        }
    }

    @Test
    void valuesAliveAtOnceNeverShareMemoryAndTheirDataLandsAtTheirOffset() {
        Random random = new Random(7);
        try (BufferPool pool = new BufferPool(false, true)) {
            List<BufferPool.Slot> live = new ArrayList<>();
            long liveBytes = 0;
            long peak = 0;
            for (int i = 0; i < 400; i++) {
                if (!live.isEmpty() && random.nextInt(3) == 0) {
                    BufferPool.Slot s = live.remove(random.nextInt(live.size()));
                    liveBytes -= 4 * s.span();
                    pool.give(s);
                    continue;
                }
                long n = 1 + random.nextInt(random.nextBoolean() ? 40 : 40_000);
                BufferPool.Slot s = pool.take(DataType.FLOAT, new long[] {n}, 'c');
                assertTrue(s.span() >= n && s.span() % 16 == 0 && s.offset() % 16 == 0);
                for (BufferPool.Slot o : live) {
                    boolean apart = o.chunk() != s.chunk() || o.offset() + o.span() <= s.offset()
                            || s.offset() + s.span() <= o.offset();
                    assertTrue(apart, "runs [" + o.offset() + ", +" + o.span() + ") and [" + s.offset() + ", +"
                            + s.span() + ") overlap");
                }
                s.array().assign(i);
                assertEquals(i, s.chunk().memory.getFloat(s.offset() + n - 1), 0f);
                live.add(s);
                liveBytes += 4 * s.span();
                peak = Math.max(peak, liveBytes);
            }
            assertEquals(peak, pool.peakBytes());
            for (BufferPool.Slot s : live) {
                INDArray a = s.array();
                assertEquals(a.getFloat(0), s.chunk().memory.getFloat(s.offset()), 0f, "still its own value");
            }
        }
    }

    @Test
    void unreservedChunksGrowWithThePoolAndALargerRequestGetsItsOwn() {
        try (BufferPool pool = new BufferPool(false, false)) {
            BufferPool.Slot small = pool.take(DataType.FLOAT, new long[] {16}, 'c');
            BufferPool.Slot big = pool.take(DataType.FLOAT, new long[] {1 << 19}, 'c');
            assertNotSame(small.chunk(), big.chunk(), "2 MiB do not fit the first 1 MiB chunk");
            assertEquals(1 << 19, big.chunk().capacity);
            assertEquals(3L << 20, pool.totalBytes());
            BufferPool.Slot next = pool.take(DataType.FLOAT, new long[] {1 << 18}, 'c');
            assertNotSame(small.chunk(), next.chunk(), "1 MiB does not fit the 1 MiB - 64 B left in the first chunk");
            assertNotSame(big.chunk(), next.chunk());
            assertEquals(3L << 20, next.chunk().capacity * 4, "a new chunk as large as the pool so far");
            assertEquals(6L << 20, pool.totalBytes());
            assertEquals(pool.totalBytes(), pool.residentBytes(), "unreserved chunks are resident whole");
        }
    }

    @Test
    void exactModeReusesOnlyTheSameLength() {
        try (BufferPool pool = new BufferPool(true, false)) {
            BufferPool.Slot a = pool.take(DataType.FLOAT, new long[] {10, 10}, 'c');
            a.array().assign(5);
            pool.give(a);
            BufferPool.Slot b = pool.take(DataType.FLOAT, new long[] {60}, 'c');
            assertFalse(b.array().data() == a.array().data(), "a 100-float buffer is not reused for 60");
            BufferPool.Slot c = pool.take(DataType.FLOAT, new long[] {4, 25}, 'c');
            assertEquals(5f, c.array().getFloat(99), 0f, "same length, other shape: the same memory");
            assertEquals(4 * (100 + 60), pool.totalBytes());
            assertEquals(pool.totalBytes(), pool.residentBytes());
        }
    }

    @Test
    void anUnknownModeIsRefusedWithTheChoices() {
        var e = assertThrows(IllegalArgumentException.class, () -> BufferPool.parseMode("slack"));
        assertEquals("mugs.engine.pool must be arena or exact, got slack", e.getMessage());
        assertTrue(BufferPool.parseMode("exact"));
        assertFalse(BufferPool.parseMode("arena"));
    }
}
