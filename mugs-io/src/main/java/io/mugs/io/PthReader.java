package io.mugs.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Reads PyTorch checkpoint files ({@code torch.save}, the zip format of PyTorch 1.6 and later) without executing
 * code: the pickle is interpreted by a small virtual machine ({@link PickleMachine}) that knows only the opcodes
 * and the allow-listed globals a state dict needs ({@code collections.OrderedDict},
 * {@code torch._utils._rebuild_tensor_v2} and {@code _rebuild_parameter}, the storage types, and
 * {@code argparse.Namespace} as plain data). Any other global, such as {@code os.system} or
 * {@code builtins.eval}, is rejected with an error naming it.
 *
 * <p>The file is untrusted, so every declared size is checked before memory is taken for it: zip entries are read
 * up to their declared size and no further, and all entries together may inflate to at most
 * {@value #INFLATION_BOUND} times the file's size plus 1 MiB ({@code torch.save} stores entries uncompressed);
 * a storage must hold exactly the elements its reference declares; a tensor view must lie inside its storage and
 * hold no more elements than it; all tensors together may hold at most twice the elements of the storages they
 * view (plus 65,536). Every failure is an {@link IOException} naming the file and the problem.
 *
 * <p>Tensors are returned as FLOAT arrays (fp16/bf16/fp64 storages are converted), honouring storage offsets and
 * strides (views). Nested dicts stay nested: the result is the unpickled object with tensors as {@link INDArray}s,
 * dicts as {@code Map}, lists and tuples as {@code List}, numbers as {@code Long}/{@code Double}.
 *
 * <pre>{@code
 * Object root = PthReader.read(Path.of("mugs_vit_small_backbone.pth"));
 * Map<String, INDArray> weights = OfficialWeights.backboneStateDict(root);
 * }</pre>
 */
public final class PthReader {

    /** All zip entries together may inflate to at most this many times the file's size (plus 1 MiB). */
    public static final int INFLATION_BOUND = 4;

    private PthReader() {
    }

    /** Plain-data stand-in for an allowed Python object (argparse.Namespace). */
    public record PyObject(String type, Map<String, Object> state) {
    }

    /** An error this reader raised itself (already names the file). */
    private static final class Refused extends IOException {
        Refused(Path file, String what) {
            super("Refusing to load " + file + ": " + what);
        }
    }

    /**
     * Reads a checkpoint.
     *
     * @throws IOException naming the file and the problem for truncated, legacy, oversized or disallowed content
     */
    public static Object read(Path file) throws IOException {
        long fileSize = Files.size(file);
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new IOException(file + " is not a readable zip file (" + e.getMessage() + "); legacy (pre-1.6) "
                    + "checkpoints must be re-saved with a current torch.save", e);
        }
        try (zip) {
            return new Reader(file, zip, fileSize).read();
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().startsWith("Refusing to load")) {
                throw e;
            }
            throw new IOException("Refusing to load " + file + ": a zip entry is damaged (" + e.getMessage() + ")", e);
        }
    }

    /** One read of one file: the zip, the inflation budget and the storages loaded so far. */
    private static final class Reader implements PickleMachine.TensorBuilder {
        private final Path file;
        private final ZipFile zip;
        private final long inflationLimit;
        private final Map<String, byte[]> storages = new HashMap<>();
        private String base;
        private long inflated;
        private long storageElements;
        private long tensorElements;

        Reader(Path file, ZipFile zip, long fileSize) {
            this.file = file;
            this.zip = zip;
            this.inflationLimit = INFLATION_BOUND * fileSize + (1 << 20);
        }

        Object read() throws IOException {
            ZipEntry pkl = null;
            for (var it = zip.entries().asIterator(); it.hasNext(); ) {
                ZipEntry e = it.next();
                boolean shorter = pkl == null || e.getName().length() < pkl.getName().length();
                if (e.getName().endsWith("data.pkl") && shorter) {
                    pkl = e;
                }
            }
            if (pkl == null) {
                throw new Refused(file, "it has no data.pkl: not a PyTorch zip checkpoint");
            }
            base = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            return new PickleMachine(entry(pkl), this, file).run();
        }

        /** The entry's bytes: at most its declared size, within the budget, and exactly that many. */
        private byte[] entry(ZipEntry e) throws IOException {
            long declared = e.getSize();
            if (declared < 0 || declared > Integer.MAX_VALUE - 8) {
                throw new Refused(file, "zip entry " + e.getName() + " declares " + declared + " bytes");
            }
            if (e.getMethod() == ZipEntry.STORED && declared != e.getCompressedSize()) {
                throw new Refused(file, "stored zip entry " + e.getName() + " declares " + declared + " bytes but "
                        + e.getCompressedSize() + " stored ones (a damaged file)");
            }
            if (inflated + declared > inflationLimit) {
                throw new Refused(file, "zip entry " + e.getName() + " declares " + declared + " bytes, which would"
                        + " inflate the file's entries past " + INFLATION_BOUND + "x its size (a compression bomb or a"
                        + " damaged file; torch.save stores entries uncompressed)");
            }
            inflated += declared;
            byte[] out = new byte[(int) declared];
            try (InputStream in = zip.getInputStream(e)) {
                int n = in.readNBytes(out, 0, out.length);
                if (n < declared) {
                    throw new Refused(file, "zip entry " + e.getName() + " ends after " + n + " of its " + declared
                            + " bytes (truncated file?)");
                }
                if (in.read() >= 0) {
                    throw new Refused(file, "zip entry " + e.getName() + " inflates past its declared " + declared
                            + " bytes (a compression bomb or a damaged file)");
                }
            }
            return out;
        }

        private static int width(String storageType) {
            return switch (storageType) {
                case "DoubleStorage", "LongStorage" -> 8;
                case "FloatStorage", "IntStorage" -> 4;
                case "HalfStorage", "BFloat16Storage" -> 2;
                default -> 1;
            };
        }

        private byte[] storage(String type, String key, long numel) throws IOException {
            byte[] raw = storages.get(key);
            if (raw == null) {
                ZipEntry e = zip.getEntry(base + "data/" + key);
                if (e == null) {
                    throw new Refused(file, "it lacks the tensor storage data/" + key + " (truncated file?)");
                }
                if (numel > e.getSize() / width(type) || numel * width(type) != e.getSize()) {
                    throw new Refused(file, "storage data/" + key + " declares " + numel + " " + type + " elements but"
                            + " its zip entry holds " + e.getSize() + " bytes");
                }
                raw = entry(e);
                storages.put(key, raw);
                storageElements += numel;
            } else if (numel != raw.length / width(type)) {
                throw new Refused(file, "storage data/" + key + " is referenced with two different sizes");
            }
            return raw;
        }

        @Override
        public Object rebuild(String type, String key, long numel, long offset, long[] shape, long[] strides)
                throws IOException {
            byte[] raw = storage(type, key, numel);
            long n = 1;
            long last = offset;
            for (int d = 0; d < shape.length; d++) {
                n = shape[d] == 0 || n <= numel / shape[d] ? n * shape[d] : Long.MAX_VALUE;
                if (shape[d] > 0) {
                    last = strides[d] == 0 || shape[d] - 1 <= (Long.MAX_VALUE - last) / strides[d]
                            ? last + (shape[d] - 1) * strides[d] : Long.MAX_VALUE;
                }
            }
            if (n > numel) {
                throw new Refused(file, "a tensor of shape " + java.util.Arrays.toString(shape) + " views storage data/"
                        + key + " of only " + numel + " elements");
            }
            if (n > 0 && last >= numel) {
                throw new Refused(file, "a tensor view reaches element " + last + " of storage data/" + key
                        + ", which holds " + numel + " (truncated or damaged file)");
            }
            tensorElements += n;
            if (tensorElements > 2 * storageElements + (1 << 16)) {
                throw new Refused(file, "its tensors view " + tensorElements + " elements of storages holding "
                        + storageElements + " (more than twice over: the views overlap)");
            }
            return tensor(type, raw, offset, shape, strides, (int) n);
        }

        private static INDArray tensor(String type, byte[] raw, long offset, long[] shape, long[] strides, int n) {
            int width = width(type);
            float[] out = new float[n];
            ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            long[] idx = new long[shape.length];
            for (int i = 0; i < n; i++) {
                long pos = offset;
                for (int d = 0; d < shape.length; d++) {
                    pos += idx[d] * strides[d];
                }
                int at = (int) (pos * width);
                out[i] = switch (type) {
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
    }
}
