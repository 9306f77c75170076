package io.mugs.core;

import io.mugs.core.parallel.Communicator;
import io.mugs.core.parallel.InJvmCommunicator;
import io.mugs.core.parallel.Shards;
import io.mugs.data.MultiCropBatch;
import io.mugs.engine.GraphExecutor;
import io.mugs.engine.Threads;
import java.util.ArrayList;
import java.util.HashMap;
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
            replicas.add(new Replica(model, GraphExecutor.outputs(model.teacher(), model.teacherOutputs()),
                    GraphExecutor.gradients(model.student(), studentOutputs(model),
                            model.studentParameters().keySet())));
            if (local > 1) {
                threads.add(workerThread(r));
            }
        }
    }

    static List<String> studentOutputs(MugsModel model) {
        List<String> outputs = new ArrayList<>(model.lossOutputs());
        outputs.add(MugsModel.PATCH_MEAN);
        return outputs;
    }

    /**
     * Makes every variable of {@code to} use the array of the same name in {@code from}. SameDiff's default array
     * holder keeps its own copy of an array it is given; the single-thread holder keeps the array itself.
     */
    private static void share(SameDiff from, SameDiff to) {
        to.setArrayHolders(new SingleThreadArrayHolder(), new SingleThreadArrayHolder(), true);
        for (SDVariable v : to.variables()) {
            if (v.getVariableType() == VariableType.VARIABLE) {
                to.getVariable(v.name()).setArray(from.getVariable(v.name()).getArr());
            }
        }
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

    /** One replica's outputs of a step, gathered and averaged over all replicas (the same on every replica). */
    record Pass(TeacherOutputs teacher, StudentOutputs student) {
    }

    /**
     * Replica r's part of a step: teacher and student on its shard of the batch, then the collectives: gradients and
     * losses averaged, teacher outputs and student patch means all-gathered in single-replica order. Replica 0
     * writes the times of its phases into {@code millis} (teacher, student, collectives).
     */
    private Pass pass(MugsTrainer trainer, int r, MultiCropBatch batch, Map<String, INDArray> globalMasks,
                             Map<String, INDArray> localMasks, double[] millis) {
        long t0 = System.nanoTime();
        Replica replica = replicas.get(r);
        MultiCropBatch shard = shard(batch, r);
        TeacherOutputs t = trainer.teacherOutputs(replica.teacher().run(trainer.teacherFeed(shard)).outputs());
        long t1 = System.nanoTime();
        Map<String, INDArray> masks = new HashMap<>(masks(globalMasks, 2, r));
        masks.putAll(masks(localMasks, trainer.config().crops().localCrops(), r));
        GraphExecutor.Result s = replica.student().run(trainer.studentFeed(shard, t, masks));
        long t2 = System.nanoTime();
        Communicator c = communicators.get(r);
        List<String> lossNames = replica.model().lossOutputs();
        INDArray losses = Nd4j.create(DataType.DOUBLE, lossNames.size());
        for (int i = 0; i < lossNames.size(); i++) {
            losses.putScalar(i, s.outputs().get(lossNames.get(i)).getDouble(0));
        }
        List<INDArray> reduced = new ArrayList<>(s.gradients().values());
        reduced.add(losses);
        c.allReduceMean(reduced);
        Map<String, Double> lossValues = new LinkedHashMap<>();
        for (int i = 0; i < lossNames.size(); i++) {
            lossValues.put(lossNames.get(i), losses.getDouble(i));
        }
        int n = c.size();
        java.util.function.UnaryOperator<INDArray> gather = x -> {
            INDArray all = c.allGather(x);
            INDArray ordered = Shards.viewMajor(all, 2, n);
            if (ordered != all && all != x) {
                all.close();   // off-heap memory back now, not when the garbage collector comes by
            }
            return ordered;
        };
        TeacherOutputs teacher = new TeacherOutputs(gather.apply(t.patchMean()), t.instanceKeys().map(gather),
                t.localGroupKeys().map(gather), t.groupLogits().map(gather), t.temperature());
        StudentOutputs student = new StudentOutputs(lossValues, s.gradients(),
                gather.apply(s.outputs().get(MugsModel.PATCH_MEAN)));
        if (r == 0) {
            long t3 = System.nanoTime();
            millis[0] = (t1 - t0) / 1e6;
            millis[1] = (t2 - t1) / 1e6;
            millis[2] = (t3 - t2) / 1e6;
        }
        return new Pass(teacher, student);
    }

    /**
     * The parallel phase of a step on every local replica: see {@link #pass}; returns replica 0's (every replica's
     * results are the same).
     */
    Pass step(MugsTrainer trainer, MultiCropBatch batch, Map<String, INDArray> globalMasks,
              Map<String, INDArray> localMasks, double[] millis) {
        return run(r -> pass(trainer, r, batch, globalMasks, localMasks, millis)).get(0);
    }

    /** {@code checkpoint} as if written with {@code replicas} (unchanged when its batch cannot split that way). */
    static Checkpoints.Loaded withReplicas(Checkpoints.Loaded checkpoint, int replicas) {
        MugsConfig stored = checkpoint.config();
        if (stored.replicas() == replicas || stored.batchSize() % replicas != 0) {
            return checkpoint;
        }
        return new Checkpoints.Loaded(checkpoint.file(), checkpoint.content(),
                stored.toBuilder().replicas(replicas).build());
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
     * Frees the arrays a step gathered across replicas (with one replica in all, these are the executors' own arrays
     * and are kept).
     */
    void release(TeacherOutputs teacher, StudentOutputs student) {
        if (worldSize() == 1) {
            return;
        }
        List<INDArray> gathered = new ArrayList<>(List.of(teacher.patchMean(), student.patchMean()));
        teacher.instanceKeys().ifPresent(gathered::add);
        teacher.localGroupKeys().ifPresent(gathered::add);
        teacher.groupLogits().ifPresent(gathered::add);
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
