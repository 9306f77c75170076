package io.mugs.core;

import io.mugs.core.parallel.Communicator;
import io.mugs.core.parallel.InJvmCommunicator;
import io.mugs.core.parallel.Shards;
import io.mugs.data.MultiCropBatch;
import io.mugs.engine.GraphExecutor;
import io.mugs.engine.ReplicaMean;
import io.mugs.engine.Threads;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The trainer's replicas in this JVM: per replica a {@link MugsModel} whose student and teacher variables are
 * replica 0's arrays (one set of parameters, updated once per step), its own teacher and student
 * {@link GraphExecutor}, its own worker thread and a {@link Communicator}. One replica runs on the caller's thread
 * with a group of one, whose collectives do nothing: the same code path, no copies.
 *
 * <p>It knows nothing of the step: each phase of the trainer's step spreads its own work with {@link #run}
 * (replica r's task on replica r's thread), {@link #shard} and {@link #deal}, and meets the other replicas through
 * {@link #allReduceMean} and {@link #gatherViews}. With more than one replica in all, the executors also meet inside
 * a run, at the batch means of the heads' batch norm ({@link ReplicaMean}; see {@link #replicaMean}).
 */
final class Replicas {

    /** One replica's graphs and the executors that run them. */
    record Replica(MugsModel model, GraphExecutor teacher, GraphExecutor student) {
    }

    private final List<Replica> replicas = new ArrayList<>();
    private final List<ThreadPoolExecutor> threads = new ArrayList<>();
    private final boolean ownGroup;
    private List<Communicator> communicators;

    /**
     * @param first        replica 0's model (the trainer's)
     * @param local        replicas in this JVM
     * @param communicators one per local replica; null for an in-JVM group of {@code local}
     */
    Replicas(MugsModel first, int local, List<Communicator> communicators) {
        this.ownGroup = communicators == null;
        this.communicators = ownGroup ? InJvmCommunicator.group(local) : List.copyOf(communicators);
        if (this.communicators.size() != local) {
            throw new IllegalArgumentException(local + " local replicas need as many communicators, got "
                    + this.communicators.size());
        }
        for (int r = 0; r < local; r++) {
            MugsModel model = r == 0 ? first : new MugsModel(first.config());
            if (r > 0) {
                share(first.student(), model.student());
                share(first.teacher(), model.teacher());
            }
            // Executors bind variable arrays when they plan, so the sharing above must come first.
            GraphExecutor teacher = GraphExecutor.outputs(model.teacher(), model.teacherOutputNames());
            GraphExecutor student = GraphExecutor.gradients(model.student(), model.studentOutputNames(),
                    model.studentParameters().keySet());
            if (worldSize() > 1) {
                // Batch norm in the heads: statistics of the whole batch, in the teacher and the student alike.
                teacher.replicaMean(replicaMean(r));
                student.replicaMean(replicaMean(r));
            }
            replicas.add(new Replica(model, teacher, student));
            if (local > 1) {
                threads.add(workerThread(r));
            }
        }
    }

    /**
     * Makes every variable of {@code to} use the array of the same name in {@code from}. SameDiff's default array
     * holder keeps its own copy of an array it is given; the single-thread holder keeps the array itself.
     */
    private static void share(SameDiff from, SameDiff to) {
        to.setArrayHolders(new SingleThreadArrayHolder(), new SingleThreadArrayHolder(), true);
        for (SDVariable v : to.variables()) {
            if (v.getVariableType() == VariableType.VARIABLE) {
                INDArray own = to.getVariable(v.name()).getArr();
                INDArray shared = from.getVariable(v.name()).getArr();
                to.getVariable(v.name()).setArray(shared);
                // Freed now, not at some later collection: for ViT-S/16 the replica's own parameters are 0.47 GB
                // that would otherwise stay resident beside the shared ones.
                if (own != null && own != shared && own.closeable()) {
                    own.close();
                }
            }
        }
    }

    /**
     * Replica r's side of the batch means over replicas ({@link ReplicaMean}): the executors call it on replica r's
     * thread, in plan order, which is the same on every replica (the same graphs). The forward all-reduce also sums
     * each replica's row count n and n², so that every replica sees unequal counts ({@code R Σn² ≠ (Σn)²}) and refuses
     * them at once, instead of averaging means of different weights.
     */
    private ReplicaMean.Hook replicaMean(int r) {
        INDArray rows = Nd4j.create(DataType.DOUBLE, 2);
        return new ReplicaMean.Hook() {
            @Override
            public void forward(INDArray mean, long n) {
                Communicator c = communicators.get(r);
                rows.putScalar(0, n);
                rows.putScalar(1, (double) n * n);
                c.allReduceSum(List.of(mean, rows));
                double sum = rows.getDouble(0);
                if (sum * sum != c.size() * rows.getDouble(1)) {
                    throw new IllegalArgumentException("batch norm over replicas needs as many rows on every replica: "
                            + "replica " + c.rank() + " has " + n + ", the mean over the " + c.size() + " replicas is "
                            + sum / c.size() + "; give every replica an equal share of the batch");
                }
                mean.divi(c.size());
            }

            @Override
            public void backward(INDArray gradient) {
                communicators.get(r).allReduceMean(List.of(gradient));
            }
        };
    }

    private static ThreadPoolExecutor workerThread(int r) {
        ThreadPoolExecutor pool = new ThreadPoolExecutor(1, 1, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                task -> {
                    Thread t = new Thread(() -> {
                        Threads.narrowThisThread();   // N replicas on N cores: no op may widen to every core
                        task.run();
                    }, "mugs-replica-" + r);
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        return pool;
    }

    int size() {
        return replicas.size();
    }

    Replica get(int r) {
        return replicas.get(r);
    }

    Communicator communicator(int r) {
        return communicators.get(r);
    }

    /** Replicas in the whole run (across processes when the communicators span several). */
    int worldSize() {
        return communicators.get(0).size();
    }

    /**
     * Runs {@code task(r)} for every local replica r at once (one replica: on this thread) and returns the results in
     * replica order. If one fails, the others are woken from their collectives and the first failure is thrown.
     */
    <T> List<T> run(IntFunction<T> task) {
        if (replicas.size() == 1) {
            return List.of(task.apply(0));
        }
        List<Future<T>> futures = new ArrayList<>();
        for (int r = 0; r < replicas.size(); r++) {
            int replica = r;
            futures.add(threads.get(r).submit(() -> {
                try {
                    return task.apply(replica);
                } catch (RuntimeException | Error e) {
                    abort();
                    throw e;
                }
            }));
        }
        List<T> out = new ArrayList<>();
        RuntimeException first = null;
        for (Future<T> f : futures) {
            try {
                out.add(f.get());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                abort();
                throw new IllegalStateException("interrupted while the replicas ran a step", e);
            } catch (ExecutionException e) {
                RuntimeException cause = e.getCause() instanceof RuntimeException re ? re
                        : new IllegalStateException("replica failed: " + e.getCause(), e.getCause());
                // A peer woken by the abort reports "aborted"; the replica that failed first says why.
                if (first == null || first.getMessage() != null && first.getMessage().startsWith("replica group")) {
                    first = cause;
                }
            }
        }
        if (first != null) {
            if (ownGroup) {
                communicators = InJvmCommunicator.group(replicas.size());   // the aborted group is spent
            }
            throw first;
        }
        return out;
    }

    private void abort() {
        for (Communicator c : communicators) {
            if (c instanceof InJvmCommunicator in) {
                in.abort();
            }
        }
    }

    /**
     * Averages {@code arrays} in place over every replica of the run (replica r's call; every replica calls it at
     * once from its own thread, see {@link #run}).
     */
    void allReduceMean(int r, List<INDArray> arrays) {
        communicators.get(r).allReduceMean(arrays);
    }

    /**
     * Replica r's {@code x} [2b, ...] gathered from every replica into single-replica order [2B, ...] (view-major: the
     * first view of every image, then the second). With one replica in all, {@code x} itself.
     */
    INDArray gatherViews(int r, INDArray x) {
        Communicator c = communicators.get(r);
        INDArray all = c.allGather(x);
        INDArray ordered = Shards.viewMajor(all, 2, c.size());
        if (ordered != all && all != x) {
            all.close();   // off-heap memory back now, not when the garbage collector comes by
        }
        return ordered;
    }

    /**
     * {@code arrays} dealt to the local replicas by length (largest first, to the least loaded), so that per-tensor
     * work such as the optimiser update and the EMA can run on every replica's thread: part r for replica r.
     */
    List<Map<String, INDArray>> deal(Map<String, INDArray> arrays) {
        List<Map<String, INDArray>> parts = new ArrayList<>();
        for (int r = 0; r < replicas.size(); r++) {
            parts.add(new LinkedHashMap<>());
        }
        List<Map.Entry<String, INDArray>> bySize = new ArrayList<>(arrays.entrySet());
        bySize.sort((a, b) -> Long.compare(b.getValue().length(), a.getValue().length()));
        long[] load = new long[parts.size()];
        for (Map.Entry<String, INDArray> e : bySize) {
            int least = 0;
            for (int r = 1; r < load.length; r++) {
                least = load[r] < load[least] ? r : least;
            }
            parts.get(least).put(e.getKey(), e.getValue());
            load[least] += e.getValue().length();
        }
        return parts;
    }

    /**
     * Frees arrays that {@link #gatherViews} made (with one replica in all, these are the executors' own arrays and
     * are kept).
     */
    void release(List<INDArray> gathered) {
        if (worldSize() == 1) {
            return;
        }
        gathered.stream().filter(INDArray::closeable).forEach(INDArray::close);
    }

    /** Matrix-product FLOPs of one step over every replica's latest teacher and student plans. */
    double matmulFlops() {
        return replicas.stream().mapToDouble(r -> r.teacher().matmulFlopsPerRun() + r.student().matmulFlopsPerRun())
                .sum();
    }

    /** Bytes of every replica's engine buffers. */
    long engineBytes() {
        return replicas.stream().mapToLong(r -> r.teacher().plannedBytes() + r.student().plannedBytes()).sum();
    }

    /** Replica r's batch slice: what the trainer feeds its graphs. */
    MultiCropBatch shard(MultiCropBatch batch, int r) {
        Communicator c = communicators.get(r);
        return Shards.batch(batch, c.rank(), c.size());
    }

    /** Replica r's slices of the drop-path masks of {@code views} views. */
    Map<String, INDArray> masks(Map<String, INDArray> masks, int views, int r) {
        Communicator c = communicators.get(r);
        return Shards.masks(masks, views, c.rank(), c.size());
    }
}
