package io.mugs.nccl;

import static org.bytedeco.cuda.global.nccl.NCCL_UNIQUE_ID_BYTES;
import static org.bytedeco.cuda.global.nccl.ncclAllGather;
import static org.bytedeco.cuda.global.nccl.ncclAllReduce;
import static org.bytedeco.cuda.global.nccl.ncclBfloat16;
import static org.bytedeco.cuda.global.nccl.ncclBroadcast;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclFloat16;
import static org.bytedeco.cuda.global.nccl.ncclFloat32;
import static org.bytedeco.cuda.global.nccl.ncclFloat64;
import static org.bytedeco.cuda.global.nccl.ncclGetErrorString;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclGroupEnd;
import static org.bytedeco.cuda.global.nccl.ncclGroupStart;
import static org.bytedeco.cuda.global.nccl.ncclInt32;
import static org.bytedeco.cuda.global.nccl.ncclInt64;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;

import io.mugs.core.parallel.Communicator;
import io.mugs.core.parallel.LaunchEnvironment;
import io.mugs.core.parallel.Rendezvous;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.jita.allocator.impl.AtomicAllocator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.jcublas.context.CudaContext;

/**
 * A {@link Communicator} over NCCL, one process per GPU, for one machine or many: the collectives run on ND4J's CUDA
 * stream of this process's device, on the arrays in place. NCCL is the engine; this class only hands it the device
 * pointers. Not run on a GPU yet (no GPU where it was written): see docs/data-parallel.md.
 *
 * <p>Started as {@code torchrun} starts a job: {@link #fromEnvironment} reads RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR and MASTER_PORT, binds the calling thread to GPU LOCAL_RANK, and rank 0 creates the NCCL unique id and
 * hands it to the others over {@link Rendezvous}.
 *
 * <pre>{@code
 * try (NcclCommunicator world = NcclCommunicator.fromEnvironment(Duration.ofMinutes(5))) {
 *     MugsTrainer trainer = new MugsTrainer(config, RunSettings.defaults().withReplicas(world.size()), steps, world);
 *     ...
 * }
 * }</pre>
 */
public final class NcclCommunicator implements Communicator {

    private final ncclComm comm;
    private final int rank;
    private final int size;

    private NcclCommunicator(ncclComm comm, int rank, int size) {
        this.comm = comm;
        this.rank = rank;
        this.size = size;
    }

    /** Joins the run described by this process's environment (waits up to {@code timeout} for the others). */
    public static NcclCommunicator fromEnvironment(Duration timeout) throws IOException {
        LaunchEnvironment env = LaunchEnvironment.from(System.getenv());
        Nd4j.getAffinityManager().unsafeSetDevice(env.localRank());
        ncclUniqueId id = new ncclUniqueId();
        byte[] bytes = new byte[NCCL_UNIQUE_ID_BYTES];
        if (env.rank() == 0) {
            check(ncclGetUniqueId(id), "ncclGetUniqueId");
            id.internal().get(bytes);
            if (env.worldSize() > 1) {
                Rendezvous.serve(env, bytes, timeout);
            }
        } else {
            bytes = Rendezvous.fetch(env, timeout);
            if (bytes.length != NCCL_UNIQUE_ID_BYTES) {
                throw new IOException("rank 0 sent " + bytes.length + " bytes, not an NCCL unique id of "
                        + NCCL_UNIQUE_ID_BYTES + ": are all ranks running the same build?");
            }
            id.internal().put(bytes);
        }
        ncclComm comm = new ncclComm();
        check(ncclCommInitRank(comm, env.worldSize(), id, env.rank()), "ncclCommInitRank");
        return new NcclCommunicator(comm, env.rank(), env.worldSize());
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public void allReduceSum(List<INDArray> arrays) {
        CudaContext ctx = context();
        check(ncclGroupStart(), "ncclGroupStart");
        for (INDArray a : arrays) {
            Pointer p = pointer(a, ctx);
            check(ncclAllReduce(p, p, a.length(), type(a), ncclSum, comm, stream(ctx)), "ncclAllReduce");
        }
        check(ncclGroupEnd(), "ncclGroupEnd");
        finish(ctx, arrays.toArray(INDArray[]::new));
    }

    @Override
    public INDArray allGather(INDArray local) {
        long[] shape = local.shape().clone();
        shape[0] *= size;
        INDArray out = Nd4j.create(local.dataType(), shape);
        CudaContext ctx = context();
        check(ncclAllGather(pointer(local, ctx), pointer(out, ctx), local.length(), type(local), comm, stream(ctx)),
                "ncclAllGather");
        finish(ctx, out);
        return out;
    }

    @Override
    public void broadcast(INDArray array, int root) {
        CudaContext ctx = context();
        Pointer p = pointer(array, ctx);
        check(ncclBroadcast(p, p, array.length(), type(array), root, comm, stream(ctx)), "ncclBroadcast");
        finish(ctx, array);
    }

    @Override
    public void barrier() {
        allReduceSum(List.of(Nd4j.zeros(DataType.FLOAT, 1)));
    }

    @Override
    public void close() {
        ncclCommDestroy(comm);
    }

    private static CudaContext context() {
        Nd4j.getExecutioner().commit();   // every queued op that writes the arrays has finished
        return AtomicAllocator.getInstance().getDeviceContext();
    }

    private static CUstream_st stream(CudaContext ctx) {
        return new CUstream_st(ctx.getOldStream());
    }

    /** The device address of a dense array (NCCL reads and writes {@code length()} consecutive elements). */
    private static Pointer pointer(INDArray a, CudaContext ctx) {
        if (a.ordering() != 'c' || a.elementWiseStride() != 1) {
            throw new IllegalArgumentException("NCCL needs dense row-major arrays; got shape "
                    + java.util.Arrays.toString(a.shape()) + " with strides " + java.util.Arrays.toString(a.stride())
                    + ": pass a dup()");
        }
        return AtomicAllocator.getInstance().getPointer(a, ctx);
    }

    /** Waits for the collective and marks the device copies as the newest. */
    private static void finish(CudaContext ctx, INDArray... written) {
        ctx.syncOldStream();
        for (INDArray a : written) {
            AtomicAllocator.getInstance().tickDeviceWrite(a);
        }
    }

    static int type(INDArray a) {
        return switch (a.dataType()) {
            case FLOAT -> ncclFloat32;
            case DOUBLE -> ncclFloat64;
            case HALF -> ncclFloat16;
            case BFLOAT16 -> ncclBfloat16;
            case INT -> ncclInt32;
            case LONG -> ncclInt64;
            default -> throw new IllegalArgumentException("NCCL collectives take FLOAT, DOUBLE, HALF, BFLOAT16, INT or "
                    + "LONG arrays, got " + a.dataType());
        };
    }

    private static void check(int result, String call) {
        if (result != ncclSuccess) {
            throw new IllegalStateException(call + " failed: " + ncclGetErrorString(result).getString()
                    + " (set NCCL_DEBUG=INFO for NCCL's own log)");
        }
    }
}
