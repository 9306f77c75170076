package io.mugs.core.parallel;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A {@link Communicator} between replica threads of one JVM, through shared memory: each collective puts every
 * replica's arguments on a shared table, waits for all of them, computes, and waits again before anyone may reuse
 * the table.
 *
 * <p>All-reduce divides the work: the arrays are dealt to the replicas by size (largest first, to the least loaded),
 * each replica sums its arrays over the replicas in rank order (into replica 0's array, then copies it to the others),
 * so the result is the same bits on every replica and for every thread schedule, and nothing is allocated.
 * All-gather concatenates in rank order.
 *
 * <p>If a replica fails between collectives, {@link #abort()} wakes the others with an {@link IllegalStateException}
 * instead of leaving them waiting; the group is unusable afterwards.
 *
 * <pre>{@code
 * List<Communicator> group = InJvmCommunicator.group(2);
 * // in replica thread r:
 * group.get(r).allReduceMean(gradients);
 * }</pre>
 */
public final class InJvmCommunicator implements Communicator {

    /** What the replicas of one group share. */
    private static final class Table {
        final int size;
        final Object[] slots;
        int arrived;
        long generation;
        boolean aborted;

        Table(int size) {
            this.size = size;
            this.slots = new Object[size];
        }
    }

    private final Table table;
    private final int rank;

    private InJvmCommunicator(Table table, int rank) {
        this.table = table;
        this.rank = rank;
    }

    /** One communicator per replica, {@code size} in all; hand communicator r to the thread of replica r. */
    public static List<Communicator> group(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("a replica group needs at least one replica, got " + size);
        }
        Table table = new Table(size);
        List<Communicator> out = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            out.add(new InJvmCommunicator(table, r));
        }
        return List.copyOf(out);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return table.size;
    }

    @Override
    public void allReduceSum(List<INDArray> arrays) {
        if (table.size == 1) {
            return;
        }
        table.slots[rank] = arrays;
        await();
        int[] owner = owners(arrays);
        for (int i = 0; i < arrays.size(); i++) {
            if (owner[i] != rank) {
                continue;
            }
            INDArray sum = slot(0).get(i);     // summed in place: no per-step garbage for the GC to free
            for (int r = 1; r < table.size; r++) {
                INDArray other = slot(r).get(i);
                if (other.length() != sum.length()) {
                    throw new IllegalArgumentException("all-reduce of array " + i + ": replica 0 has shape "
                            + java.util.Arrays.toString(sum.shape()) + ", replica " + r + " has "
                            + java.util.Arrays.toString(other.shape()) + "; every replica must pass the same shapes");
                }
                sum.addi(other);
            }
            for (int r = 1; r < table.size; r++) {
                slot(r).get(i).assign(sum);
            }
        }
        await();
    }

    /** Deals the arrays to replicas by length, largest first to the least loaded (the same on every replica). */
    private int[] owners(List<INDArray> arrays) {
        Integer[] order = new Integer[arrays.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Long.compare(arrays.get(b).length(), arrays.get(a).length()));
        long[] load = new long[table.size];
        int[] owner = new int[arrays.size()];
        for (int i : order) {
            int least = 0;
            for (int r = 1; r < load.length; r++) {
                least = load[r] < load[least] ? r : least;
            }
            owner[i] = least;
            load[least] += arrays.get(i).length();
        }
        return owner;
    }

    @SuppressWarnings("unchecked")
    private List<INDArray> slot(int r) {
        return (List<INDArray>) table.slots[r];
    }

    @Override
    public INDArray allGather(INDArray local) {
        if (table.size == 1) {
            return local;
        }
        table.slots[rank] = local;
        await();
        INDArray[] parts = new INDArray[table.size];
        for (int r = 0; r < table.size; r++) {
            parts[r] = (INDArray) table.slots[r];
            if (parts[r].rank() != local.rank() || parts[r].length() / Math.max(1, parts[r].size(0))
                    != local.length() / Math.max(1, local.size(0))) {
                throw new IllegalArgumentException("all-gather: replica " + r + " passed shape "
                        + java.util.Arrays.toString(parts[r].shape()) + ", replica " + rank + " "
                        + java.util.Arrays.toString(local.shape()) + "; the trailing shapes must agree");
            }
        }
        INDArray out = Nd4j.concat(0, parts);
        await();
        return out;
    }

    @Override
    public void broadcast(INDArray array, int root) {
        if (root < 0 || root >= table.size) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank of a group of " + table.size);
        }
        if (table.size == 1) {
            return;
        }
        table.slots[rank] = array;
        await();
        if (rank != root) {
            array.assign((INDArray) table.slots[root]);
        }
        await();
    }

    @Override
    public void barrier() {
        await();
    }

    /** Wakes every replica waiting in (or later entering) a collective of this group with an exception. */
    public void abort() {
        synchronized (table) {
            table.aborted = true;
            table.notifyAll();
        }
    }

    /** A barrier that {@link #abort()} breaks for good (the monitor also publishes the slots between replicas). */
    private void await() {
        synchronized (table) {
            if (table.aborted) {
                throw new IllegalStateException("replica group aborted: another replica failed");
            }
            long generation = table.generation;
            if (++table.arrived == table.size) {
                table.arrived = 0;
                table.generation++;
                table.notifyAll();
                return;
            }
            while (generation == table.generation && !table.aborted) {
                try {
                    table.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("replica " + rank + " interrupted in a collective", e);
                }
            }
            if (generation == table.generation) {
                throw new IllegalStateException("replica group aborted: another replica failed");
            }
        }
    }
}
