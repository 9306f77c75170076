package io.mugs.io;

import static io.mugs.io.HostileFiles.floats;
import static io.mugs.io.HostileFiles.refused;
import static io.mugs.io.HostileFiles.stateDict;
import static io.mugs.io.HostileFiles.zip;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.mugs.io.HostileFiles.Pickle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Fault injection for {@link PthReader}: each hostile .pth is refused with one line and little memory. */
class HostilePthTest {

    @TempDir
    Path dir;

    private Path pth(String name, byte[] pickle, Map<String, byte[]> storages, boolean deflate) throws Exception {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        storages.forEach((k, v) -> entries.put("archive/data/" + k, v));
        entries.put("archive/version", "3\n".getBytes());
        return zip(dir.resolve(name), entries, deflate);
    }

    private Path pickleOnly(String name, byte[] pickle) throws Exception {
        return pth(name, pickle, Map.of(), false);
    }

    @Test
    void aWellFormedHandMadeCheckpointReads() throws Exception {
        // A 2x3 view with strides (1, 2) of a 6-element storage is its transpose: [[0, 2, 4], [1, 3, 5]].
        Path file = pth("good.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 6, 0, new long[] {2, 3},
                new long[] {1, 2})), Map.of("0", floats(0, 1, 2, 3, 4, 5)), false);
        INDArray w = (INDArray) ((Map<?, ?>) PthReader.read(file)).get("w");
        assertArrayEquals(new long[] {2, 3}, w.shape());
        assertArrayEquals(new float[] {0, 2, 4, 1, 3, 5}, w.dup('c').data().asFloat());
    }

    @Test
    void hugeDeclaredStorageIsRefusedBeforeAllocation() throws Exception {
        long n = 1L << 30;
        Path lying = pth("huge-storage.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", n, 0,
                new long[] {n}, new long[] {1})), Map.of("0", floats(1, 2, 3, 4)), false);
        refused("pth: storage declares 2^30 floats, holds 16 bytes", lying,
                "declares 1073741824 FloatStorage elements but its zip entry holds 16 bytes",
                () -> PthReader.read(lying));

        Path view = pth("huge-view.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 4, 0,
                new long[] {n}, new long[] {0})), Map.of("0", floats(1, 2, 3, 4)), false);
        refused("pth: 2^30-element view (stride 0) of a 4-element storage", view,
                "views storage data/0 of only 4 elements", () -> PthReader.read(view));

        Path past = pth("past-end.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 4, 3,
                new long[] {2}, new long[] {1})), Map.of("0", floats(1, 2, 3, 4)), false);
        refused("pth: view reaches past its storage", past, "reaches element 4 of storage data/0, which holds 4",
                () -> PthReader.read(past));
    }

    @Test
    void deflateBombsAreRefused() throws Exception {
        int n = 8 << 20;                                   // 8 Mi floats: 32 MiB of zeros, about 32 KiB deflated
        byte[] zeros = new byte[4 * n];
        Path bomb = pth("bomb.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", n, 0, new long[] {n},
                new long[] {1})), Map.of("0", zeros), true);
        refused("pth: deflate bomb (32 MiB of zeros, declared)", bomb, "which would inflate the file's entries past 4x",
                () -> PthReader.read(bomb));

        Path liar = pth("lying-bomb.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 256, 0,
                new long[] {256}, new long[] {1})), Map.of("0", zeros), true);
        HostileFiles.patchDeclaredSize(liar, "archive/data/0", 1024);
        refused("pth: deflate bomb declaring 1 KiB", liar, "inflates past its declared 1024 bytes",
                () -> PthReader.read(liar));
    }

    @Test
    void overlappingViewsCannotMultiplyTheStorage() throws Exception {
        int n = 4096;
        Pickle p = new Pickle().op(0x80, 2, '}', '(');
        for (int i = 0; i < 1000; i++) {
            p.string("w" + i).tensor("FloatStorage", "0", n, 0, new long[] {n}, new long[] {1});
        }
        Path file = pth("views.pth", p.op('u', '.').bytes(), Map.of("0", new byte[4 * n]), false);
        refused("pth: 1000 tensors viewing one 16 KiB storage", file, "more than twice over",
                () -> PthReader.read(file));
    }

    @Test
    void selfReferencesAndDeepNestingAreRefused() throws Exception {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: a list that holds itself (10 bytes with the header).
        Path self = pickleOnly("self.pth", new Pickle().op(0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.').bytes());
        refused("pth: self-referencing list", self, "a list contains itself", () -> PthReader.read(self));

        Pickle dictSelf = new Pickle().op(0x80, 2, '}', 'q', 0).string("me").op('h', 0, 's', '.');
        Path dict = pickleOnly("dict-self.pth", dictSelf.bytes());
        refused("pth: self-referencing dict", dict, "a dict contains itself", () -> PthReader.read(dict));

        int depth = 100_000;
        Pickle lists = new Pickle().op(0x80, 2);
        for (int i = 0; i < depth; i++) {
            lists.op(']');
        }
        for (int i = 1; i < depth; i++) {
            lists.op('a');
        }
        Path nested = pickleOnly("nested-lists.pth", lists.op('.').bytes());
        refused("pth: 100k nested lists", nested, "the pickle stack grows past 10000 entries",
                () -> PthReader.read(nested));

        Pickle tuples = new Pickle().op(0x80, 2, 'N');
        for (int i = 0; i < depth; i++) {
            tuples.op(0x85);
        }
        Path deep = pickleOnly("nested-tuples.pth", tuples.op('.').bytes());
        refused("pth: 100k nested tuples", deep, "nested deeper than 256 levels", () -> PthReader.read(deep));

        // Lists nested through the memo after they were added: only the final walk sees the depth.
        int k = 300;
        Pickle memo = new Pickle().op(0x80, 2);
        for (int i = 0; i < k; i++) {
            memo.op(']', 'r').int32(i);
        }
        for (int i = 0; i + 1 < k; i++) {
            memo.op('j').int32(i).op('j').int32(i + 1).op('a');
        }
        Path grown = pickleOnly("memo-chain.pth", memo.op('j').int32(0).op('.').bytes());
        refused("pth: 300-deep chain built through the memo", grown, "nested deeper than 256 levels",
                () -> PthReader.read(grown));
    }

    @Test
    void lyingLengthsAndTruncationAreRefused() throws Exception {
        Path string = pickleOnly("long-string.pth", new Pickle().op(0x80, 2, 'X').int32(Integer.MAX_VALUE).op('.')
                .bytes());
        refused("pth: string declaring 2 GiB", string, "a string of 2147483647 bytes runs past the end of the pickle",
                () -> PthReader.read(string));

        Path cut = pickleOnly("cut.pth", Arrays.copyOf(stateDict("w", p -> p.tensor("FloatStorage", "0", 4, 0,
                new long[] {4}, new long[] {1})), 40));
        refused("pth: pickle cut short", cut, "the pickle is truncated or malformed", () -> PthReader.read(cut));

        Path missing = pickleOnly("no-storage.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 4, 0,
                new long[] {4}, new long[] {1})));
        refused("pth: storage entry missing", missing, "lacks the tensor storage data/0",
                () -> PthReader.read(missing));

        Path code = pickleOnly("code.pth", new Pickle().op(0x80, 2).global("os", "system").string("echo hi")
                .op(0x85, 'R', '.').bytes());
        refused("pth: code-running global", code, "calls the Python global os.system",
                () -> PthReader.read(code));

        byte[] good = Files.readAllBytes(pth("whole.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", 4, 0,
                new long[] {4}, new long[] {1})), Map.of("0", floats(1, 2, 3, 4)), false));
        Path half = dir.resolve("half.pth");
        Files.write(half, Arrays.copyOf(good, good.length / 2));
        refused("pth: zip cut in half", half, "not a readable zip file", () -> PthReader.read(half));
    }

    @Test
    void tupleKeysAndNestedPlainDataStillRead() throws Exception {
        // {"args": {(1, 2): [None, 3.5]}} : flat tuple keys, None and floats survive.
        Pickle p = new Pickle().op(0x80, 2, '}').string("args").op('}', 'K', 1, 'K', 2, 0x86, ']', 'N', 'a', 'G');
        p.op(0x40, 0x0c, 0, 0, 0, 0, 0, 0).op('a', 's', 's', '.');
        Map<?, ?> root = (Map<?, ?>) PthReader.read(pickleOnly("plain.pth", p.bytes()));
        Map<?, ?> args = (Map<?, ?>) root.get("args");
        assertEquals(Arrays.asList(null, 3.5), args.get(List.of(1L, 2L)));
    }
}
