package io.mugs.eval;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * NumPy {@code .npy} files (format version 1.0, little-endian, C order) for features ({@code <f4}) and labels
 * ({@code <i4}), readable with {@code numpy.load}; and CSV for spreadsheet and pandas users. Writes are atomic.
 *
 * <pre>{@code
 * NpyFiles.writeFloat(Path.of("features.npy"), features);    // np.load("features.npy").shape == (n, d)
 * NpyFiles.writeInt(Path.of("labels.npy"), labels);
 * }</pre>
 */
public final class NpyFiles {

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([0-9,\\s]*)\\)");
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']*)'");

    private NpyFiles() {
    }

    /** Writes a 2-D float array as {@code <f4}. */
    public static void writeFloat(Path path, INDArray a) throws IOException {
        float[] v = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
        ByteBuffer body = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        body.asFloatBuffer().put(v);
        write(path, "<f4", a.shape(), body.array());
    }

    /** Writes a vector of ints as {@code <i4}. */
    public static void writeInt(Path path, int[] v) throws IOException {
        ByteBuffer body = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        body.asIntBuffer().put(v);
        write(path, "<i4", new long[] {v.length}, body.array());
    }

    private static void write(Path path, String descr, long[] shape, byte[] body) throws IOException {
        StringBuilder s = new StringBuilder();
        for (long d : shape) {
            s.append(d).append(", ");
        }
        String shapeText = shape.length == 1 ? shape[0] + "," : s.substring(0, s.length() - 2);
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shapeText + "), }";
        int total = MAGIC.length + 2 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        byte[] header = (dict + " ".repeat(pad) + "\n").getBytes(StandardCharsets.US_ASCII);
        ByteBuffer out = ByteBuffer.allocate(MAGIC.length + 2 + header.length + body.length)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).putShort((short) header.length).put(header).put(body);
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
        Files.write(tmp, out.array());
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Reads a {@code <f4} or {@code <i4} .npy file written by NumPy or by this class. */
    public static INDArray read(Path path) throws IOException {
        byte[] all = Files.readAllBytes(path);
        if (all.length < 10 || !Arrays.equals(Arrays.copyOf(all, 6), Arrays.copyOf(MAGIC, 6))) {
            throw new IOException(path + " is not a .npy file");
        }
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int major = all[6];
        int headerLen = major == 1 ? (b.getShort(8) & 0xffff) : b.getInt(8);
        int start = major == 1 ? 10 : 12;
        String header = new String(all, start, headerLen, StandardCharsets.US_ASCII);
        Matcher sm = SHAPE.matcher(header);
        Matcher dm = DESCR.matcher(header);
        if (!sm.find() || !dm.find() || header.contains("'fortran_order': True")) {
            throw new IOException(path + ": unsupported .npy header " + header.trim());
        }
        long[] shape = Arrays.stream(sm.group(1).split(",")).map(String::trim).filter(x -> !x.isEmpty())
                .mapToLong(Long::parseLong).toArray();
        int n = (int) Arrays.stream(shape).reduce(1, (x, y) -> x * y);
        b.position(start + headerLen);
        switch (dm.group(1)) {
            case "<f4" -> {
                float[] v = new float[n];
                b.asFloatBuffer().get(v);
                return Nd4j.create(v, shape, DataType.FLOAT);
            }
            case "<i4" -> {
                int[] v = new int[n];
                b.asIntBuffer().get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
            default -> throw new IOException(path + ": dtype " + dm.group(1) + " is not supported (use <f4 or <i4)");
        }
    }

    /** Writes features with a leading label column as CSV ({@code label,f0,f1,...}). */
    public static void writeCsv(Path path, INDArray features, int[] labels) throws IOException {
        StringBuilder sb = new StringBuilder("label");
        for (int j = 0; j < features.size(1); j++) {
            sb.append(",f").append(j);
        }
        sb.append('\n');
        float[] v = features.castTo(DataType.FLOAT).dup('c').data().asFloat();
        int d = (int) features.size(1);
        for (int i = 0; i < labels.length; i++) {
            sb.append(labels[i]);
            for (int j = 0; j < d; j++) {
                sb.append(',').append(v[i * d + j]);
            }
            sb.append('\n');
        }
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
        Files.writeString(tmp, sb);
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
