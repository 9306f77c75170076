package io.mugs.core;

import java.nio.file.Path;

/** A process for {@link RunLockTest}: takes the lock of the run folder {@code args[0]}, says so, and waits. */
public final class HoldRunLock {

    private HoldRunLock() {
    }

    public static void main(String[] args) throws Exception {
        RunLock lock = RunLock.acquire(Path.of(args[0]));
        System.out.println("locked " + ProcessHandle.current().pid());
        System.out.flush();
        Thread.sleep(600_000);
        lock.close();
    }
}
