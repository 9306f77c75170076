package io.mugs.core.parallel;

import java.util.Map;

/**
 * Where this process sits in a multi-process run, read from the variables {@code torchrun} sets: {@code RANK}
 * (0 to WORLD_SIZE - 1, unique in the run), {@code WORLD_SIZE} (processes in the run), {@code LOCAL_RANK} (index
 * on this machine: the GPU it drives), {@code MASTER_ADDR} and {@code MASTER_PORT} (where rank 0 serves the
 * {@link Rendezvous}).
 *
 * <pre>{@code
 * LaunchEnvironment env = LaunchEnvironment.from(System.getenv());
 * byte[] id = env.rank() == 0 ? newId : Rendezvous.fetch(env, Duration.ofMinutes(5));
 * }</pre>
 *
 * @param rank       this process, 0 to worldSize - 1
 * @param worldSize  processes in the run
 * @param localRank  this process's index on its machine (its GPU)
 * @param masterAddr host of rank 0
 * @param masterPort TCP port rank 0 listens on for the rendezvous
 */
public record LaunchEnvironment(int rank, int worldSize, int localRank, String masterAddr, int masterPort) {

    public LaunchEnvironment {
        if (worldSize < 1) {
            throw new IllegalArgumentException("WORLD_SIZE must be >= 1, got " + worldSize);
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("RANK must be in [0, WORLD_SIZE - 1] = [0, " + (worldSize - 1)
                    + "], got " + rank);
        }
        if (localRank < 0) {
            throw new IllegalArgumentException("LOCAL_RANK must be >= 0, got " + localRank);
        }
        if (masterPort < 1 || masterPort > 65_535) {
            throw new IllegalArgumentException("MASTER_PORT must be a TCP port (1-65535), got " + masterPort);
        }
        if (masterAddr == null || masterAddr.isBlank()) {
            throw new IllegalArgumentException("MASTER_ADDR must name the host of rank 0");
        }
    }

    /** Reads the five variables from {@code env} (e.g. {@code System.getenv()}); LOCAL_RANK defaults to RANK. */
    public static LaunchEnvironment from(Map<String, String> env) {
        int rank = integer(env, "RANK");
        int world = integer(env, "WORLD_SIZE");
        int local = env.containsKey("LOCAL_RANK") ? integer(env, "LOCAL_RANK") : rank;
        String addr = env.get("MASTER_ADDR");
        if (addr == null) {
            throw missing("MASTER_ADDR");
        }
        return new LaunchEnvironment(rank, world, local, addr, integer(env, "MASTER_PORT"));
    }

    private static int integer(Map<String, String> env, String name) {
        String v = env.get(name);
        if (v == null) {
            throw missing(name);
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be an integer, got '" + v + "'", e);
        }
    }

    private static IllegalArgumentException missing(String name) {
        return new IllegalArgumentException(name + " is not set: start every process with RANK, WORLD_SIZE, "
                + "LOCAL_RANK, MASTER_ADDR and MASTER_PORT in its environment, as torchrun does "
                + "(docs/data-parallel.md)");
    }
}
