package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The pool's reuse rule: the smallest free buffer of the type that holds the request within the slack. */
class BufferPoolTest {

    @Test
    void exactLengthsOnlyByDefault() {
        try (BufferPool pool = new BufferPool(1)) {
            BufferPool.Slot a = pool.take(DataType.FLOAT, new long[] {10, 10}, 'c');
            pool.give(a);
            BufferPool.Slot b = pool.take(DataType.FLOAT, new long[] {60}, 'c');
            assertNotSame(a.base(), b.base(), "a 100-float buffer is not reused for 60 with slack 1");
            BufferPool.Slot c = pool.take(DataType.FLOAT, new long[] {4, 25}, 'c');
            assertSame(a.base(), c.base(), "same length, other shape");
            assertEquals(4 * (100 + 60), pool.totalBytes());
        }
    }

    @Test
    void withSlackTheSmallestFittingBufferIsAViewOfItsFirstElements() {
        try (BufferPool pool = new BufferPool(2)) {
            BufferPool.Slot big = pool.take(DataType.FLOAT, new long[] {200}, 'c');
            BufferPool.Slot mid = pool.take(DataType.FLOAT, new long[] {100}, 'c');
            BufferPool.Slot other = pool.take(DataType.DOUBLE, new long[] {70}, 'c');
            pool.give(big);
            pool.give(mid);
            pool.give(other);
            BufferPool.Slot s = pool.take(DataType.FLOAT, new long[] {6, 10}, 'c');
            assertSame(mid.base(), s.base(), "60 floats: the 100-float buffer, not the 200 nor the DOUBLE one");
            INDArray view = s.array();
            assertArrayEquals(new long[] {6, 10}, view.shape());
            view.assign(3);
            assertEquals(3f, mid.base().getFloat(59), 0f);
            BufferPool.Slot t = pool.take(DataType.FLOAT, new long[] {90}, 'c');
            assertNotSame(big.base(), t.base(), "200 > 2 x 90: a new buffer");
            assertEquals(4 * (200 + 100 + 90) + 8 * 70, pool.totalBytes());
            BufferPool.Slot u = pool.take(DataType.FLOAT, new long[] {100}, 'c');
            assertSame(big.base(), u.base(), "200 <= 2 x 100");
        }
        assertThrows(IllegalArgumentException.class, () -> new BufferPool(0.5));
    }
}
