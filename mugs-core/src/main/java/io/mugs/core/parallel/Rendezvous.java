package io.mugs.core.parallel;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * How the processes of a run agree on one secret before their communicator exists (NCCL's unique id): rank 0
 * listens on {@code MASTER_PORT}, every other rank connects to {@code MASTER_ADDR:MASTER_PORT}, says who it is, and
 * receives the bytes. Rank 0 returns once each of ranks 1 to WORLD_SIZE - 1 has received them exactly once.
 *
 * <p>The exchange: the client sends {@code MAGIC, worldSize, rank} (three ints); the server answers {@code 0, n,
 * n bytes} or, if the world size differs or the rank is out of range or taken, {@code 1} and a message, which the
 * client throws. Clients retry connecting until the timeout, so the ranks may start in any order.
 *
 * <pre>{@code
 * // rank 0                                            // every other rank
 * Rendezvous.serve(env, idBytes, Duration.ofMinutes(5));  byte[] id = Rendezvous.fetch(env, Duration.ofMinutes(5));
 * }</pre>
 */
public final class Rendezvous {

    static final int MAGIC = 0x4d756773;   // "Mugs"

    private Rendezvous() {
    }

    /** Rank 0: hands {@code payload} to every other rank of {@code env}'s world. */
    public static void serve(LaunchEnvironment env, byte[] payload, Duration timeout) throws IOException {
        if (env.rank() != 0) {
            throw new IllegalStateException("only rank 0 serves the rendezvous; this is rank " + env.rank());
        }
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(env.masterPort()));
            serve(server, env.worldSize(), payload, timeout);
        }
    }

    /** Serves on a bound socket (tests bind to a free port first). */
    static void serve(ServerSocket server, int worldSize, byte[] payload, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        boolean[] served = new boolean[worldSize];
        served[0] = true;
        int remaining = worldSize - 1;
        while (remaining > 0) {
            server.setSoTimeout(millisLeft(deadline, () -> "rendezvous on port " + server.getLocalPort() + ": "
                    + missing(served) + " did not connect within " + timeout.toSeconds() + " s; check MASTER_ADDR, "
                    + "MASTER_PORT and that every rank was started"));
            Socket s;
            try {
                s = server.accept();
            } catch (SocketTimeoutException e) {
                continue;   // millisLeft throws on the next turn with the message
            }
            try (s) {
                s.setSoTimeout(10_000);
                DataInputStream in = new DataInputStream(s.getInputStream());
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                int magic = in.readInt();
                int world = in.readInt();
                int rank = in.readInt();
                String problem = magic != MAGIC ? "not a Mugs rendezvous client"
                        : world != worldSize ? "WORLD_SIZE is " + world + " there but " + worldSize + " on rank 0"
                        : rank < 1 || rank >= worldSize ? "RANK " + rank + " is outside [1, " + (worldSize - 1) + "]"
                        : served[rank] ? "RANK " + rank + " was started twice" : null;
                if (problem != null) {
                    out.writeInt(1);
                    out.writeUTF(problem);
                    out.flush();
                    continue;
                }
                out.writeInt(0);
                out.writeInt(payload.length);
                out.write(payload);
                out.flush();
                served[rank] = true;
                remaining--;
            } catch (IOException e) {
                // A client that hung up half-way may retry; keep serving until the deadline.
            }
        }
    }

    /** Any rank but 0: the bytes rank 0 serves. */
    public static byte[] fetch(LaunchEnvironment env, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(env.masterAddr(), env.masterPort()), 2_000);
                s.setSoTimeout(30_000);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeInt(MAGIC);
                out.writeInt(env.worldSize());
                out.writeInt(env.rank());
                out.flush();
                DataInputStream in = new DataInputStream(s.getInputStream());
                if (in.readInt() != 0) {
                    throw new IllegalStateException("rank 0 refused rank " + env.rank() + ": " + in.readUTF());
                }
                byte[] payload = new byte[in.readInt()];
                in.readFully(payload);
                return payload;
            } catch (IOException e) {
                last = e;
                try {
                    Thread.sleep(200);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for rank 0", ie);
                }
            }
        }
        throw new IOException("rank " + env.rank() + " could not reach rank 0 at " + env.masterAddr() + ":"
                + env.masterPort() + " within " + timeout.toSeconds() + " s (" + last + "): check MASTER_ADDR and "
                + "MASTER_PORT and that rank 0 was started", last);
    }

    private static int millisLeft(long deadline, java.util.function.Supplier<String> message) throws IOException {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        if (left <= 0) {
            throw new IOException(message.get());
        }
        return (int) Math.min(left, Integer.MAX_VALUE);
    }

    private static String missing(boolean[] served) {
        List<Integer> out = new ArrayList<>();
        for (int r = 0; r < served.length; r++) {
            if (!served[r]) {
                out.add(r);
            }
        }
        return "rank(s) " + out;
    }
}
