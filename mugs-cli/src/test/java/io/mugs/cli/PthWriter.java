package io.mugs.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Writes a checkpoint as {@code torch.save} lays it out (a zip of {@code archive/data.pkl}, a protocol-2 pickle, and
 * one stored entry per tensor storage): {@code {"teacher": {"module.<name>": tensor, ...}}}, the shape of an official
 * Mugs training checkpoint. For tests only: float32, contiguous tensors.
 */
final class PthWriter {

    private final ByteArrayOutputStream pickle = new ByteArrayOutputStream();

    private PthWriter() {
    }

    static Path write(Path file, Map<String, INDArray> tensors) throws IOException {
        PthWriter w = new PthWriter();
        w.op(0x80, 2, '}', '(').string("teacher").op('}', '(');
        int key = 0;
        try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(file))) {
            for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
                INDArray a = e.getValue();
                long[] shape = a.shape();
                long[] stride = new long[shape.length];
                long s = 1;
                for (int i = shape.length - 1; i >= 0; i--) {
                    stride[i] = s;
                    s *= shape[i];
                }
                w.string("module." + e.getKey());
                w.global("torch._utils", "_rebuild_tensor_v2").op('(');
                w.op('(').string("storage").global("torch", "FloatStorage").string(Integer.toString(key))
                        .string("cpu").integer(a.length()).op('t');
                w.op('Q').integer(0).ints(shape).ints(stride).op(0x89);
                w.global("collections", "OrderedDict").op(')', 'R');
                w.op('t', 'R');
                float[] v = a.dup('c').data().asFloat();
                ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float x : v) {
                    b.putFloat(x);
                }
                stored(zip, "archive/data/" + key++, b.array());
            }
            w.op('u', 'u', '.');
            stored(zip, "archive/data.pkl", w.pickle.toByteArray());
        }
        return file;
    }

    private static void stored(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry z = new ZipEntry(name);
        CRC32 crc = new CRC32();
        crc.update(data);
        z.setMethod(ZipEntry.STORED);
        z.setSize(data.length);
        z.setCompressedSize(data.length);
        z.setCrc(crc.getValue());
        zip.putNextEntry(z);
        zip.write(data);
        zip.closeEntry();
    }

    private PthWriter op(int... codes) {
        for (int c : codes) {
            pickle.write(c);
        }
        return this;
    }

    private PthWriter string(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        op('X');
        pickle.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
        pickle.writeBytes(b);
        return this;
    }

    private PthWriter integer(long v) {
        op('J');
        pickle.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(Math.toIntExact(v)).array());
        return this;
    }

    private PthWriter global(String module, String name) {
        op('c');
        pickle.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        return this;
    }

    private PthWriter ints(long... v) {
        op('(');
        for (long x : v) {
            integer(x);
        }
        return op('t');
    }
}
